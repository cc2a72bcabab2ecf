package audit_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections/memory"
)

// benchEvents is the size of the audited log: 200,000 (50,000 with -short),
// or CRYPTOVPS_BENCH_EVENTS (1000000 for the figure).
func benchEvents() int {
	if v, err := strconv.Atoi(os.Getenv("CRYPTOVPS_BENCH_EVENTS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return 50_000
	}
	return 200_000
}

// BenchmarkCompareAudit audits a realistic log read from the embedded store
// through the store port, as `cryptovps audit` does: every check, the
// read-model check (6) included, against the in-memory model built from
// the same read of the log. The target is a million events in under 3 s,
// at least 333,334 events/s. The baseline only reads the log (the store's
// ReadAll, page after page): the floor under the audit.
func BenchmarkCompareAudit(b *testing.B) {
	ctx := context.Background()
	store, _ := generatedStore(b, benchEvents())
	head, err := store.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("project", func(b *testing.B) {
		var events int64
		for b.Loop() {
			a := audit.New(audit.Options{})
			model := memory.New()
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
	})
	b.Run("baseline", func(b *testing.B) {
		var events int64
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
	})
}
