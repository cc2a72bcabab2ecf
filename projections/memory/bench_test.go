package memory_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
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
			model := memory.New(store)
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

// BenchmarkModelHeapPerLedgerTx is how the model's memory grows with the
// length of history: the heap the model holds after a replay of accounts
// with 2n ledger transactions each, less after a replay of the same
// number of accounts with n each, per transaction of the difference. The
// ledger is read from the log (ledger.go), so what remains is the sparse
// index: well under a byte a transaction.
func BenchmarkModelHeapPerLedgerTx(b *testing.B) {
	const accounts, n = 8, 4096
	heap := func(s eventstore.Store) uint64 {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		m := memory.New(s)
		if err := projections.NewProjector(s, m, nil).CatchUp(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(m)
		return after.HeapAlloc - min(after.HeapAlloc, before.HeapAlloc)
	}
	short, long := openBenchStore(b), openBenchStore(b)
	for range accounts {
		longAccount(b, short, n, false)
		longAccount(b, long, 2*n, false)
	}
	var grown float64
	for b.Loop() {
		grown = float64(int64(heap(long))-int64(heap(short))) / float64(accounts*n)
	}
	b.ReportMetric(grown, "B/ledger-tx")
}

func openBenchStore(b *testing.B) *bbolt.Store {
	s, err := bbolt.Open(filepath.Join(b.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkLedgerPage is a page of 50 of the ledger deep in an account of
// 16,384 transactions, the page before it: what GET /ledger costs the
// in-memory model, which reads it from the log.
func BenchmarkLedgerPage(b *testing.B) {
	s := openBenchStore(b)
	id := longAccount(b, s, 16_384, false)
	m := memory.New(s)
	ctx := context.Background()
	if err := projections.NewProjector(s, m, nil).CatchUp(ctx, nil); err != nil {
		b.Fatal(err)
	}
	all, err := m.Ledger(ctx, id, eventstore.Position{}, 20_000)
	if err != nil {
		b.Fatal(err)
	}
	before := all[len(all)/2+1].Position // 1,022 transactions after a mark: the worst place
	for b.Loop() {
		page, err := m.Ledger(ctx, id, before, 50)
		if err != nil || len(page) != 50 {
			b.Fatal(len(page), err)
		}
	}
}

// BenchmarkSnapshot writes the model of the whole log (tests/benchlog) as
// a read-model snapshot, and loads it (checked against the log) into a
// fresh model: what a clean stop and the restart after it cost.
func BenchmarkSnapshot(b *testing.B) {
	ctx := context.Background()
	store, written := benchlog.Store(b, benchlog.Events(200_000))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	model := memory.New(store)
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
			if _, err := memory.New(store).LoadSnapshot(ctx, store, path); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((benchlog.CPU()-cpu).Nanoseconds())/float64(written*b.N), "cpu-ns/event")
	})
}
