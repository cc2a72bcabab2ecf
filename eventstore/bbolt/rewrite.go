package bbolt

import (
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Rewrite copies db, open on the file at path, into a fresh file and renames
// that over path, so that nothing the old file freed (a destroyed key, an
// erased hash) survives in its free pages. A crash before the rename leaves
// the old file whole; after it, the directory is synced so the rename
// stands. db keeps pointing at the old, now unlinked, file: the caller
// reopens path and closes db.
func Rewrite(db *bolt.DB, path string, lockTimeout time.Duration) error {
	tmp := path + ".compact"
	_ = os.Remove(tmp) // left by a crash mid-rewrite: the old file is still whole
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return err
	}
	if err := bolt.Compact(dst, db, 0); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
