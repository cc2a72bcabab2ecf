package postgres

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/tests/pgtest"
)

// benchEvents is the size of the rebuilt log: 1,000,000, or 50,000 with
// -short, or CRYPTOVPS_BENCH_EVENTS.
func benchEvents(b *testing.B) int {
	if v, err := strconv.Atoi(os.Getenv("CRYPTOVPS_BENCH_EVENTS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 50_000
	}
	return 1_000_000
}

// BenchmarkRebuild measures `cryptovps projections rebuild` (Model.Rebuild):
// every table dropped and refilled from a log of accounts that register, top
// up, deploy servers and are billed hour after hour (most events are hourly
// charges, as in production), on a PostgreSQL with fsync on. The log is kept
// encoded in memory and decoded at each read, as the embedded store does,
// without its disk reads. The figure is events/s.
func BenchmarkRebuild(b *testing.B) {
	n := benchEvents(b)
	start := time.Now()
	store := newMemStore(nil)
	g := newGenerator(42, func(ev eventstore.Event) { store.add(ev) })
	// Weeks of a busy installation: commands every few minutes, quiet
	// nights, and the biller charging every live server every hour.
	g.idle, g.jumps = 30*time.Minute, 300
	for len(store.pos) < n {
		g.step()
	}
	events := len(store.pos)
	b.Logf("generated %d events in %s", events, time.Since(start).Round(time.Millisecond))
	m := openModel(b, pgtest.StartCluster(b, pgtest.Options{Durable: true}).NewDatabase(b))
	ctx := context.Background()
	for b.Loop() {
		if err := m.Rebuild(ctx, store, nil); err != nil {
			b.Fatal(err)
		}
	}
	rate := float64(events) * float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "events/s")
	b.Logf("rebuilt %d events: %.0f events/s", events, rate)
}
