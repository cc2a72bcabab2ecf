// Package pgleader elects, among API processes sharing one event store and
// one PostgreSQL database, the one that does the background work: it is the
// work.Leadership of a multi-process deployment.
//
// The leader is the process whose own database session holds a
// session-level advisory lock (pg_try_advisory_lock on LockKey). Each
// process keeps one dedicated connection, outside any pool, for its whole
// life; a process that does not lead asks for the lock again at every work
// interval. The lock lives exactly as long as the session that took it:
// when the leader exits, crashes or is killed, PostgreSQL ends its session
// (at once when the process dies and the kernel closes the socket; within
// the TCP keepalive time this package asks for, about 25 s, when the whole
// machine or the network goes), the lock is free, and the next process to
// ask takes over. A leader checks that its session still answers before
// every round and steps down as soon as it does not.
//
// The same session records the rounds of work the leader completes (table
// background_work), which processes that advanced the sandbox clock wait
// for.
package pgleader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cryptovps/cryptovps/app/work"
	"github.com/cryptovps/cryptovps/eventstore"
)

// LockKey is the advisory lock whose holder leads the background work
// ("cvpsbgk1"). Advisory locks are per database, so deployments in separate
// databases of one server do not compete.
const LockKey int64 = 0x6376707362676b31

// schemaKey serialises creating the table when processes start together.
const schemaKey int64 = 0x6376707362676b30

// queryTimeout bounds every statement: a session that does not answer in
// time is treated as lost.
const queryTimeout = 5 * time.Second

// Options tune a Leader.
type Options struct {
	// Log receives the changes of leadership. Defaults to slog.Default().
	Log *slog.Logger
	// Name identifies this process in the log and in background_work.
	// Defaults to hostname:pid.
	Name string
}

// Leader is this process's side of the election. It is safe for concurrent
// use.
type Leader struct {
	cfg  *pgx.ConnConfig
	log  *slog.Logger
	name string

	mu     sync.Mutex
	conn   *pgx.Conn // the dedicated session; nil when not connected
	held   bool      // the session holds LockKey
	down   bool      // the last connection attempt failed (logged once)
	closed bool
}

var _ work.Leadership = (*Leader)(nil)

// Open connects the dedicated session to the database at url and creates
// the table of rounds if need be. It does not take the lead: Held does.
func Open(ctx context.Context, url string, opts Options) (*Leader, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("leader election: database URL: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = queryTimeout
	}
	// Ask the server to notice a vanished leader (a dead machine, a cut
	// network) within about 10 + 5*3 s instead of the system default of
	// hours, so that its lock is released and another process takes over.
	for k, v := range map[string]string{
		"application_name":        "cryptovps-leader",
		"tcp_keepalives_idle":     "10",
		"tcp_keepalives_interval": "5",
		"tcp_keepalives_count":    "3",
	} {
		if _, ok := cfg.RuntimeParams[k]; !ok {
			cfg.RuntimeParams[k] = v
		}
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Name == "" {
		host, _ := os.Hostname()
		opts.Name = fmt.Sprintf("%s:%d", host, os.Getpid())
	}
	l := &Leader{cfg: cfg, log: opts.Log, name: opts.Name}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.connect(ctx); err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return l, nil
}

// Name is how this process is known in the election.
func (l *Leader) Name() string { return l.name }

// connect opens the dedicated session and makes sure the table exists.
func (l *Leader) connect(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	err = pgx.BeginFunc(cctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(cctx, "SELECT pg_advisory_xact_lock($1)", schemaKey); err != nil {
			return err
		}
		_, err := tx.Exec(cctx, `CREATE TABLE IF NOT EXISTS background_work (
			id              int PRIMARY KEY CHECK (id = 1),
			leader          text NOT NULL DEFAULT '',
			log_commit      bigint NOT NULL DEFAULT 0,
			log_prepare     bigint NOT NULL DEFAULT 0,
			clock_offset_ms bigint NOT NULL DEFAULT 0,
			updated_at      timestamptz NOT NULL DEFAULT now()
		);
		INSERT INTO background_work (id) VALUES (1) ON CONFLICT DO NOTHING`)
		return err
	})
	if err != nil {
		conn.Close(context.Background())
		return fmt.Errorf("create table background_work: %w", err)
	}
	l.conn, l.held = conn, false
	return nil
}

