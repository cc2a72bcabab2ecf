package bbolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/cryptovps/cryptovps/eventstore"
)

// checkSize refuses a file shorter than its own pages say (a truncated
// copy): bbolt maps the file and would fault, killing the process, at the
// first read past its end.
func checkSize(db *bolt.DB, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("eventstore/bbolt: %w", err)
	}
	return safeView(db, path, func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return fmt.Errorf("eventstore/bbolt: %s is truncated: %d bytes, its pages need %d", path, fi.Size(), tx.Size())
		}
		return nil
	})
}

// safeView is db.View for a file that may be damaged: bbolt panics on a
// page that is not what it should be, which for a copy being checked is an
// answer, not a bug.
func safeView(db *bolt.DB, path string, fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("eventstore/bbolt: %s is damaged: %v", path, r)
		}
	}()
	return db.View(fn)
}

// readHead checks that a store opened read-only is one (the format and the
// buckets an Open that may write would have created) and returns its head
// and its tables.
func readHead(db *bolt.DB, path string) (uint64, *tables, error) {
	var head uint64
	var tab *tables
	err := safeView(db, path, func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketStreams) == nil || tx.Bucket(bucketLog) == nil {
			return fmt.Errorf("eventstore/bbolt: %s is not an event store", path)
		}
		if v := meta.Get(keyFormat); string(v) != formatVersion && string(v) != formatV1 {
			return fmt.Errorf("eventstore/bbolt: %s has format %q, this build reads %q and %q", path, v, formatV1, formatVersion)
		}
		if k, _ := tx.Bucket(bucketLog).Cursor().Last(); k != nil {
			head = binary.BigEndian.Uint64(k)
		}
		var err error
		tab, err = loadTables(tx)
		if err != nil {
			return fmt.Errorf("eventstore/bbolt: %s: %w", path, err)
		}
		return nil
	})
	return head, tab, err
}

// maxVerifyErrors is how many inconsistencies Verify reports: past a few,
// the file is simply damaged.
const maxVerifyErrors = 10

// Verify runs bbolt's consistency check on the whole file (every page
// reachable or free, none twice, every key in order) in one read
// transaction. It reads every page, so it takes a while on a large store;
// it is for checking backups, not for a serving process.
func (s *Store) Verify(ctx context.Context) error {
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	return s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			// The channel must be drained for the check's goroutine to end.
			if len(errs) < maxVerifyErrors {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("eventstore/bbolt: %s is damaged: %w", s.path, errors.Join(errs...))
		}
		return ctx.Err()
	})
}
