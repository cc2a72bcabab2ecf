package pgleader_test

import (
	"context"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/tests/pgtest"
)

// Every process knows whether some process leads, not only the leader:
// readiness asks it.
func TestLeaderKnownByEveryProcess(t *testing.T) {
	url := pgtest.Start(t)
	ctx := context.Background()
	a, b := open(t, url, "a"), open(t, url, "b")
	known := func(name string, want bool) {
		t.Helper()
		l := map[string]interface {
			LeaderKnown(context.Context) (bool, error)
		}{"a": a, "b": b}[name]
		if got, err := l.LeaderKnown(ctx); err != nil || got != want {
			t.Fatalf("%s: leader known %v (%v), want %v", name, got, err, want)
		}
	}
	known("a", false)
	known("b", false)
	if !a.Held(ctx) {
		t.Fatal("nobody leads")
	}
	known("a", true)
	known("b", true)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// PostgreSQL frees the lock when the closed session's backend has
	// exited, a moment after Close: b takes over once it has.
	deadline := time.Now().Add(10 * time.Second)
	for !b.Held(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("b does not take over")
		}
		time.Sleep(20 * time.Millisecond)
	}
	known("b", true)
}
