// Package boltcreds is the credential store of the embedded default
// (domain.Credentials): password hashes and API-key hashes in a bbolt file of
// their own beside the event log, <data-dir>/credentials.db.
//
// A file of its own rather than a bucket in events.db: the event log file is
// copied whole (the operator snapshot, `cryptovps backup`, `restore-check`,
// the audit of a running server), and a bucket in it would put every hash in
// each of those copies. Apart, the log and its copies hold no credential,
// and this file is backed up (or not) like the other secrets of the data dir.
//
// File layout (format 1):
//
//	meta/format               "1"
//	meta/imported             log position up to which old events' hashes were moved here
//	passwords/<ref>           <account> NUL the argon2id hash (PHC string)
//	accountrefs/<account>/<ref>  every ref an account has a hash under (for Erase)
//	erased/<account>          an erased account: no old hash is moved back
//	apikeys/<account>/<key>   JSON apiKey (hash, sealed copy, last use)
//	apikeyhashes/<sha256>     <account>/<key>
//
// bbolt leaves the bytes of what it deletes in free pages until they are
// reused: Erase (forgetting an account) rewrites the file with only the live
// entries, so no byte of an erased account's hashes stays in it. A hash a
// password change replaced may stay in a free page until it is reused (the
// next Erase clears it too). The file is 0600 in a 0700 directory.
package boltcreds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	boltstore "github.com/cryptovps/cryptovps/eventstore/bbolt"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// ErrLocked is returned by Open when another process holds the file.
var ErrLocked = errors.New("credential store: file is locked by another process")

const formatVersion = "1"

var (
	bucketMeta      = []byte("meta")
	bucketPasswords = []byte("passwords")
	bucketRefs      = []byte("accountrefs")
	bucketErased    = []byte("erased")
	bucketKeys      = []byte("apikeys")
	bucketKeyHashes = []byte("apikeyhashes")
	keyFormat       = []byte("format")
	keyImported     = []byte("imported")
)

// Store is a domain.Credentials in one bbolt file, safe for concurrent use.
type Store struct {
	path string

	// mu guards db: Erase swaps in the rewritten file under the write lock.
	mu sync.RWMutex
	db *bolt.DB
}

var _ domain.Credentials = (*Store)(nil)

// Open opens or creates the credential store at path (mode 0600). It fails
// with an error wrapping ErrLocked when another process has it open.
func Open(path string) (*Store, error) {
	// Like every secret of the data dir, an existing file others can read
	// is refused rather than used: the hashes may already have leaked, and
	// the operator must know.
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("credential store %s is readable by others (mode %04o): chmod 600 %s, and consider the password hashes in it exposed",
			path, fi.Mode().Perm(), path)
	}
	db, err := openFile(path)
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(keyFormat); {
		case v == nil:
			if err := meta.Put(keyFormat, []byte(formatVersion)); err != nil {
				return err
			}
		case string(v) != formatVersion:
			return fmt.Errorf("%s has format %q, this build reads %q", path, v, formatVersion)
		}
		for _, b := range [][]byte{bucketPasswords, bucketRefs, bucketErased, bucketKeys, bucketKeyHashes} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("credential store: initialise %s: %w", path, err)
	}
	return &Store{db: db, path: path}, nil
}

func openFile(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (is another instance running with the same data directory?)", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("credential store: open %s: %w", path, err)
	}
	return db, nil
}

// errClosed is the store used after Close (or after a rewrite failed).
var errClosed = errors.New("credential store: closed")

// Path is the file the store was opened on.
func (s *Store) Path() string { return s.path }

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

func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return err
	}
	return fmt.Errorf("credential store: %s: %w: %w", op, eventstore.ErrUnavailable, err)
}

func (s *Store) view(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errClosed
	}
	return s.fail(op, s.db.View(fn))
}

func (s *Store) update(ctx context.Context, op string, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return errClosed
	}
	return s.fail(op, s.db.Update(fn))
}

func notFound(what string) error { return fmt.Errorf("%s: %w", what, domain.ErrNotFound) }

// Password is the password hash stored under ref.
func (s *Store) Password(ctx context.Context, ref string) (string, error) {
	var hash string
	err := s.view(ctx, "read password", func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPasswords).Get([]byte(ref))
		if v == nil {
			return notFound("password " + ref)
		}
		_, h, _ := bytes.Cut(v, []byte{0})
		hash = string(h)
		return nil
	})
	return hash, err
}

func putPassword(tx *bolt.Tx, accountID, ref, hash string) error {
	if accountID == "" || ref == "" || strings.ContainsAny(accountID, "/\x00") {
		return fmt.Errorf("%w: a password without account or ref", domain.ErrInvalid)
	}
	v := append(append([]byte(accountID), 0), hash...)
	if err := tx.Bucket(bucketPasswords).Put([]byte(ref), v); err != nil {
		return err
	}
	return tx.Bucket(bucketRefs).Put([]byte(accountID+"/"+ref), []byte{})
}