// drop ends the session after a failure: whatever lock it held is gone.
func (l *Leader) drop(ctx context.Context, err error) {
	if l.conn != nil {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		l.conn.Close(cctx)
		cancel()
		l.conn = nil
	}
	if l.held && ctx.Err() == nil {
		l.log.Warn("stepped down from the background work: lost the database session", "name", l.name, "err", err)
	}
	l.held = false
}

// Held reports whether this process leads, taking the lead if it is free.
// A leader's session is checked at each call; one that fails to answer
// within a few seconds is given up (which also frees the lock on the server
// if the session was still there).
func (l *Leader) Held(ctx context.Context) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || ctx.Err() != nil {
		return false
	}
	if l.conn == nil || l.conn.IsClosed() {
		l.drop(ctx, errors.New("connection closed"))
		if err := l.connect(ctx); err != nil {
			if !l.down && ctx.Err() == nil {
				l.log.Warn("leader election: PostgreSQL unreachable; not doing background work", "err", err)
			}
			l.down = true
			return false
		}
		l.down = false
	}
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	if l.held {
		// A session that still answers still holds its lock.
		if _, err := l.conn.Exec(qctx, "SELECT 1"); err != nil {
			l.drop(ctx, err)
			return false
		}
		return true
	}
	var got bool
	if err := l.conn.QueryRow(qctx, "SELECT pg_try_advisory_lock($1)", LockKey).Scan(&got); err != nil {
		l.drop(ctx, err)
		return false
	}
	if got {
		l.held = true
		l.log.Info("leading the background work", "name", l.name)
	}
	return got
}

// ErrNotLeader is Completed called by a process that does not lead.
var ErrNotLeader = errors.New("leader election: this process does not lead the background work")

// Completed records a round of work, through the session that holds the
// lock, so only the leader can.
func (l *Leader) Completed(ctx context.Context, r work.Round) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held || l.conn == nil {
		return ErrNotLeader
	}
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	_, err := l.conn.Exec(qctx, `UPDATE background_work SET leader = $1, log_commit = $2, log_prepare = $3,
		clock_offset_ms = $4, updated_at = now() WHERE id = 1`,
		l.name, int64(r.Head.Commit), int64(r.Head.Prepare), r.ClockOffset.Milliseconds())
	if err != nil {
		l.drop(ctx, err)
		return fmt.Errorf("leader election: record a round: %w", err)
	}
	return nil
}

// LastCompleted is the round the leader recorded last.
func (l *Leader) LastCompleted(ctx context.Context) (work.Round, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return work.Round{}, errors.New("leader election: closed")
	}
	if l.conn == nil || l.conn.IsClosed() {
		l.drop(ctx, errors.New("connection closed"))
		if err := l.connect(ctx); err != nil {
			return work.Round{}, err
		}
	}
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	var c, p, ms int64
	if err := l.conn.QueryRow(qctx, "SELECT log_commit, log_prepare, clock_offset_ms FROM background_work WHERE id = 1").
		Scan(&c, &p, &ms); err != nil {
		l.drop(ctx, err)
		return work.Round{}, fmt.Errorf("leader election: read the last round: %w", err)
	}
	return work.Round{Head: eventstore.Position{Commit: uint64(c), Prepare: uint64(p)},
		ClockOffset: time.Duration(ms) * time.Millisecond}, nil
}

// Close ends the session, handing the lead to the next process that asks.
func (l *Leader) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	err := l.conn.Close(ctx)
	l.conn, l.held = nil, false
	return err
}
