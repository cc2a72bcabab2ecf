package memory_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/history"
)

// BenchmarkColdReplay measures a start-up: the whole log read from the
// embedded store and folded into fresh in-memory read models.
func BenchmarkColdReplay(b *testing.B) {
	ctx := context.Background()
	store, err := bbolt.Open(filepath.Join(b.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	written, err := history.Generate(ctx, store, n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.ResetTimer()
	for b.Loop() {
		model := memory.New()
		if err := projections.NewProjector(store, model, log).CatchUp(ctx, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(written)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
