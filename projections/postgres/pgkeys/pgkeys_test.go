package pgkeys_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/domain/keystoretest"
	"github.com/cryptovps/cryptovps/projections/postgres"
	"github.com/cryptovps/cryptovps/projections/postgres/pgkeys"
	"github.com/cryptovps/cryptovps/tests/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestContract(t *testing.T) {
	// One database for the whole suite, as processes share one: every
	// subtest works on ids and lookups of its own.
	url := pgtest.Start(t)
	keystoretest.Run(t, func(t *testing.T) domain.KeyStore {
		s, err := pgkeys.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	})
}

// The key store is no read model: rebuilding the read models keeps it.
func TestARebuildOfTheReadModelsKeepsTheKeys(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	ks, err := pgkeys.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	if _, err := ks.CreateKey(ctx, "a", []byte("wrapped key")); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Claim(ctx, []byte("lookup"), "a"); err != nil {
		t.Fatal(err)
	}
	model, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	if err := model.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := ks.Key(ctx, "a"); err != nil || string(got) != "wrapped key" {
		t.Fatalf("Key after a read-model reset = %q, %v", got, err)
	}
	if got, err := ks.Lookup(ctx, []byte("lookup")); err != nil || got != "a" {
		t.Fatalf("Lookup after a read-model reset = %q, %v", got, err)
	}
}

func TestAnUnreachableDatabaseIsUnavailable(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	ks, err := pgkeys.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	ks.Close()
	_, err = ks.Key(ctx, "a")
	if !errors.Is(err, domain.ErrKeyStoreUnavailable) {
		t.Fatalf("Key on a closed pool: %v, want ErrKeyStoreUnavailable", err)
	}
}