// PutPassword stores an account's password hash under ref.
func (s *Store) PutPassword(ctx context.Context, accountID, ref, hash string) error {
	return s.update(ctx, "store password", func(tx *bolt.Tx) error { return putPassword(tx, accountID, ref, hash) })
}

// DeletePassword removes the hash under ref.
func (s *Store) DeletePassword(ctx context.Context, ref string) error {
	return s.update(ctx, "delete password", func(tx *bolt.Tx) error { return deletePassword(tx, []byte(ref)) })
}

func deletePassword(tx *bolt.Tx, ref []byte) error {
	passwords := tx.Bucket(bucketPasswords)
	v := passwords.Get(ref)
	if v == nil {
		return nil
	}
	account, _, _ := bytes.Cut(v, []byte{0})
	if err := tx.Bucket(bucketRefs).Delete(append(append(bytes.Clone(account), '/'), ref...)); err != nil {
		return err
	}
	return passwords.Delete(ref)
}

// AddPassword stores hash under the account's legacy ref when nothing is
// there and the account was never erased.
func (s *Store) AddPassword(ctx context.Context, accountID, hash string) (bool, error) {
	added := false
	err := s.update(ctx, "add password", func(tx *bolt.Tx) error {
		ref := domain.LegacyRef(accountID)
		if tx.Bucket(bucketErased).Get([]byte(accountID)) != nil || tx.Bucket(bucketPasswords).Get([]byte(ref)) != nil {
			return nil
		}
		added = true
		return putPassword(tx, accountID, ref, hash)
	})
	return added, err
}

// apiKey is a key's record; its account and id are in the bucket key.
type apiKey struct {
	Hash        []byte    `json:"hash"`
	Sealed      string    `json:"sealed,omitempty"`
	SealedUntil time.Time `json:"sealedUntil,omitzero"`
	LastUsedAt  time.Time `json:"lastUsedAt,omitzero"`
}

func keyOf(accountID, keyID string) []byte { return []byte(accountID + "/" + keyID) }

func decodeKey(k, v []byte) (domain.APIKeyHash, error) {
	var r apiKey
	if err := json.Unmarshal(v, &r); err != nil {
		return domain.APIKeyHash{}, fmt.Errorf("API key %s: %w", k, err)
	}
	account, id, ok := bytes.Cut(k, []byte("/"))
	if !ok {
		return domain.APIKeyHash{}, fmt.Errorf("API key record %q", k)
	}
	return domain.APIKeyHash{AccountID: string(account), KeyID: string(id), Hash: r.Hash, Sealed: r.Sealed,
		SealedUntil: r.SealedUntil, LastUsedAt: r.LastUsedAt}, nil
}

func encodeKey(k domain.APIKeyHash) ([]byte, error) {
	return json.Marshal(apiKey{Hash: k.Hash, Sealed: k.Sealed, SealedUntil: k.SealedUntil.UTC(), LastUsedAt: k.LastUsedAt.UTC()})
}

// PutAPIKey stores a new key; false when the account has one with its id.
func (s *Store) PutAPIKey(ctx context.Context, k domain.APIKeyHash) (bool, error) {
	if k.AccountID == "" || k.KeyID == "" || len(k.Hash) == 0 || bytes.ContainsRune([]byte(k.AccountID), '/') {
		return false, fmt.Errorf("%w: API key without account, id or hash", domain.ErrInvalid)
	}
	put := false
	err := s.update(ctx, "store API key", func(tx *bolt.Tx) error {
		keys, hashes := tx.Bucket(bucketKeys), tx.Bucket(bucketKeyHashes)
		id := keyOf(k.AccountID, k.KeyID)
		if keys.Get(id) != nil {
			return nil
		}
		if hashes.Get(k.Hash) != nil {
			return fmt.Errorf("%w: another API key has this hash", domain.ErrInvalid)
		}
		v, err := encodeKey(k)
		if err != nil {
			return err
		}
		put = true
		if err := keys.Put(id, v); err != nil {
			return err
		}
		return hashes.Put(k.Hash, id)
	})
	return put, err
}

// APIKey is one of the account's keys.
func (s *Store) APIKey(ctx context.Context, accountID, keyID string) (domain.APIKeyHash, error) {
	var out domain.APIKeyHash
	err := s.view(ctx, "read API key", func(tx *bolt.Tx) error {
		id := keyOf(accountID, keyID)
		v := tx.Bucket(bucketKeys).Get(id)
		if v == nil {
			return notFound("API key " + keyID)
		}
		var err error
		out, err = decodeKey(id, v)
		return err
	})
	return out, err
}

