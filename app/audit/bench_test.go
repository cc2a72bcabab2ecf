package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/tests/history"
)

// BenchmarkAudit audits a realistic log of a million events (100,000 with
// -short) read from the embedded store, as `cryptovps audit` does: checks 0
// to 5. Check 6 is left out: with the in-memory read model it costs what
// rebuilding that model costs at every start of serve (BenchmarkColdReplay
// in projections/memory). The target is a million events in under 10 s on
// two cores.
func BenchmarkAudit(b *testing.B) {
	ctx := context.Background()
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	c := newCollector()
	if _, err := history.Generate(ctx, c, n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		b.Fatal(err)
	}
	if err := c.settleAll(ctx); err != nil {
		b.Fatal(err)
	}
	store := openStore(b, b.TempDir())
	if err := c.writeTo(ctx, store); err != nil {
		b.Fatal(err)
	}
	c = nil
	var events int64
	b.ResetTimer()
	for b.Loop() {
		a := audit.New(audit.Options{})
		if _, err := audit.Run(ctx, store, a, audit.RunOptions{}); err != nil {
			b.Fatal(err)
		}
		r := a.Finish()
		if !r.OK() {
			b.Fatalf("clean history has violations: %v", r.Violations[0])
		}
		events += r.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
