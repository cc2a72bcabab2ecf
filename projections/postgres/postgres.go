// Package postgres is the read model kept in PostgreSQL: the tables the API
// answers from when several API processes share one database, and that
// finance and support query with SQL (accounts, servers, backups, topups,
// ledger_transactions, postings; see migrations/).
//
// It gives exactly the answers of the in-memory model: each batch of events
// is folded with the domain's own Evolve functions over the rows it touches,
// and the rows and the checkpoint are written in one transaction, so the
// tables always hold the log exactly up to the checkpoint, whatever crashes
// or redeliveries happen. Money is NUMERIC, converted to and from
// domain.Money through its decimal text, never a float.
//
// A database that cannot be reached makes reads fail with an error wrapping
// projections.ErrUnavailable (the API answers 503); the Projector retries
// Apply from the checkpoint once it is back.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// Projection is the name of the read models' row in projection_checkpoints.
// All tables are one projection: they move together, in one transaction.
const Projection = "read_models"

// Model is a projections.Model in PostgreSQL, safe for concurrent use, and by
// several processes on the same database.
type Model struct {
	pool *pgxpool.Pool
	// rebuildBatch is the events per transaction of Rebuild (smaller in tests).
	rebuildBatch int

	// beforeCommit, when set (tests only), runs after Apply has written
	// everything and before it commits; an error aborts the transaction as
	// a crash at that point would.
	beforeCommit func() error
}

var _ projections.Model = (*Model)(nil)

// Open connects to the database at url, brings its schema up to date and
// returns the model. Close releases the connections.
func Open(ctx context.Context, url string) (*Model, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx masks the password in its parse errors.
		return nil, fmt.Errorf("database URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// An unreachable host must turn into a prompt 503, not a request
		// hanging for pgx's default of two minutes.
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("PostgreSQL %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return New(pool), nil
}

// New returns a model on pool, whose schema must be up to date (Migrate).
func New(pool *pgxpool.Pool) *Model { return &Model{pool: pool, rebuildBatch: rebuildBatch} }

// Close closes the pool.
func (m *Model) Close() { m.pool.Close() }

// Checkpoint is the position of the last applied event.
func (m *Model) Checkpoint(ctx context.Context) (eventstore.Position, error) {
	var c, p int64
	err := m.pool.QueryRow(ctx, "SELECT log_commit, log_prepare FROM projection_checkpoints WHERE name = $1",
		Projection).Scan(&c, &p)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Position{}, nil
	}
	if err != nil {
		return eventstore.Position{}, classify(ctx, "read checkpoint", err)
	}
	return eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}, nil
}

// CheckpointRow is one projection's progress, for operators.
type CheckpointRow struct {
	Name      string
	Position  eventstore.Position
	UpdatedAt time.Time
}

// Checkpoints lists every projection's checkpoint.
func (m *Model) Checkpoints(ctx context.Context) ([]CheckpointRow, error) {
	rows, err := m.pool.Query(ctx, "SELECT name, log_commit, log_prepare, updated_at FROM projection_checkpoints ORDER BY name")
	if err != nil {
		return nil, classify(ctx, "read checkpoints", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CheckpointRow, error) {
		var cr CheckpointRow
		var c, p int64
		err := r.Scan(&cr.Name, &c, &p, &cr.UpdatedAt)
		cr.Position = eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}
		return cr, err
	})
	if err != nil {
		return nil, classify(ctx, "read checkpoints", err)
	}
	return out, nil
}

// Reset drops every read-model table and creates the schema afresh, in one
// transaction: the next Apply starts from the beginning of the log.
func (m *Model) Reset(ctx context.Context) error {
	if err := inTx(ctx, m.pool, func(tx pgx.Tx) error { return migrate(ctx, tx, true) }); err != nil {
		return err
	}
	// Pooled connections hold prepared statements on the dropped tables;
	// start from fresh ones.
	m.pool.Reset()
	return nil
}

// classify wraps a database error for the caller: an outage (no server,
// connection lost, server shutting down or out of connections) wraps
// projections.ErrUnavailable; anything else (a bug) does not, so it is not
// mistaken for a temporary condition.
func classify(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return err
	}
	if unavailable(err) {
		return fmt.Errorf("postgres read model: %s: %w: %w", op, projections.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres read model: %s: %w", op, err)
}

// IsOutage says whether err is the database being unreachable or refusing
// work for now (rather than a bug): what other users of the database
// (pgcreds) answer 503 to, as the read models do.
func IsOutage(err error) bool { return unavailable(err) }

func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"53", // insufficient resources (too many connections, disk full)
			"57", // operator intervention (shutdown, crash, starting up)
			"58": // system error (I/O)
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return true
	}
	// The pool's own error once closed (puddle.ErrClosedPool) during shutdown.
	return strings.Contains(err.Error(), "closed pool")
}
