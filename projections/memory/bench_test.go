package memory_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/benchlog"
)

// BenchmarkCompareColdReplay is a start-up: the whole log (tests/benchlog,
// 200,000 events or CRYPTOVPS_BENCH_EVENTS) read from the embedded store and
// folded into fresh in-memory read models (the projector's catch-up, as
// serve does it), beside the floor under it: the same log only read, page
// after page, through the store's ReadAll. The target is at least
// 1,000,000 events/s. Each also reports the process's CPU time per event
// (all cores), which a busy machine does not distort as much.
func BenchmarkCompareColdReplay(b *testing.B) {
	ctx := context.Background()
	store, written := benchlog.Store(b, benchlog.Events(200_000))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.Run("project", func(b *testing.B) {
		cpu := benchlog.CPU()
		for b.Loop() {
			model := memory.New()
			if err := projections.NewProjector(store, model, log).CatchUp(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(written)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64((benchlog.CPU()-cpu).Nanoseconds())/float64(written*b.N), "cpu-ns/event")
	})
	b.Run("baseline", func(b *testing.B) {
		cpu := benchlog.CPU()
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
		b.ReportMetric(float64((benchlog.CPU()-cpu).Nanoseconds())/float64(written*b.N), "cpu-ns/event")
	})
}

// BenchmarkSnapshot writes the model of the whole log (tests/benchlog) as
// a read-model snapshot, and loads it (checked against the log) into a
// fresh model: what a clean stop and the restart after it cost.
func BenchmarkSnapshot(b *testing.B) {
	ctx := context.Background()
	store, written := benchlog.Store(b, benchlog.Events(200_000))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	model := memory.New()
	if err := projections.NewProjector(store, model, log).CatchUp(ctx, nil); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "read-model.snap")
	b.Run("write", func(b *testing.B) {
		cpu := benchlog.CPU()
		for b.Loop() {
			if _, _, err := model.WriteSnapshot(ctx, store, path); err != nil {
				b.Fatal(err)
			}
		}
		info, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(info.Size())/float64(written), "B/event")
		b.ReportMetric(float64((benchlog.CPU()-cpu).Nanoseconds())/float64(written*b.N), "cpu-ns/event")
	})
	b.Run("load", func(b *testing.B) {
		cpu := benchlog.CPU()
		for b.Loop() {
			if _, err := memory.New().LoadSnapshot(ctx, store, path); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((benchlog.CPU()-cpu).Nanoseconds())/float64(written*b.N), "cpu-ns/event")
	})
}
