package pgleader_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cryptovps/cryptovps/app/work"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections/postgres/pgleader"
	"github.com/cryptovps/cryptovps/tests/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t *testing.T, url, name string) *pgleader.Leader {
	t.Helper()
	l, err := pgleader.Open(context.Background(), url, pgleader.Options{Name: name,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestOneLeaderAtATimeAndTakeoverWhenItGoes(t *testing.T) {
	url := pgtest.Start(t)
	ctx := context.Background()
	a, b := open(t, url, "a"), open(t, url, "b")

	if !a.Held(ctx) {
		t.Fatal("the first to ask does not lead")
	}
	for range 3 {
		if b.Held(ctx) {
			t.Fatal("two leaders")
		}
		if !a.Held(ctx) {
			t.Fatal("the leader lost the lead for nothing")
		}
	}

	// Rounds go through the leader's session and are seen by everyone.
	if got, err := b.LastCompleted(ctx); err != nil || got != (work.Round{}) {
		t.Fatalf("before any round: %+v, %v", got, err)
	}
	r := work.Round{Head: eventstore.Position{Commit: 42, Prepare: 41}, ClockOffset: 3 * time.Hour}
	if err := a.Completed(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := b.Completed(ctx, work.Round{}); err == nil {
		t.Fatal("a process that does not lead recorded a round")
	}
	if got, err := b.LastCompleted(ctx); err != nil || got != r {
		t.Fatalf("last round %+v (%v), want %+v", got, err, r)
	}

	// The leader's session is killed, as when its process dies: the lock
	// is released, the other takes over, and the old one knows it lost.
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l
		WHERE l.locktype = 'advisory' AND l.granted AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid`,
		pgleader.LockKey).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d sessions holding the lock, want 1", killed)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !b.Held(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("nobody took over")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a.Held(ctx) {
		t.Fatal("the old leader still believes it leads")
	}
	if err := a.Completed(ctx, work.Round{}); err == nil {
		t.Fatal("the old leader recorded a round")
	}

	// A clean stop hands over at once: the lock is freed as soon as the
	// closed session's backend has exited, a moment after Close returns
	// (asking at once failed about one run in ten under -race).
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for !a.Held(ctx) {
		if time.Now().After(deadline) {
			t.Fatal("no takeover within 5s after the leader closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
