package pgcreds_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/projections/postgres"
	"github.com/cryptovps/cryptovps/projections/postgres/pgcreds"
	"github.com/cryptovps/cryptovps/tests/credtest"
	"github.com/cryptovps/cryptovps/tests/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t testing.TB, url string) *pgcreds.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := pgcreds.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestContract(t *testing.T) {
	credtest.Run(t, func(t *testing.T) domain.Credentials { return open(t, pgtest.Start(t)) })
}

// TestProcessesShareOneStoreAndARebuildOfTheReadModelsKeepsIt: what one API
// process stores, another reads; opening again migrates nothing twice; and
// `projections rebuild` (the read models' Reset) leaves the credentials be.
func TestProcessesShareOneStoreAndARebuildOfTheReadModelsKeepsIt(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	a, b := open(t, url), open(t, url)
	if err := a.PutPassword(ctx, "acct", "ref", "$argon2id$shared"); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Password(ctx, "ref"); err != nil || got != "$argon2id$shared" {
		t.Fatalf("the other process reads %q, %v", got, err)
	}
	m, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := pgcreds.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrating again: %v", err)
	}
	if got, err := open(t, url).Password(ctx, "ref"); err != nil || got != "$argon2id$shared" {
		t.Fatalf("after a read-model rebuild: %q, %v", got, err)
	}
}
