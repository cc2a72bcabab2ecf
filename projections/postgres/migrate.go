package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema is kept as numbered SQL files, applied in order and recorded in
// schema_migrations. A migration is never edited once released: a change is
// a new file. (A rebuild drops everything and applies them all again.)
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^(\d+)_([a-z0-9_]+)\.sql$`)

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	seen := map[int]string{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: m[2], sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// readModelTables are the read-model tables the migrations create: what
// Reset drops. TestResetDropsEveryTableTheMigrationsCreate keeps this list
// and keptTables honest.
var readModelTables = []string{
	"accounts", "servers", "topups", "backups", "ledger_transactions", "postings", "projection_checkpoints",
}

// keptTables are the tables the migrations create that are no read model
// (the key store, pgkeys): nothing in the log can rebuild them, so a
// rebuild keeps them, and their migrations create them only if missing
// (a rebuild applies every migration again).
var keptTables = []string{"data_keys", "email_index"}

// migrationLock is the advisory lock key that serialises schema changes, so
// that several API processes starting at once apply each migration once.
const migrationLock = 0x63767073 // "cvps"

// Migrate applies the migrations the database does not have yet, in one
// transaction.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return inTx(ctx, pool, func(tx pgx.Tx) error { return migrate(ctx, tx, false) })
}

func inTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return classify(ctx, "begin", err)
	}
	defer tx.Rollback(context.Background())
	if err := fn(tx); err != nil {
		return err
	}
	return classify(ctx, "commit", tx.Commit(ctx))
}

// migrate brings the schema up to date inside tx; with drop, it first drops
// every read-model table and forgets the applied migrations, so the schema
// is created afresh (a rebuild).
func migrate(ctx context.Context, tx pgx.Tx, drop bool) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
		return classify(ctx, "lock the schema", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return classify(ctx, "create schema_migrations", err)
	}
	// A rebuild sets the secondary indexes aside while it fills the tables
	// (building them once at the end is much cheaper than maintaining them
	// row by row) and keeps their definitions here until it puts them back.
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_deferred_indexes (
		name       text PRIMARY KEY,
		definition text NOT NULL)`); err != nil {
		return classify(ctx, "create schema_deferred_indexes", err)
	}
	if drop {
		if _, err := tx.Exec(ctx, "DELETE FROM schema_deferred_indexes"); err != nil {
			return classify(ctx, "forget deferred indexes", err)
		}
		for _, t := range readModelTables {
			if _, err := tx.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{t}.Sanitize()+" CASCADE"); err != nil {
				return classify(ctx, "drop "+t, err)
			}
		}
		if _, err := tx.Exec(ctx, "DELETE FROM schema_migrations"); err != nil {
			return classify(ctx, "forget migrations", err)
		}
	}
	applied := map[int]bool{}
	rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return classify(ctx, "read schema_migrations", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return classify(ctx, "read schema_migrations", err)
	}
	for _, v := range versions {
		applied[int(v)] = true
	}
	for _, m := range all {
		if applied[m.version] {
			continue
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, classify(ctx, "apply", err))
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return classify(ctx, "record migration", err)
		}
	}
	// A rebuild that was interrupted left its indexes aside: the tables are
	// consistent up to their checkpoint, so put them back and carry on.
	return restoreIndexes(ctx, tx)
}

// deferIndexes drops the secondary indexes of the read-model tables (not the
// primary keys, which the upserts need), keeping their definitions.
func deferIndexes(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT i.indexname, i.indexdef FROM pg_indexes i
		WHERE i.schemaname = current_schema() AND i.tablename = ANY($1)
		AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname
			AND c.connamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()))
		ORDER BY i.indexname`, readModelTables)
	if err != nil {
		return classify(ctx, "list indexes", err)
	}
	type index struct{ name, def string }
	indexes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (index, error) {
		var i index
		return i, r.Scan(&i.name, &i.def)
	})
	if err != nil {
		return classify(ctx, "list indexes", err)
	}
	for _, i := range indexes {
		if _, err := tx.Exec(ctx, "INSERT INTO schema_deferred_indexes (name, definition) VALUES ($1, $2)", i.name, i.def); err != nil {
			return classify(ctx, "set index aside", err)
		}
		if _, err := tx.Exec(ctx, "DROP INDEX "+pgx.Identifier{i.name}.Sanitize()); err != nil {
			return classify(ctx, "drop index "+i.name, err)
		}
	}
	return nil
}

// restoreIndexes builds the indexes deferIndexes set aside.
func restoreIndexes(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, "SELECT definition FROM schema_deferred_indexes ORDER BY name")
	if err != nil {
		return classify(ctx, "read deferred indexes", err)
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return classify(ctx, "read deferred indexes", err)
	}
	for _, def := range defs {
		if _, err := tx.Exec(ctx, def); err != nil {
			return classify(ctx, "build index", err)
		}
	}
	if _, err := tx.Exec(ctx, "DELETE FROM schema_deferred_indexes"); err != nil {
		return classify(ctx, "forget deferred indexes", err)
	}
	return nil
}
