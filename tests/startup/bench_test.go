package startup

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/tests/apiclient"
	"github.com/cryptovps/cryptovps/tests/benchlog"
	"github.com/cryptovps/cryptovps/tests/binary"
)

// BenchmarkCompareStartup starts `cryptovps serve` on a data dir holding a
// realistic history (tests/benchlog, 200,000 events or
// CRYPTOVPS_BENCH_EVENTS) and no read-model snapshot, and times it from the
// exec to the first 200 of /readyz: the store opened, the whole log
// replayed into the in-memory read models, the background work started,
// the listener up. The figure is events of the data dir per second of
// start-up; the target, a data dir of 1,000,000 events serving within 2 s,
// is at least 500,000 events/s.
func BenchmarkCompareStartup(b *testing.B) {
	n := benchlog.Events(200_000)
	b.Run("project", func(b *testing.B) {
		var took time.Duration
		var events int
		for b.Loop() {
			dir, written := dataDir(b, n)
			start := time.Now()
			p := binary.Start(b, binary.Options{DataDir: dir, StopWithin: 2 * time.Minute})
			ready(b, p, start)
			took += time.Since(start)
			events += written
			p.Stop(b)
		}
		b.ReportMetric(float64(events)/took.Seconds(), "events/s")
		b.ReportMetric(took.Seconds()/float64(b.N), "s/start")
	})
}

// BenchmarkCompareRestart is BenchmarkCompareStartup for the usual start:
// the data dir a previous serve left at a clean stop (SIGTERM), with its
// read-model snapshot. It times the second start, from the exec to the
// first 200 of /readyz: the snapshot loaded and checked against the log,
// the log after it (none here) folded. Same figure, same target.
func BenchmarkCompareRestart(b *testing.B) {
	n := benchlog.Events(200_000)
	b.Run("project", func(b *testing.B) {
		var took time.Duration
		var events int
		for b.Loop() {
			b.StopTimer()
			dir, written := dataDir(b, n)
			p := binary.Start(b, binary.Options{DataDir: dir, StopWithin: 2 * time.Minute})
			ready(b, p, time.Now())
			p.Stop(b)
			if _, err := os.Stat(filepath.Join(dir, "read-model.snap")); err != nil {
				b.Fatalf("no read-model snapshot after a clean stop: %v\n%s", err, p.LogTail(40))
			}
			b.StartTimer()
			start := time.Now()
			p.Restart(b)
			ready(b, p, start)
			took += time.Since(start)
			events += written
			b.StopTimer()
			p.Stop(b)
			b.StartTimer()
		}
		b.ReportMetric(float64(events)/took.Seconds(), "events/s")
		b.ReportMetric(took.Seconds()/float64(b.N), "s/start")
	})
}

// dataDir is a fresh data dir holding the history of about n events.
func dataDir(b *testing.B, n int) (string, int) {
	b.Helper()
	path, written := benchlog.File(b, n)
	dir := filepath.Join(b.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(path, filepath.Join(dir, "events.db")); err != nil {
		b.Fatal(err)
	}
	return dir, written
}

// ready waits for the first 200 of /readyz.
func ready(b *testing.B, p *binary.Process, start time.Time) {
	b.Helper()
	for {
		a, err := p.Client().Send(apiclient.Request{Method: http.MethodGet, Path: "/readyz"})
		if err == nil && a.Status == http.StatusOK {
			return
		}
		if time.Since(start) > time.Minute {
			b.Fatalf("not ready a minute after the start: %v %v", a, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
