package app_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltkeys"
)

func personal(t *testing.T, secret byte) (*app.Personal, *boltkeys.Store) {
	t.Helper()
	ks, err := boltkeys.Open(filepath.Join(t.TempDir(), "keys.db"), boltkeys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	p, err := app.NewPersonal(ks, bytes.Repeat([]byte{secret}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return p, ks
}

func TestASealedEmailOpensOnlyForItsAccountUntilItIsForgotten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, ks := personal(t, 1)
	sealed, err := p.SealEmail(ctx, "a", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "ann") {
		t.Fatalf("the sealed form shows the email: %s", sealed)
	}
	// The key is stored wrapped: not the raw key, not the email.
	wrapped, err := ks.Key(ctx, "a")
	if err != nil || bytes.Contains(wrapped, []byte("ann")) || len(wrapped) <= 32 {
		t.Fatalf("stored key %q, %v", wrapped, err)
	}
	if got, err := p.Email(ctx, "a", domain.StoredEmail{Sealed: sealed}, false); err != nil || got != "ann@example.com" {
		t.Fatalf("Email = %q, %v", got, err)
	}
	// Moved onto another account, it opens for nobody.
	if _, err := p.SealEmail(ctx, "b", "bob@example.com"); err != nil {
		t.Fatal(err)
	}
	if got, err := p.Email(ctx, "b", domain.StoredEmail{Sealed: sealed}, false); err == nil {
		t.Fatalf("account b opened account a's email: %q", got)
	}
	// A plain email (an old account) is shown as it is; a forgotten
	// account shows nothing of it.
	if got, _ := p.Email(ctx, "c", domain.StoredEmail{Plain: "old@example.com"}, false); got != "old@example.com" {
		t.Fatalf("plain email shown as %q", got)
	}
	if got, _ := p.Email(ctx, "c", domain.StoredEmail{Plain: "old@example.com"}, true); got != domain.ForgottenEmail {
		t.Fatalf("a forgotten account shows %q", got)
	}
	if err := p.Forget(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// Even a state that does not know yet (an old copy of the log).
	if got, err := p.Email(ctx, "a", domain.StoredEmail{Sealed: sealed}, false); err != nil || got != domain.ForgottenEmail {
		t.Fatalf("after Forget: %q, %v", got, err)
	}
	if _, err := p.SealEmail(ctx, "a", "ann@example.com"); !errors.Is(err, domain.ErrAccountForgotten) {
		t.Fatalf("sealing for a forgotten account: %v", err)
	}
}

func TestAnotherSecretsKeyOpensNothingAndFindsNobody(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, ks := personal(t, 1)
	sealed, err := p.SealEmail(ctx, "a", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Claim(ctx, "ann@example.com", "a"); err != nil {
		t.Fatal(err)
	}
	other, err := app.NewPersonal(ks, bytes.Repeat([]byte{2}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := other.Email(ctx, "a", domain.StoredEmail{Sealed: sealed}, false); err == nil {
		t.Fatalf("another secrets key opened the email: %q", got)
	}
	none := func(context.Context, string) (domain.Account, error) { return domain.NewAccount(""), nil }
	if id, err := other.Resolve(ctx, "ann@example.com", none); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("another secrets key found %q, %v", id, err)
	}
	if id, err := p.Resolve(ctx, "ann@example.com", none); err != nil || id != "a" {
		t.Fatalf("Resolve = %q, %v", id, err)
	}
	if bytes.Equal(p.Lookup("ann@example.com"), other.Lookup("ann@example.com")) || len(p.Lookup("x")) != 32 {
		t.Fatal("the login index is not keyed by the secrets key")
	}
}

func TestResolveFindsAnOldAccountByItsDerivedIDOnlyWhileItHoldsThatEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, _ := personal(t, 1)
	legacy := app.LegacyAccountID("old@example.com")
	state := domain.NewAccount(legacy)
	state.Registered, state.Email = true, domain.StoredEmail{Plain: "old@example.com"}
	load := func(_ context.Context, id string) (domain.Account, error) {
		if id == legacy {
			return state, nil
		}
		return domain.NewAccount(id), nil
	}
	if id, err := p.Resolve(ctx, "old@example.com", load); err != nil || id != legacy {
		t.Fatalf("Resolve = %q, %v", id, err)
	}
	state.Forgotten, state.Email = true, domain.StoredEmail{}
	if id, err := p.Resolve(ctx, "old@example.com", load); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("a forgotten old account is still found: %q, %v", id, err)
	}
}

func TestSealedSecretsAreBoundToWhatTheyAreFor(t *testing.T) {
	t.Parallel()
	s, err := app.NewSealer(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.SealFor("secret", "email:a")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.OpenFor(sealed, "email:a"); err != nil || got != "secret" {
		t.Fatalf("OpenFor = %q, %v", got, err)
	}
	for _, other := range []string{"email:b", ""} {
		if _, err := s.OpenFor(sealed, other); err == nil {
			t.Fatalf("opened with binding %q", other)
		}
	}
	// Seal is SealFor with no binding: root passwords sealed before stay
	// readable.
	plain, _ := s.Seal("root")
	if got, err := s.OpenFor(plain, ""); err != nil || got != "root" {
		t.Fatalf("Seal/OpenFor: %q, %v", got, err)
	}
}
