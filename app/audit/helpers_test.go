package audit_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/tests/history"
)

// generatedStore is a store holding a realistic history of at least n
// events (tests/history), settled to its end, and how many the history
// made.
func generatedStore(t testing.TB, n int) (*bbolt.Store, int) {
	t.Helper()
	store := openStore(t, t.TempDir())
	n, err := history.Build(context.Background(), store, n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return store, n
}

func openStore(t testing.TB, dir string) *bbolt.Store {
	t.Helper()
	s, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{Now: func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newID() uuid.UUID { return uuid.New() }
