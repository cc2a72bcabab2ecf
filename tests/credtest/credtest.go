// Package credtest is the contract every credential store (domain.Credentials)
// passes: the bbolt file of the embedded default and the PostgreSQL table of
// the scale-out topology alike. Each adapter's tests call Run with a factory
// of fresh, empty stores.
package credtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
)

// Run runs the contract against stores made by open; each call must return
// a new, empty store, closed by the factory when t ends.
func Run(t *testing.T, open func(t *testing.T) domain.Credentials) {
	ctx := context.Background()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	t.Run("a password is stored under its ref, found by it, and deleted", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id, one, two := uuid.NewString(), uuid.NewString(), uuid.NewString()
		if _, err := s.Password(ctx, one); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("unknown ref: want not found, got %v", err)
		}
		must(t, s.PutPassword(ctx, id, one, "$argon2id$one"))
		must(t, s.PutPassword(ctx, id, two, "$argon2id$two"))
		wantPassword(t, s, one, "$argon2id$one")
		wantPassword(t, s, two, "$argon2id$two")
		must(t, s.DeletePassword(ctx, one))
		must(t, s.DeletePassword(ctx, one)) // again: nothing
		if _, err := s.Password(ctx, one); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("deleted ref: want not found, got %v", err)
		}
		wantPassword(t, s, two, "$argon2id$two")
		if err := s.PutPassword(ctx, "", uuid.NewString(), "x"); err == nil {
			t.Fatal("a password without an account was stored")
		}
	})

	t.Run("AddPassword fills the legacy ref once, and never for an erased account", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := uuid.NewString()
		if added, err := s.AddPassword(ctx, id, "$argon2id$old"); err != nil || !added {
			t.Fatalf("first add: %v %v", added, err)
		}
		if added, err := s.AddPassword(ctx, id, "$argon2id$older"); err != nil || added {
			t.Fatalf("second add: %v %v", added, err)
		}
		wantPassword(t, s, domain.LegacyRef(id), "$argon2id$old")
		newer := uuid.NewString()
		must(t, s.PutPassword(ctx, id, newer, "$argon2id$new"))

		must(t, s.Erase(ctx, id))
		for _, ref := range []string{domain.LegacyRef(id), newer} {
			if _, err := s.Password(ctx, ref); !errors.Is(err, domain.ErrNotFound) {
				t.Fatalf("erased %s: want not found, got %v", ref, err)
			}
		}
		if added, err := s.AddPassword(ctx, id, "$argon2id$old"); err != nil || added {
			t.Fatalf("add after erase: %v %v", added, err)
		}
		// A deliberate new password is another matter.
		again := uuid.NewString()
		must(t, s.PutPassword(ctx, id, again, "$argon2id$again"))
		wantPassword(t, s, again, "$argon2id$again")
	})

	t.Run("simultaneous AddPassword: exactly one wins", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		id := uuid.NewString()
		var wg sync.WaitGroup
		wins := make([]bool, 8)
		for i := range wins {
			wg.Go(func() {
				added, err := s.AddPassword(ctx, id, fmt.Sprintf("$argon2id$%d", i))
				if err != nil {
					t.Error(err)
				}
				wins[i] = added
			})
		}
		wg.Wait()
		winner := slices.Index(wins, true)
		if winner < 0 || slices.Index(wins[winner+1:], true) >= 0 {
			t.Fatalf("winners: %v", wins)
		}
		wantPassword(t, s, domain.LegacyRef(id), fmt.Sprintf("$argon2id$%d", winner))
	})

	t.Run("API keys are found by hash, listed per account, touched and deleted", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		a, b := uuid.NewString(), uuid.NewString()
		k1 := key(a, t0.Add(time.Hour))
		k2 := key(a, time.Time{})
		k3 := key(b, time.Time{})
		for _, k := range []domain.APIKeyHash{k1, k2, k3} {
			if put, err := s.PutAPIKey(ctx, k); err != nil || !put {
				t.Fatalf("put %s: %v %v", k.KeyID, put, err)
			}
		}
		// The same id again keeps the first.
		again := key(a, time.Time{})
		again.KeyID = k1.KeyID
		if put, err := s.PutAPIKey(ctx, again); err != nil || put {
			t.Fatalf("put an existing id: %v %v", put, err)
		}
		got, err := s.FindAPIKey(ctx, k1.Hash)
		must(t, err)
		wantKey(t, got, k1)
		if _, err := s.FindAPIKey(ctx, again.Hash); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("the refused key's hash: want not found, got %v", err)
		}
		got, err = s.APIKey(ctx, a, k2.KeyID)
		must(t, err)
		wantKey(t, got, k2)
		if _, err := s.APIKey(ctx, b, k2.KeyID); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("another account's key: want not found, got %v", err)
		}
		list, err := s.APIKeys(ctx, a)
		must(t, err)
		if ids := keyIDs(list); !slices.Equal(ids, sorted(k1.KeyID, k2.KeyID)) {
			t.Fatalf("account a lists %v", ids)
		}
		none, err := s.APIKeys(ctx, uuid.NewString())
		if err != nil || len(none) != 0 {
			t.Fatalf("an account without keys lists %v, %v", none, err)
		}

		// A use within the sealed window keeps the sealed copy; one after it
		// drops it.
		must(t, s.TouchAPIKey(ctx, a, k1.KeyID, t0.Add(time.Minute)))
		got, err = s.APIKey(ctx, a, k1.KeyID)
		must(t, err)
		if !got.LastUsedAt.Equal(t0.Add(time.Minute)) || got.Sealed != k1.Sealed {
			t.Fatalf("after a touch: %+v", got)
		}
		must(t, s.TouchAPIKey(ctx, a, k1.KeyID, t0.Add(2*time.Hour)))
		got, err = s.APIKey(ctx, a, k1.KeyID)
		must(t, err)
		if !got.LastUsedAt.Equal(t0.Add(2*time.Hour)) || got.Sealed != "" || !got.SealedUntil.IsZero() {
			t.Fatalf("after a touch past the window: %+v", got)
		}
		must(t, s.TouchAPIKey(ctx, a, uuid.NewString(), t0)) // gone: nothing

		must(t, s.DeleteAPIKey(ctx, a, k1.KeyID))
		must(t, s.DeleteAPIKey(ctx, a, k1.KeyID)) // again: nothing
		if _, err := s.FindAPIKey(ctx, k1.Hash); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("deleted key: want not found, got %v", err)
		}
		if _, err := s.APIKey(ctx, a, k1.KeyID); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("deleted key by id: want not found, got %v", err)
		}
		// The id can be used again (a new key), the others are intact.
		if put, err := s.PutAPIKey(ctx, key(a, time.Time{})); err != nil || !put {
			t.Fatalf("put after delete: %v %v", put, err)
		}
		got, err = s.FindAPIKey(ctx, k3.Hash)
		must(t, err)
		wantKey(t, got, k3)
	})

	t.Run("Erase removes the account's keys and password only", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		a, b := uuid.NewString(), uuid.NewString()
		refA, refB := uuid.NewString(), uuid.NewString()
		must(t, s.PutPassword(ctx, a, refA, "$argon2id$a"))
		must(t, s.PutPassword(ctx, b, refB, "$argon2id$b"))
		ka, kb := key(a, time.Time{}), key(b, time.Time{})
		for _, k := range []domain.APIKeyHash{ka, kb} {
			if _, err := s.PutAPIKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		must(t, s.Erase(ctx, a))
		if _, err := s.FindAPIKey(ctx, ka.Hash); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("erased account's key: %v", err)
		}
		if list, err := s.APIKeys(ctx, a); err != nil || len(list) != 0 {
			t.Fatalf("erased account lists %v, %v", list, err)
		}
		if _, err := s.Password(ctx, refA); !errors.Is(err, domain.ErrNotFound) {
			t.Fatalf("erased account's password: %v", err)
		}
		wantPassword(t, s, refB, "$argon2id$b")
		got, err := s.FindAPIKey(ctx, kb.Hash)
		must(t, err)
		wantKey(t, got, kb)
	})

	t.Run("the import position is empty, then what was set", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		p, err := s.Imported(ctx)
		if err != nil || p != "" {
			t.Fatalf("fresh store: %q, %v", p, err)
		}
		must(t, s.SetImported(ctx, "12/12"))
		must(t, s.SetImported(ctx, "40/40"))
		if p, err := s.Imported(ctx); err != nil || p != "40/40" {
			t.Fatalf("after set: %q, %v", p, err)
		}
	})

	t.Run("a canceled context is refused", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.PutPassword(cctx, uuid.NewString(), uuid.NewString(), "x"); err == nil {
			t.Fatal("PutPassword with a canceled context succeeded")
		}
	})
}

