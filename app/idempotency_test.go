package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// An answer that shows a secret is kept sealed: the log holds no byte of
// it, the process with the key replays it, one without the key does not.
func TestASecretAnswerIsKeptSealedAndOpenedOnlyWithTheKey(t *testing.T) {
	ctx := context.Background()
	store, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	service := func(key byte) *app.Service {
		sealer, err := app.NewSealer(bytes.Repeat([]byte{key}, 32))
		if err != nil {
			t.Fatal(err)
		}
		return app.New(app.Deps{Accounts: app.NewAccounts(store, fixedClock{now}), Sealer: sealer,
			Wall: fixedClock{now}, Log: slog.New(slog.DiscardHandler)}, app.Config{})
	}
	s := service(1)
	const acct = "4f1d2c3b-0000-4000-8000-000000000001"
	if _, err := s.Accounts.Run(ctx, acct, domain.Register{AccountID: acct, SealedEmail: "sealed", ServerLimit: 1}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	idem := app.Idempotency{Key: "k", RequestHash: "h"}
	if _, err := s.Accounts.Run(ctx, acct, domain.ClaimIdempotencyKey{Idem: domain.Idem{Key: "k", RequestHash: "h", Wall: now}, Ref: "key-1"}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	const secret = `{"key":"cvps_live_7f3a9c0e5b1d"}` + "\n"
	if err := s.RecordAnswer(ctx, acct, idem, domain.IdemAnswer{Status: 201, Body: secret}, true, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	events, err := store.ReadAll(ctx, eventstore.Position{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if bytes.Contains(e.Data, []byte("7f3a9c0e5b1d")) {
			t.Fatalf("%s holds the secret in clear: %s", e.Type, e.Data)
		}
	}
	got, err := s.Answered(ctx, acct, idem)
	if err != nil || got == nil || got.Body != secret || got.Status != 201 || !got.Secret {
		t.Fatalf("Answered = %+v, %v; want the secret answer", got, err)
	}
	// Another key: no answer to replay (the work is answered again from
	// what the record names instead), never ciphertext.
	if got, err := service(2).Answered(ctx, acct, idem); err != nil || got != nil {
		t.Fatalf("with another key: %+v, %v; want nothing", got, err)
	}
	// Another request with the key is refused.
	if _, err := s.Answered(ctx, acct, app.Idempotency{Key: "k", RequestHash: "other"}); err == nil {
		t.Fatal("another request with the key was not refused")
	}
}
