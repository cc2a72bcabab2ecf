package memory_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/history"
)

// benchEvents is how many events the benchmarks' log holds: 200,000 (20,000
// with -short), or CRYPTOVPS_BENCH_EVENTS (1000000 for the figure).
func benchEvents() int {
	if v, err := strconv.Atoi(os.Getenv("CRYPTOVPS_BENCH_EVENTS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 20_000
	}
	return 200_000
}

// historyStore is an embedded store holding a realistic history (mostly
// hourly charges, see tests/history).
func historyStore(b *testing.B) (*bbolt.Store, int) {
	b.Helper()
	store, err := bbolt.Open(filepath.Join(b.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	written, err := history.Build(context.Background(), store, benchEvents(), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		b.Fatal(err)
	}
	return store, written
}

// BenchmarkCompareColdReplay is a start-up: the whole log read from the
// embedded store and folded into fresh in-memory read models (the
// projector's catch-up, as serve does it), beside the floor under it: the
// same log only read, page after page, through the store's ReadAll. The
// target is at least 1,000,000 events/s.
func BenchmarkCompareColdReplay(b *testing.B) {
	ctx := context.Background()
	store, written := historyStore(b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.Run("project", func(b *testing.B) {
		for b.Loop() {
			model := memory.New()
			if err := projections.NewProjector(store, model, log).CatchUp(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(written)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("baseline", func(b *testing.B) {
		for b.Loop() {
			var from eventstore.Position
			for {
				page, err := store.ReadAll(ctx, from, 2048)
				if err != nil {
					b.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				from = page[len(page)-1].Position
			}
		}
		b.ReportMetric(float64(written)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}
