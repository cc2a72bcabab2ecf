package health_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/app/health"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
)

// recordedAgo opens a store whose events are recorded ago in the past, as
// if the read model had missed them for that long.
func recordedAgo(t *testing.T, ago time.Duration) *bbolt.Store {
	t.Helper()
	s, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{Now: func() time.Time { return time.Now().Add(-ago) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendOne(t *testing.T, s eventstore.Store) {
	t.Helper()
	_, err := s.Append(context.Background(), "other-1", eventstore.Any,
		[]eventstore.Proposed{{ID: uuid.New(), Type: "Noted", Data: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
}

// wantNotReady checks that Ready fails with a reason containing want.
func wantNotReady(t *testing.T, c *health.Checker, want string) {
	t.Helper()
	err := c.Ready(context.Background())
	if !errors.Is(err, health.ErrNotReady) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Ready: %v, want not ready because %q", err, want)
	}
}

func TestReadyUntilTheReadModelFallsBehindTheBound(t *testing.T) {
	ctx := context.Background()
	store := recordedAgo(t, time.Minute)
	model := memory.New(store)
	c := health.New(health.Config{Store: store, Model: model, MaxLag: 10 * time.Second})
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("an empty log and model: %v", err)
	}
	appendOne(t, store)
	wantNotReady(t, c, "behind the log (at most 10s allowed)")
	if err := projections.NewProjector(store, model, nil).CatchUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Fatalf("caught up: %v", err)
	}

	// Behind, but by less than the bound: a busy log, not a stuck model.
	fresh := recordedAgo(t, 0)
	appendOne(t, fresh)
	if err := health.New(health.Config{Store: fresh, Model: memory.New(fresh), MaxLag: time.Hour}).Ready(ctx); err != nil {
		t.Fatalf("a model a moment behind: %v", err)
	}
}

type downModel struct{ projections.Model }

func (downModel) Checkpoint(context.Context) (eventstore.Position, error) {
	return eventstore.Position{}, errors.New("dial tcp 10.1.2.3:5432: connection refused")
}

type election struct {
	known bool
	err   error
}

func (e election) LeaderKnown(context.Context) (bool, error) { return e.known, e.err }

func TestNotReadyNamesTheMissingDependencyAndNothingMore(t *testing.T) {
	store := recordedAgo(t, 0)
	model := memory.New(store)

	c := health.New(health.Config{Store: store, Model: downModel{model}})
	wantNotReady(t, c, "the read model is unreachable")
	if err := c.Ready(context.Background()); strings.Contains(err.Error(), "10.1.2.3") {
		t.Errorf("the reason shows the database's address: %v", err)
	}

	wantNotReady(t, health.New(health.Config{Store: store, Model: model, Leader: election{}}), "no process leads the background work")
	wantNotReady(t, health.New(health.Config{Store: store, Model: model, Leader: election{err: errors.New("boom")}}),
		"the leader election is unreachable")
	if err := health.New(health.Config{Store: store, Model: model, Leader: election{known: true}}).Ready(context.Background()); err != nil {
		t.Errorf("with a leader: %v", err)
	}

	c = health.New(health.Config{Store: store, Model: model})
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	wantNotReady(t, c, "the event store is unreachable")
}
