package boltkeys_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/domain/keystoretest"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltkeys"
)

func open(t *testing.T, path string, opts boltkeys.Options) *boltkeys.Store {
	t.Helper()
	s, err := boltkeys.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContract(t *testing.T) {
	keystoretest.Run(t, func(t *testing.T) domain.KeyStore {
		return open(t, filepath.Join(t.TempDir(), "keys.db"), boltkeys.Options{})
	})
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeysSurviveAReopenAndTheFileIsPrivate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.db")
	s := open(t, path, boltkeys.Options{})
	key, lookup := random(t, 60), random(t, 32)
	if _, err := s.CreateKey(ctx, "a", key); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, lookup, "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("keys.db mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	r := open(t, path, boltkeys.Options{ReadOnly: true})
	if got, err := r.Key(ctx, "a"); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Key after reopen = %x, %v", got, err)
	}
	if got, err := r.Lookup(ctx, lookup); err != nil || got != "a" {
		t.Fatalf("Lookup after reopen = %q, %v", got, err)
	}
	// A second writer is refused while a reader holds the file.
	if _, err := boltkeys.Open(path, boltkeys.Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, boltkeys.ErrLocked) {
		t.Fatalf("a writer beside a reader: %v, want ErrLocked", err)
	}
}

// After Forget, no byte of the destroyed key or index entry is left
// anywhere in the file (bbolt keeps freed pages' bytes until reuse: the file
// is rewritten), while the other accounts' are, and still work.
func TestForgetLeavesNoByteOfTheKeyInTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.db")
	s := open(t, path, boltkeys.Options{})
	goneKey, keptKey := random(t, 60), random(t, 60)
	goneLookup := random(t, 32)
	if _, err := s.CreateKey(ctx, "gone", goneKey); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, goneLookup, "gone"); err != nil {
		t.Fatal(err)
	}
	// Plenty of other accounts, written after, so the pages are shared.
	for i := range 200 {
		id := string(rune('A'+i%26)) + string(random(t, 8))
		if _, err := s.CreateKey(ctx, id, random(t, 60)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateKey(ctx, "kept", keptKey); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(before, goneKey) || !bytes.Contains(before, goneLookup) {
		t.Fatal("the key is not in the file before Forget: the test shows nothing")
	}
	if err := s.Forget(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(after, goneKey) || bytes.Contains(after, goneLookup) {
		t.Fatal("a destroyed key or index entry is still in keys.db after Forget")
	}
	if !bytes.Contains(after, keptKey) {
		t.Fatal("another account's key is gone from keys.db")
	}
	if got, err := s.Key(ctx, "kept"); err != nil || !bytes.Equal(got, keptKey) {
		t.Fatalf("Key of another account after the rewrite = %x, %v", got, err)
	}
	if _, err := s.Key(ctx, "gone"); !errors.Is(err, domain.ErrAccountForgotten) {
		t.Fatalf("Key of the forgotten account: %v", err)
	}
	// The store keeps working on the rewritten file, and it persists.
	if _, err := s.CreateKey(ctx, "new", keptKey); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := open(t, path, boltkeys.Options{})
	if _, err := r.Key(ctx, "new"); err != nil {
		t.Fatalf("a key written after the rewrite is lost: %v", err)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("the rewrite left its temporary file: %v", err)
	}
}
