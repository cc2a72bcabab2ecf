package work_test

import (
	"context"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	wiring "github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/history"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// fleetSize is the fleet: 10,000 accounts of 10 live servers; with
// -short a tenth of it, for a quick look.
func fleetSize() (accounts, perAccount int) {
	if testing.Short() {
		return 1_000, 10
	}
	return 10_000, 10
}

// fleetStack is a whole process (the composition root, the embedded store,
// the in-memory read model) over a generated fleet of live servers, on a
// clock the benchmark moves.
type fleetStack struct {
	*wiring.Stack
	store *bbolt.Store
	fleet history.Fleet
	clock *sandbox.Clock
	start time.Time
	stop  func()
}

func newFleetStack(b *testing.B, manual bool) *fleetStack {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	accounts, per := fleetSize()
	fleet, err := history.FleetOf(ctx, store, "bench", accounts, per, start)
	if err != nil {
		b.Fatal(err)
	}
	// Wall time stands still at start; the benchmark moves the offset.
	clock := sandbox.NewClock(func() time.Time { return start }, 30*time.Minute)
	st, err := wiring.New(ctx, wiring.Config{Store: store, Model: memory.New(store), Clock: clock,
		SandboxCloud: filepath.Join(dir, "cloud.json"), ManualWork: manual, WorkInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	fs := &fleetStack{Stack: st, store: store, fleet: fleet, clock: clock, start: start}
	fs.stop = st.Start()
	b.Cleanup(fs.stop)
	// The start-up's one pass over the log (moving password hashes an
	// older build left in it) runs in the background; what is measured
	// starts after it.
	<-st.CredentialsImported()
	return fs
}

// tick moves the clock to the next full hour of the fleet and settles it.
func (f *fleetStack) tick(b *testing.B, hour int) {
	f.clock.SetOffset(time.Duration(hour)*time.Hour + time.Second)
	if err := f.Worker.RunDue(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCompareHourlyTick settles an hourly tick of the whole fleet
// (100,000 live servers): every server's next hour charged.
func BenchmarkCompareHourlyTick(b *testing.B) {
	b.Run("project", func(b *testing.B) {
		f := newFleetStack(b, true)
		commits0 := f.store.Commits()
		cpu0 := cpuTime(b)
		b.ResetTimer()
		for i := range b.N {
			f.tick(b, i+1)
		}
		b.StopTimer()
		// The CPU the process spent per tick (all cores): on a busy
		// machine wall time says less than this. Taken before the audit
		// below, which is not the tick's.
		cpu := (cpuTime(b) - cpu0).Seconds() / float64(b.N)
		b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/tick")
		// What the ticks wrote is a log the service could have written.
		if err := history.Audit(context.Background(), f.Store); err != nil {
			b.Fatal(err)
		}
		b.Logf("%d servers: %.2f s of CPU per tick (%.1f µs a server), %d commits a tick",
			f.fleet.Servers, cpu, 1e6*cpu/float64(f.fleet.Servers), (f.store.Commits()-commits0)/uint64(b.N))
	})
}

// BenchmarkCompareMemoryPerServer is the heap the process holds per live
// server after the first hourly tick (HeapAlloc after a GC, less what it
// held before the stack was built).
func BenchmarkCompareMemoryPerServer(b *testing.B) {
	b.Run("project", func(b *testing.B) {
		for range b.N {
			before := heap()
			f := newFleetStack(b, true)
			f.tick(b, 1)
			after := heap()
			b.ReportMetric(float64(after-before)/float64(f.fleet.Servers), "B/server")
			runtime.KeepAlive(f)
		}
	})
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkCompareIdleCPU is the share of one core the process burns with
// the background work running (once a second) and nothing due, over a
// 10-second window, from the process's CPU time (getrusage).
func BenchmarkCompareIdleCPU(b *testing.B) {
	b.Run("project", func(b *testing.B) {
		f := newFleetStack(b, false)
		f.tick(b, 1) // every account has been looked at once
		runtime.GC()
		b.ResetTimer()
		for range b.N {
			cpu0, wall0 := cpuTime(b), time.Now()
			time.Sleep(10 * time.Second)
			cpu, wall := cpuTime(b)-cpu0, time.Since(wall0)
			b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
		}
	})
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
