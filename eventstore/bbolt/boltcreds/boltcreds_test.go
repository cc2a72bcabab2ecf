package boltcreds_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltcreds"
	"github.com/cryptovps/cryptovps/tests/credtest"
)

func TestContract(t *testing.T) {
	credtest.Run(t, func(t *testing.T) domain.Credentials {
		s, err := boltcreds.Open(filepath.Join(t.TempDir(), "credentials.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestTheFileIsPrivateLockedAndKeepsWhatItHoldsAcrossARestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "credentials.db")
	s, err := boltcreds.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPassword(ctx, "acct-a", "a", "$argon2id$a"); err != nil {
		t.Fatal(err)
	}
	if _, err := boltcreds.Open(path); !errors.Is(err, boltcreds.ErrLocked) {
		t.Fatalf("a second open: want ErrLocked, got %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A file readable by others is refused, saying how to fix it.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := boltcreds.Open(path); err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("a file readable by others: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = boltcreds.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Password(ctx, "a"); err != nil || got != "$argon2id$a" {
		t.Fatalf("after a restart: %q, %v", got, err)
	}
	fresh := filepath.Join(filepath.Dir(path), "fresh.db")
	f, err := boltcreds.Open(fresh)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("a new file's mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

// TestEraseLeavesNoByteOfTheErasedHashesInTheFile: bbolt keeps deleted bytes
// in free pages; Erase rewrites the file without them.
func TestEraseLeavesNoByteOfTheErasedHashesInTheFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "credentials.db")
	s, err := boltcreds.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gone, kept := "$argon2id$v=19$m=19456,t=2,p=1$R09ORV9TQUxUX0dPTkU$R09ORV9LRVlfR09ORV9HT05FX0dPTkVfR09ORQ", "$argon2id$kept"
	if err := s.PutPassword(ctx, "forgotten", "ref-gone", gone); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPassword(ctx, "other", "ref-kept", kept); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutAPIKey(ctx, domain.APIKeyHash{AccountID: "forgotten", KeyID: "k", Hash: []byte("GONE-KEY-HASH-GONE-KEY-HASH-0001")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Erase(ctx, "forgotten"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{gone, "R09ORV9LRVlf", "GONE-KEY-HASH"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the file still holds %q after Erase", secret)
		}
	}
	if !strings.Contains(string(raw), kept) {
		t.Fatal("the rewrite lost another account's hash")
	}
	if got, err := s.Password(ctx, "ref-kept"); err != nil || got != kept {
		t.Fatalf("after the rewrite: %q, %v", got, err)
	}
	if err := s.PutPassword(ctx, "later", "ref-later", "$argon2id$later"); err != nil {
		t.Fatalf("a write after the rewrite: %v", err)
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Fatalf("the rewrite left its temporary file: %v", err)
	}
}
