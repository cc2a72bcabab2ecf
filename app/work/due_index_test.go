package work_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	wiring "github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/history"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// counting counts the reads of account streams.
type counting struct {
	eventstore.Store
	reads atomic.Int64
}

func (c *counting) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Event, error) {
	if strings.HasPrefix(stream, domain.AccountStreamPrefix) {
		c.reads.Add(1)
	}
	return c.Store.ReadStream(ctx, stream, from)
}

func (c *counting) ReadStreamLazy(ctx context.Context, stream string, from uint64) ([]eventstore.Event, error) {
	if strings.HasPrefix(stream, domain.AccountStreamPrefix) {
		c.reads.Add(1)
	}
	return c.Store.ReadStreamLazy(ctx, stream, from)
}

// With nothing due, a pass reads no account: the work is found through the
// due-time index, not by re-reading every live account; when an hour
// comes, exactly the accounts billed then are read, and billed.
func TestAPassReadsOnlyTheAccountsThatAreDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	early, err := history.FleetOf(ctx, db, "early", 6, 2, start)
	if err != nil {
		t.Fatal(err)
	}
	late, err := history.FleetOf(ctx, db, "late", 4, 3, start.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	store := &counting{Store: db}
	clock := sandbox.NewClock(func() time.Time { return start }, 10*time.Minute)
	st, err := wiring.New(ctx, wiring.Config{Store: store, Model: memory.New(store), Clock: clock,
		SandboxCloud: filepath.Join(dir, "cloud.json"), ManualWork: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stop := st.Start()
	defer stop()
	pass := func(at time.Duration) int64 {
		t.Helper()
		clock.SetOffset(at)
		before := store.reads.Load()
		if err := st.Worker.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		return store.reads.Load() - before
	}
	if n := pass(10 * time.Minute); n < int64(len(early.Accounts)+len(late.Accounts)) {
		t.Fatalf("the first pass read %d accounts, want every live one", n)
	}
	for _, at := range []time.Duration{11 * time.Minute, 40 * time.Minute, 59 * time.Minute} {
		if n := pass(at); n != 0 {
			t.Fatalf("at +%s, with nothing due, a pass read %d accounts", at, n)
		}
	}
	// The early fleet's second hour: its accounts only (each read to load
	// and once more to settle).
	n := pass(time.Hour + time.Second)
	if n == 0 || n > 2*int64(len(early.Accounts)) {
		t.Fatalf("at the early fleet's hour a pass read %d accounts, want its %d", n, len(early.Accounts))
	}
	for _, id := range early.Accounts {
		a, err := st.App.Accounts.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range a.State.Servers {
			if !s.BilledUntil.Equal(start.Add(2 * time.Hour)) {
				t.Fatalf("early server billed until %s", s.BilledUntil)
			}
		}
	}
	if n := pass(time.Hour + 2*time.Second); n != 0 {
		t.Fatalf("right after the hour, a pass read %d accounts", n)
	}
	// An event of another writer makes its account due at once.
	if _, err := st.App.Accounts.Run(ctx, late.Accounts[0], domain.SetLimit{Limit: 20, Actor: "test"}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if n := pass(time.Hour + 3*time.Second); n == 0 {
		t.Fatalf("an account with news was not read")
	}
}
