package audit_test

import (
	"context"
	"testing"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/benchlog"
)

// BenchmarkCompareAudit audits a realistic log (tests/benchlog, 200,000
// events or CRYPTOVPS_BENCH_EVENTS) read from the embedded store through the
// store port, as `cryptovps audit` does: every check, the
// read-model check (6) included, against the in-memory model built from
// the same read of the log. The target is a million events in under 3 s,
// at least 333,334 events/s. The baseline only reads the log (the store's
// ReadAll, page after page): the floor under the audit. Both report the
// process's CPU time per event as well.
func BenchmarkCompareAudit(b *testing.B) {
	ctx := context.Background()
	store, _ := benchlog.Store(b, benchlog.Events(200_000))
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("project", func(b *testing.B) {
		var events int64
		cpu := benchlog.CPU()
		for b.Loop() {
			a := audit.New(audit.Options{})
			model := memory.New(store)
			if _, err := audit.Run(ctx, store, a, audit.RunOptions{Model: model}); err != nil {
				b.Fatal(err)
			}
			if err := a.CheckReadModel(ctx, "memory", audit.ReaderBalances(model)); err != nil {
				b.Fatal(err)
			}
			r := a.Finish()
			if !r.OK() {
				b.Fatalf("clean history has violations: %v", r.Violations[0])
			}
			events += r.Events
		}
		b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64((benchlog.CPU()-cpu).Nanoseconds())/float64(events), "cpu-ns/event")
	})
	b.Run("baseline", func(b *testing.B) {
		var events int64
		cpu := benchlog.CPU()
		for b.Loop() {
			err := audit.ReadLog(ctx, store, eventstore.Position{}, head, 2048, func(page []eventstore.Event) error {
				events += int64(len(page))
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64((benchlog.CPU()-cpu).Nanoseconds())/float64(events), "cpu-ns/event")
	})
}
