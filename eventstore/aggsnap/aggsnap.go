// Package aggsnap keeps aggregate snapshots (app.Snapshots) in a bbolt file
// of their own beside the event log. They are a head start for loading
// long streams and nothing more (the log is always read after them and
// trusted over them), so they are written without waiting for the disk,
// and a file that cannot be opened is started afresh rather than stopping
// the service.
//
// File layout: one bucket "snapshots", key = the runner's key (the state's
// shape and the stream), value = version (8 bytes, big-endian), event id
// (16 bytes), encoded state.
package aggsnap

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/cryptovps/cryptovps/app"
)

var bucket = []byte("snapshots")

// Store is the snapshot file. It is safe for concurrent use.
type Store struct {
	db *bolt.DB
}

var _ app.Snapshots = (*Store)(nil)

// Open opens (or creates) the snapshot file at path. A file that is not a
// readable snapshot file is removed and created again: losing snapshots
// costs only the time to read the streams whole.
func Open(path string) (*Store, error) {
	s, err := open(path)
	if err == nil {
		return s, nil
	}
	if errors.Is(err, os.ErrPermission) || errors.Is(err, errLocked) {
		return nil, err
	}
	if rmErr := os.Remove(path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		return nil, fmt.Errorf("aggregate snapshots %s: %w (and it cannot be removed: %v)", path, err, rmErr)
	}
	return open(path)
}

var errLocked = errors.New("aggregate snapshots: the file is open in another process")

func open(path string) (s *Store, err error) {
	defer func() {
		// bbolt panics on some corrupt files rather than returning an
		// error: a snapshot file is never worth a failed start.
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("aggregate snapshots %s: unreadable: %v", path, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, NoSync: true, NoFreelistSync: true,
		FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", errLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("aggregate snapshots %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("aggregate snapshots %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Get returns the snapshot kept under key.
func (s *Store) Get(ctx context.Context, key string) (app.Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return app.Snapshot{}, false, err
	}
	var snap app.Snapshot
	found := false
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(key))
		if len(v) < 8+16 {
			return nil // none, or not one of ours: as if none
		}
		snap.Version = int64(binary.BigEndian.Uint64(v))
		copy(snap.EventID[:], v[8:24])
		snap.Data = append([]byte(nil), v[24:]...)
		found = true
		return nil
	})
	return snap, found, err
}

// Put keeps snap under key. The write does not wait for the disk (NoSync):
// a snapshot lost in a crash of the machine is only a longer load.
func (s *Store) Put(ctx context.Context, key string, snap app.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v := make([]byte, 0, 24+len(snap.Data))
	v = binary.BigEndian.AppendUint64(v, uint64(snap.Version))
	v = append(v, snap.EventID[:]...)
	v = append(v, snap.Data...)
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put([]byte(key), v)
	})
}

// Keys lists the keys of every snapshot kept (for tools and tests).
func (s *Store) Keys(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var keys []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		})
	})
	return keys, err
}
