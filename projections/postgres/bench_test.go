package postgres

import (
	"bytes"
	"context"
	"strings"
	"testing"

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
	b.Run("project", func(b *testing.B) {
		for b.Loop() {
			if err := m.Rebuild(ctx, store, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
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
		for b.Loop() {
			if err := copyTables(ctx, m, tables); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
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
