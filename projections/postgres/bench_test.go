package postgres

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cryptovps/cryptovps/tests/benchlog"
	"github.com/cryptovps/cryptovps/tests/pgtest"
)

// BenchmarkCompareProjectionRebuild measures `cryptovps projections
// rebuild` (Model.Rebuild) of a realistic log in the embedded store
// (tests/benchlog, 200,000 events or CRYPTOVPS_BENCH_EVENTS: accounts billed
// hour after hour, so mostly ledger transactions) into PostgreSQL with fsync on, beside the floor: COPY of
// exactly the rows the rebuild wrote into the same tables on the same
// cluster, done the same way (tables created afresh, secondary indexes built
// at the end, statistics taken). Both are in events of the log per second;
// the target is a ratio of at least 0.7.
func BenchmarkCompareProjectionRebuild(b *testing.B) {
	ctx := context.Background()
	store, events := benchlog.Store(b, benchlog.Events(200_000))
	m := openModel(b, pgtest.StartCluster(b, pgtest.Options{Durable: true}).NewDatabase(b))
	server := serverCPU(b, m)
	b.Run("project", func(b *testing.B) {
		cpu, scpu := benchlog.CPU(), server()
		for b.Loop() {
			if err := m.Rebuild(ctx, store, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		reportCPU(b, benchlog.CPU()-cpu, server()-scpu, events)
	})
	// The rows the rebuild wrote, table by table, in COPY's binary form.
	if err := m.Rebuild(ctx, store, nil); err != nil {
		b.Fatal(err)
	}
	tables := map[string][]byte{}
	rows := 0
	for _, t := range readModelTables {
		if t == "projection_checkpoints" {
			continue
		}
		var buf bytes.Buffer
		conn, err := m.pool.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		tag, err := conn.Conn().PgConn().CopyTo(ctx, &buf, "COPY "+pgx.Identifier{t}.Sanitize()+" TO STDOUT (FORMAT binary)")
		conn.Release()
		if err != nil {
			b.Fatal(err)
		}
		rows += int(tag.RowsAffected())
		tables[t] = buf.Bytes()
	}
	b.Logf("%d events made %d rows", events, rows)
	b.Run("baseline", func(b *testing.B) {
		cpu, scpu := benchlog.CPU(), server()
		for b.Loop() {
			if err := copyTables(ctx, m, tables); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		reportCPU(b, benchlog.CPU()-cpu, server()-scpu, events)
	})
}

// copyTables loads rows into freshly made tables the way Rebuild does
// (indexes deferred, then built, then ANALYZE), by COPY alone.
func copyTables(ctx context.Context, m *Model, tables map[string][]byte) error {
	if err := inTx(ctx, m.pool, func(tx pgx.Tx) error {
		if err := migrate(ctx, tx, true); err != nil {
			return err
		}
		return deferIndexes(ctx, tx)
	}); err != nil {
		return err
	}
	m.pool.Reset()
	conn, err := m.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	for _, t := range readModelTables {
		data, ok := tables[t]
		if !ok {
			continue
		}
		if _, err := conn.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(data),
			"COPY "+pgx.Identifier{t}.Sanitize()+" FROM STDIN (FORMAT binary)"); err != nil {
			return err
		}
	}
	if err := inTx(ctx, m.pool, func(tx pgx.Tx) error { return restoreIndexes(ctx, tx) }); err != nil {
		return err
	}
	names := make([]string, len(readModelTables))
	for i, t := range readModelTables {
		names[i] = pgx.Identifier{t}.Sanitize()
	}
	_, err = m.pool.Exec(ctx, "ANALYZE "+strings.Join(names, ", "))
	return err
}

// reportCPU reports the CPU time per event of this process and of the
// PostgreSQL cluster: on a machine shared with other work they say what
// each side costs better than the wall time does.
func reportCPU(b *testing.B, cpu, server time.Duration, events int) {
	n := float64(events) * float64(b.N)
	b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/event")
	if server >= 0 {
		b.ReportMetric(float64(server.Nanoseconds())/n, "server-cpu-ns/event")
	}
}

// serverCPU returns a function that tells the CPU time the cluster of m
// has used so far (Linux: the postmaster, its exited children, which it
// has waited for, and its live ones, from /proc), or -1 where /proc does
// not tell.
func serverCPU(b *testing.B, m *Model) func() time.Duration {
	var backend int
	if err := m.pool.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		b.Fatal(err)
	}
	stat := func(pid int) (ppid int, self, children time.Duration, ok bool) {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, 0, 0, false
		}
		// After the command, in parentheses: state, ppid, ..., utime (the
		// 12th), stime, cutime, cstime, in clock ticks (100 a second).
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
		if len(f) < 15 {
			return 0, 0, 0, false
		}
		n := make([]int64, 15)
		for i := range n {
			n[i], _ = strconv.ParseInt(f[i], 10, 64)
		}
		tick := func(t int64) time.Duration { return time.Duration(t) * 10 * time.Millisecond }
		return int(n[1]), tick(n[11] + n[12]), tick(n[13] + n[14]), true
	}
	postmaster, _, _, ok := stat(backend)
	if !ok {
		return func() time.Duration { return -1 }
	}
	return func() time.Duration {
		_, self, children, ok := stat(postmaster)
		if !ok {
			return -1
		}
		total := self + children
		dirs, _ := os.ReadDir("/proc")
		for _, d := range dirs {
			pid, err := strconv.Atoi(d.Name())
			if err != nil {
				continue
			}
			if ppid, cpu, _, ok := stat(pid); ok && ppid == postmaster {
				total += cpu
			}
		}
		return total
	}
}
