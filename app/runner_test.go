package app_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/history"
)

// accountIDs lists the accounts of the log, in order of appearance.
func accountIDs(t *testing.T, store eventstore.Store) []string {
	t.Helper()
	var ids []string
	seen := map[string]bool{}
	events, err := store.ReadAll(context.Background(), eventstore.Position{}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if prefix, id := domain.StreamID(ev.Stream); prefix == domain.AccountStreamPrefix && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids
}

// A runner that starts from the embedded read model's fold, and keeps only
// a few states, decides exactly as one that folds every stream itself: the
// model's state is the same fold, and what the model has not applied yet
// is read from the log.
func TestARunnerStartingFromTheReadModelSeesWhatTheLogSays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := history.Generate(ctx, store, 6000, start); err != nil {
		t.Fatal(err)
	}
	model := memory.New(store)
	proj := projections.NewProjector(store, model, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := proj.CatchUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	later := fixedClock{start.Add(10 * 24 * time.Hour)}
	sourced := app.NewAccounts(store, later)
	sourced.SetSource(model.AccountState)
	sourced.SetCacheSize(2)
	ids := accountIDs(t, store)
	if len(ids) < 4 {
		t.Fatalf("%d accounts in the history", len(ids))
	}
	check := func(when string) {
		t.Helper()
		for _, id := range ids {
			want, err := app.NewAccounts(store, later).Load(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := sourced.Load(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.State, want.State) || got.Version != want.Version || got.Position != want.Position {
				t.Fatalf("%s: account %s from the read model at version %d differs from the log's fold at %d", when, id, got.Version, want.Version)
			}
		}
	}
	// Keyed requests: the keys and their kept answers are part of the fold
	// the runner starts from (a retry must find them).
	model2 := memory.New(store)
	for i, id := range ids {
		idem := domain.Idem{Key: fmt.Sprintf("key-%d", i), RequestHash: "hash", Wall: start.Add(10 * 24 * time.Hour)}
		deploy := domain.Deploy{Idem: idem, Servers: []domain.ServerSpec{{ID: uuid.NewString(), Label: "keyed",
			Plan: "vc2-1c-1gb", Region: "ams", HourlyPrice: domain.MustMoney("0.014")}}}
		if _, err := app.NewAccounts(store, later).Run(ctx, id, deploy, eventstore.Metadata{}); err != nil {
			t.Fatal(err)
		}
		answer := domain.RecordIdempotentAnswer{Idem: idem, Answer: domain.IdemAnswer{Status: 202, Body: `{"server":{}}`}}
		if _, err := app.NewAccounts(store, later).Run(ctx, id, answer, eventstore.Metadata{}); err != nil {
			t.Fatal(err)
		}
	}
	proj2 := projections.NewProjector(store, model2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := proj2.CatchUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	sourced.SetSource(model2.AccountState)
	sourced.SetCacheSize(1)
	check("caught up")
	for i, id := range ids {
		cur, err := sourced.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := cur.State.Idempotency[fmt.Sprintf("key-%d", i)]; !ok || r.Answer == nil {
			t.Fatalf("account %s from the read model lost its Idempotency-Key or its kept answer", id)
		}
	}
	// The model does not follow these: the runner reads them from the log.
	for _, id := range ids {
		if _, err := sourced.Run(ctx, id, domain.Settle{}, eventstore.Metadata{}); err != nil {
			t.Fatal(err)
		}
	}
	check("the model behind the log")
	// Only two states are kept, yet every write this process made is known.
	for _, id := range ids {
		cur, err := app.NewAccounts(store, later).Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got := sourced.Known(id); got != cur.Position {
			t.Errorf("Known(%s) = %s, want %s", id, got, cur.Position)
		}
	}
}
