// Package boltkeys is the key store of the embedded topology: the data keys
// sealing each account's personal data in the log, and the login index,
// in a bbolt file of their own in the data dir (keys.db), beside the event
// log and never inside it, so that a copy, snapshot or backup of the log
// never carries them.
//
// Forgetting must leave nothing behind: bbolt never overwrites a page in
// place (it writes changed pages anew and frees the old ones, which keep
// their bytes until they are reused), so after Forget the file is rewritten
// with only the live entries (bbolt.Compact) and put in place of the old one:
// no freed page of keys.db still holds a destroyed key.
package boltkeys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	boltstore "github.com/cryptovps/cryptovps/eventstore/bbolt"

	"github.com/cryptovps/cryptovps/domain"
)

var (
	// bucketKeys: account id -> wrapped data key; an empty value marks a
	// forgotten account (its key destroyed, never to be created again).
	bucketKeys = []byte("keys")
	// bucketIndex: lookup (keyed hash of a normalised email) -> account id.
	bucketIndex = []byte("index")
)

// ErrLocked is Open on a file another process holds (a running server).
var ErrLocked = errors.New("keys.db is locked by another process")

// Options tune Open.
type Options struct {
	// ReadOnly opens an existing file without writing to it, sharing it
	// with other readers (the operator tools on a stopped data dir).
	ReadOnly bool
	// LockTimeout is how long Open waits for the file lock (1s when zero).
	LockTimeout time.Duration
}

// Store is a domain.KeyStore in one bbolt file, safe for concurrent use.
type Store struct {
	path string
	opts Options

	// mu guards db: Forget swaps in the compacted file under the write lock.
	mu sync.RWMutex
	db *bolt.DB
}

var _ domain.KeyStore = (*Store)(nil)

// Open opens or creates (mode 0600) the key store at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	s := &Store{path: path, opts: opts}
	db, err := s.open(path)
	if err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if err := db.Update(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketKeys, bucketIndex} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("boltkeys: %s: %w", path, err)
		}
	}
	s.db = db
	return s, nil
}

func (s *Store) open(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: s.opts.LockTimeout, ReadOnly: s.opts.ReadOnly})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("boltkeys: %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("boltkeys: open %s: %w", path, err)
	}
	return db, nil
}

// Close closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

var errClosed = fmt.Errorf("boltkeys: closed: %w", domain.ErrKeyStoreUnavailable)

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errClosed
	}
	return s.db.View(fn)
}

func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errClosed
	}
	return s.db.Update(fn)
}

// bucket is a bucket of tx; nil in a read-only file that never had one
// (nothing written yet).
func bucket(tx *bolt.Tx, name []byte) *bolt.Bucket { return tx.Bucket(name) }

// Key returns the account's data key.
func (s *Store) Key(_ context.Context, accountID string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketKeys)
		if b == nil {
			return domain.ErrNotFound
		}
		v := b.Get([]byte(accountID))
		switch {
		case v == nil:
			return domain.ErrNotFound
		case len(v) == 0:
			return domain.ErrAccountForgotten
		}
		out = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("data key of %s: %w", accountID, err)
	}
	return out, nil
}

// CreateKey keeps key unless the account has one.
func (s *Store) CreateKey(_ context.Context, accountID string, key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty data key", domain.ErrInvalid)
	}
	var out []byte
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		switch v := b.Get([]byte(accountID)); {
		case v == nil:
			out = bytes.Clone(key)
			return b.Put([]byte(accountID), out)
		case len(v) == 0:
			return domain.ErrAccountForgotten
		default:
			out = bytes.Clone(v)
			return nil
		}
	})
	if err != nil {
		return nil, fmt.Errorf("create the data key of %s: %w", accountID, err)
	}
	return out, nil
}

// Claim points lookup at accountID unless it points somewhere already.
func (s *Store) Claim(_ context.Context, lookup []byte, accountID string) (string, error) {
	var out string
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIndex)
		if v := b.Get(lookup); v != nil {
			out = string(v)
			return nil
		}
		out = accountID
		return b.Put(bytes.Clone(lookup), []byte(accountID))
	})
	if err != nil {
		return "", fmt.Errorf("claim a login index entry: %w", err)
	}
	return out, nil
}

// Lookup returns the account lookup points at.
func (s *Store) Lookup(_ context.Context, lookup []byte) (string, error) {
	var out string
	err := s.view(func(tx *bolt.Tx) error {
		b := bucket(tx, bucketIndex)
		if b == nil {
			return domain.ErrNotFound
		}
		v := b.Get(lookup)
		if v == nil {
			return domain.ErrNotFound
		}
		out = string(v)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("login index: %w", err)
	}
	return out, nil
}

// Forget destroys the accounts' keys and index entries, then rewrites the
// file without the freed pages that still held them.
func (s *Store) Forget(_ context.Context, accountIDs ...string) error {
	if len(accountIDs) == 0 {
		return nil
	}
	gone := make(map[string]bool, len(accountIDs))
	for _, id := range accountIDs {
		gone[id] = true
	}
	destroyed := false
	err := s.update(func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		for id := range gone {
			v := keys.Get([]byte(id))
			if v != nil && len(v) == 0 {
				continue // forgotten already
			}
			destroyed = destroyed || v != nil
			if err := keys.Put([]byte(id), []byte{}); err != nil {
				return err
			}
		}
		// The index is small (one entry per account) and forgetting is rare:
		// a scan is simpler than keeping a reverse index in step.
		index := tx.Bucket(bucketIndex)
		var drop [][]byte
		if err := index.ForEach(func(k, v []byte) error {
			if gone[string(v)] {
				drop = append(drop, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range drop {
			if err := index.Delete(k); err != nil {
				return err
			}
		}
		destroyed = destroyed || len(drop) > 0
		return nil
	})
	if err != nil {
		return fmt.Errorf("forget %d account(s): %w", len(accountIDs), err)
	}
	if !destroyed {
		return nil
	}
	if err := s.compact(); err != nil {
		return fmt.Errorf("forget: rewrite %s without the destroyed keys: %w", s.path, err)
	}
	return nil
}

// compact rewrites the file with only its live entries and puts the copy in
// its place, so no freed page keeps a destroyed key. The new file is opened
// (and locked) before the old one is closed.
func (s *Store) compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return errClosed
	}
	if err := boltstore.Rewrite(s.db, s.path, s.opts.LockTimeout); err != nil {
		return err
	}
	db, err := s.open(s.path)
	if err != nil {
		// The old handle still works (on the old, now unlinked file), but
		// what it writes would be lost: refuse further use.
		_ = s.db.Close()
		s.db = nil
		return err
	}
	old := s.db
	s.db = db
	return old.Close()
}
