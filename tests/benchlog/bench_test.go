package benchlog

import (
	"os"
	"testing"
)

// BenchmarkCompareDiskSize is the size of the embedded store's file per
// event for a realistic history (tests/history: accounts billed hour after
// hour, so mostly ledger transactions, written account by account in large
// appends that share commits). The target is at most 600 bytes per event;
// format 1 of the store took about 2,500.
func BenchmarkCompareDiskSize(b *testing.B) {
	n := Events(200_000)
	b.Run("project", func(b *testing.B) {
		path, events := File(b, n) // (written once: the loop only measures)
		var size int64
		for b.Loop() {
			fi, err := os.Stat(path)
			if err != nil {
				b.Fatal(err)
			}
			size = fi.Size()
		}
		b.ReportMetric(float64(size)/float64(events), "B/event")
	})
}