func key(accountID string, sealedUntil time.Time) domain.APIKeyHash {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		panic(err)
	}
	sum := sha256.Sum256(raw)
	k := domain.APIKeyHash{AccountID: accountID, KeyID: uuid.NewString(), Hash: sum[:]}
	if !sealedUntil.IsZero() {
		k.Sealed, k.SealedUntil = "sealed:"+uuid.NewString(), sealedUntil
	}
	return k
}

func keyIDs(list []domain.APIKeyHash) []string {
	var ids []string
	for _, k := range list {
		ids = append(ids, k.KeyID)
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids ...string) []string { slices.Sort(ids); return ids }

func wantKey(t *testing.T, got, want domain.APIKeyHash) {
	t.Helper()
	if got.AccountID != want.AccountID || got.KeyID != want.KeyID || !bytes.Equal(got.Hash, want.Hash) ||
		got.Sealed != want.Sealed || !got.SealedUntil.Equal(want.SealedUntil) || !got.LastUsedAt.Equal(want.LastUsedAt) {
		t.Fatalf("key\n got %+v\nwant %+v", got, want)
	}
}

func wantPassword(t *testing.T, s domain.Credentials, id, want string) {
	t.Helper()
	got, err := s.Password(context.Background(), id)
	if err != nil || got != want {
		t.Fatalf("password of %s: %q, %v; want %q", id, got, err, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
