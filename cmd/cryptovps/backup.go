package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/cryptovps/cryptovps/eventstore/bbolt"
)

// backupCmd writes a consistent copy of the embedded event store to a file:
// read directly from a stopped data dir, or, while a server holds the store
// locked, fetched from its operator API (the same online snapshot the other
// tools read). The copy is checked before it takes the name it was asked
// for, so FILE is always a whole, readable store or is left as it was.
func backupCmd(args []string, stdout, stderr io.Writer) error {
	fs, tf := newToolFlags("backup", stderr)
	to := fs.String("to", "", "file to write the copy to (required; replaced atomically, mode 0600)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("backup: --to FILE is required")
	}
	if tf.cfg.EventStoreURL != "" {
		return errors.New("backup: the event log is in KurrentDB (--eventstore-url): back it up with KurrentDB's own backups (see README, Backups)")
	}
	ctx, stop := signalContext()
	defer stop()
	start := time.Now()
	dir := filepath.Dir(*to)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(*to)+".tmp-*") // 0600
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // a no-op once renamed
	from, err := copyStore(ctx, tf, tmp, stderr)
	if err == nil {
		// Durable before it replaces an older backup.
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	s, err := bbolt.Open(tmpName, bbolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("backup: the copy does not open: %w", err)
	}
	head, err := s.Head(ctx)
	if err == nil {
		err = s.Verify(ctx)
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup: the copy is not sound: %w", err)
	}
	if err := os.Rename(tmpName, *to); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	syncDir(dir)
	fi, err := os.Stat(*to)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	fmt.Fprintf(stdout, "backup of %s: %d bytes, the log up to position %s, in %s -> %s\n", from, fi.Size(), head,
		time.Since(start).Round(time.Millisecond), *to)
	return nil
}

// copyStore writes a consistent copy of the data dir's event store to w and
// says where it came from: the file itself when no server holds it, the
// server's online snapshot when one does.
func copyStore(ctx context.Context, tf *toolFlags, w io.Writer, stderr io.Writer) (string, error) {
	path := filepath.Join(tf.cfg.DataDir, "events.db")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("no event store at %s (is --data-dir right?): %w", path, err)
	}
	s, err := bbolt.Open(path, bbolt.Options{ReadOnly: true, LockTimeout: 500 * time.Millisecond})
	if err == nil {
		err = s.Snapshot(ctx, w)
		return path, errors.Join(err, s.Close())
	}
	if !errors.Is(err, bbolt.ErrLocked) {
		return "", err
	}
	fmt.Fprintf(stderr, "%s is locked by a running server: taking its online snapshot from %s\n", path, tf.server)
	_, err = downloadSnapshot(ctx, tf, w)
	return tf.server, err
}

// syncDir makes a rename in dir durable; where directories cannot be
// synced, the rename is as durable as the system makes it anyway.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