// FindAPIKey is the key whose hash is hash.
func (s *Store) FindAPIKey(ctx context.Context, hash []byte) (domain.APIKeyHash, error) {
	var out domain.APIKeyHash
	err := s.view(ctx, "find API key", func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketKeyHashes).Get(hash)
		if id == nil {
			return notFound("API key")
		}
		v := tx.Bucket(bucketKeys).Get(id)
		if v == nil {
			return notFound("API key")
		}
		var err error
		out, err = decodeKey(id, v)
		return err
	})
	return out, err
}

// APIKeys lists the account's keys.
func (s *Store) APIKeys(ctx context.Context, accountID string) ([]domain.APIKeyHash, error) {
	out := []domain.APIKeyHash{}
	err := s.view(ctx, "list API keys", func(tx *bolt.Tx) error {
		prefix := []byte(accountID + "/")
		c := tx.Bucket(bucketKeys).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			key, err := decodeKey(k, v)
			if err != nil {
				return err
			}
			out = append(out, key)
		}
		return nil
	})
	return out, err
}

// TouchAPIKey records the key's last use, and drops its sealed copy once it
// is past keeping.
func (s *Store) TouchAPIKey(ctx context.Context, accountID, keyID string, at time.Time) error {
	return s.update(ctx, "touch API key", func(tx *bolt.Tx) error {
		keys := tx.Bucket(bucketKeys)
		id := keyOf(accountID, keyID)
		v := keys.Get(id)
		if v == nil {
			return nil
		}
		k, err := decodeKey(id, v)
		if err != nil {
			return err
		}
		k.LastUsedAt = at
		if !at.Before(k.SealedUntil) {
			k.Sealed, k.SealedUntil = "", time.Time{}
		}
		b, err := encodeKey(k)
		if err != nil {
			return err
		}
		return keys.Put(id, b)
	})
}

// DeleteAPIKey removes the key.
func (s *Store) DeleteAPIKey(ctx context.Context, accountID, keyID string) error {
	return s.update(ctx, "delete API key", func(tx *bolt.Tx) error {
		return deleteKey(tx, keyOf(accountID, keyID))
	})
}

func deleteKey(tx *bolt.Tx, id []byte) error {
	keys := tx.Bucket(bucketKeys)
	v := keys.Get(id)
	if v == nil {
		return nil
	}
	k, err := decodeKey(id, v)
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketKeyHashes).Delete(k.Hash); err != nil {
		return err
	}
	return keys.Delete(id)
}

// Erase removes every credential of the account and remembers it, then
// rewrites the file so that no freed page keeps them.
func (s *Store) Erase(ctx context.Context, accountID string) error {
	err := s.update(ctx, "erase credentials", func(tx *bolt.Tx) error {
		id := []byte(accountID)
		prefix := []byte(accountID + "/")
		var refs [][]byte
		rc := tx.Bucket(bucketRefs).Cursor()
		for k, _ := rc.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = rc.Next() {
			refs = append(refs, bytes.Clone(k[len(prefix):]))
		}
		for _, ref := range refs {
			if err := deletePassword(tx, ref); err != nil {
				return err
			}
		}
		var ids [][]byte
		c := tx.Bucket(bucketKeys).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			ids = append(ids, bytes.Clone(k))
		}
		for _, k := range ids {
			if err := deleteKey(tx, k); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketErased).Put(id, []byte{})
	})
	if err != nil {
		return err
	}
	if err := s.compact(); err != nil {
		return s.fail("rewrite "+s.path+" without the erased credentials", err)
	}
	return nil
}

// compact rewrites the file with only its live entries and puts the copy in
// its place. The new file is opened (and locked) before the old one is
// closed; a crash in between leaves the old file whole.
func (s *Store) compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return errClosed
	}
	if err := boltstore.Rewrite(s.db, s.path, time.Second); err != nil {
		return err
	}
	db, err := openFile(s.path)
	if err != nil {
		// The old handle writes to an unlinked file: refuse further use.
		_ = s.db.Close()
		s.db = nil
		return err
	}
	old := s.db
	s.db = db
	return old.Close()
}

// PasswordCount is how many password hashes the file holds: one per
// account, plus any a cut registration or change left unnamed.
func (s *Store) PasswordCount(ctx context.Context) (int, error) {
	n := 0
	err := s.view(ctx, "count passwords", func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketPasswords).Stats().KeyN
		return nil
	})
	return n, err
}

// Imported is how far old events' hashes have been moved here.
func (s *Store) Imported(ctx context.Context) (string, error) {
	var out string
	err := s.view(ctx, "read import position", func(tx *bolt.Tx) error {
		out = string(tx.Bucket(bucketMeta).Get(keyImported))
		return nil
	})
	return out, err
}

// SetImported moves the import position on.
func (s *Store) SetImported(ctx context.Context, position string) error {
	return s.update(ctx, "store import position", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyImported, []byte(position))
	})
}
