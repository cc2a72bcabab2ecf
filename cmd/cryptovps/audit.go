package main

// The finance and support tools: audit, ledger export and replay. They read
// the same log serve writes, with serve's configuration (flags and
// environment), and never write to it. A stopped data dir is opened
// directly; when a running server holds the embedded store locked they read
// a consistent online snapshot of it, fetched from that server's operator
// API, instead.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/app/replay"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
)

// snapshotterOf is the store's online snapshot for the operator API, if it
// has one (the embedded store does; KurrentDB serves readers itself).
func snapshotterOf(store any) api.Snapshotter {
	if s, ok := store.(api.Snapshotter); ok {
		return s
	}
	return nil
}

// toolFlags are serve's flags plus where the running server is, for the
// snapshot of a locked store.
type toolFlags struct {
	cfg    config
	server string
}

func newToolFlags(name string, stderr io.Writer) (*flag.FlagSet, *toolFlags) {
	tf := &toolFlags{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	tf.cfg.flags(fs)
	fs.StringVar(&tf.server, "server", "http://localhost:8080",
		"base URL of the running server, asked for a snapshot when it holds the embedded store locked (env CRYPTOVPS_SERVER)")
	return fs, tf
}

// toolLog is the log an operator tool reads.
type toolLog struct {
	eventstore.Store
	where string
	close func() error
}

func (l *toolLog) Close() error { return l.close() }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openToolLog opens serve's event log read-only in spirit: KurrentDB when
// configured; else the data dir's embedded store, which it will not create
// (a mistyped --data-dir must not audit an empty log and pass), or, when a
// running server holds it locked, a snapshot from that server.
func openToolLog(ctx context.Context, tf *toolFlags, stderr io.Writer) (*toolLog, error) {
	cfg := tf.cfg
	if cfg.EventStoreURL != "" {
		s, err := openEventStore(ctx, cfg, quietLogger())
		if err != nil {
			return nil, err
		}
		return &toolLog{Store: s, where: "KurrentDB", close: s.Close}, nil
	}
	path := filepath.Join(cfg.DataDir, "events.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no event store at %s (is --data-dir right?): %w", path, err)
	}
	s, err := bbolt.Open(path, bbolt.Options{LockTimeout: 500 * time.Millisecond})
	if err == nil {
		return &toolLog{Store: s, where: path, close: s.Close}, nil
	}
	if !errors.Is(err, bbolt.ErrLocked) {
		return nil, err
	}
	fmt.Fprintf(stderr, "%s is locked by a running server: reading a consistent snapshot from %s\n", path, tf.server)
	return fetchSnapshot(ctx, tf, stderr)
}

// toolAdminToken is --admin-token or the one serve keeps in the data dir;
// unlike serve, a tool never generates one.
func toolAdminToken(cfg config) (string, error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, nil
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin-token"))
	if err != nil {
		return "", fmt.Errorf("no --admin-token and none in the data dir: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// fetchSnapshot downloads GET /admin/eventstore/snapshot into a temporary
// file (removed on Close) and opens it.
func fetchSnapshot(ctx context.Context, tf *toolFlags, stderr io.Writer) (*toolLog, error) {
	token, err := toolAdminToken(tf.cfg)
	if err != nil {
		return nil, fmt.Errorf("the store is locked and the snapshot needs the operator token: %w", err)
	}
	url := strings.TrimRight(tf.server, "/") + "/admin/eventstore/snapshot"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	// No overall timeout: a large store takes as long as it takes; ctx
	// (Ctrl-C) ends it.
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: time.Minute}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch a snapshot from %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("fetch a snapshot from %s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	f, err := os.CreateTemp("", "cryptovps-snapshot-*.db")
	if err != nil {
		return nil, err
	}
	name := f.Name()
	n, err := io.Copy(f, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return nil, fmt.Errorf("fetch a snapshot from %s: %w", url, err)
	}
	s, err := bbolt.Open(name, bbolt.Options{})
	if err != nil {
		os.Remove(name)
		return nil, fmt.Errorf("open the snapshot: %w", err)
	}
	fmt.Fprintf(stderr, "snapshot: %d bytes\n", n)
	return &toolLog{Store: s, where: "snapshot of " + tf.server, close: func() error {
		err := s.Close()
		return errors.Join(err, os.Remove(name))
	}}, nil
}

// resolveAccount takes an account id or an email, the way the admin API
// does: the id of an email is derived from its normalized form.
func resolveAccount(who string) (string, error) {
	if who == "" {
		return "", errors.New("--account EMAIL|ID is required")
	}
	if _, err := uuid.Parse(who); err == nil {
		return who, nil
	}
	email, err := app.NormalizeEmail(who)
	if err != nil {
		return "", fmt.Errorf("--account %q: neither an account id nor an email address", who)
	}
	return app.AccountID(email), nil
}

// timeFlag reads a moment: RFC 3339, or a date or date and time in UTC.
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339Nano)
}

func (f *timeFlag) Set(s string) error {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			f.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("%q is not a time: use RFC 3339 (2026-01-02T15:04:05Z) or a UTC date (2026-01-02)", s)
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (every option is a flag)", fs.Name(), fs.Arg(0))
	}
	return nil
}

// errViolations makes the audit exit non-zero.
var errViolations = errors.New("the audit found violations")

func auditCmd(args []string, stdout, stderr io.Writer) error {
	// Progress comes from the audit and from the read-model build, which run
	// at once: one writer at a time.
	stderr = &lockedWriter{w: stderr}
	fs, tf := newToolFlags("audit", stderr)
	grace := fs.Duration("grace", audit.DefaultGrace, "how long after an hour starts the biller may not have charged it yet (0: none)")
	maxShown := fs.Int("max-violations", 200, "violations to print (0: all)")
	every := fs.Duration("progress", 2*time.Second, "how often to print progress to stderr (0: never)")
	readModel := fs.Bool("read-model", true, "compare the configured read model's balances (check 6); in-memory unless --database-url")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	log, err := openToolLog(ctx, tf, stderr)
	if err != nil {
		return err
	}
	defer log.Close()
	head, err := log.Head(ctx)
	if err != nil {
		return err
	}
	view := audit.Bounded(log, head)
	opts := audit.Options{Grace: *grace}
	if *grace == 0 {
		opts.Grace = -1 // the flag's 0 means none; Options' zero means the default
	}

	// Check 6's read model. The in-memory one is built from the same prefix
	// of the log, alongside the audit; a shared PostgreSQL one is compared
	// at its own checkpoint, which the fold keeps the balances of.
	var rm projections.Reader
	rmName, skipped := "", ""
	var memDone chan error
	var pgModel projections.Model
	if *readModel {
		if tf.cfg.DatabaseURL != "" {
			m, closeModel, err := openReadModel(ctx, tf.cfg, quietLogger())
			if err != nil {
				return err
			}
			defer closeModel()
			cp, err := m.Checkpoint(ctx)
			if err != nil {
				return fmt.Errorf("read model checkpoint: %w", err)
			}
			switch {
			case cp.IsZero() && !head.IsZero():
				skipped = "the PostgreSQL read model is empty (checkpoint 0): run cryptovps projections rebuild"
			case head.Less(cp):
				skipped = fmt.Sprintf("the PostgreSQL read model is at %s, past the audited log (%s): audit when no server writes", cp, head)
			default:
				rm, rmName, pgModel, opts.BalancesAt = m, "postgres", m, cp
			}
		} else {
			model := memory.New()
			rm, rmName = model, "memory"
			memDone = make(chan error, 1)
			go func() {
				// Rebuilding it costs what it costs serve at every start
				// (the whole log read and decoded once more): it runs
				// alongside the audit, and says how far it is.
				memStart, memLast := time.Now(), time.Now()
				memDone <- projections.NewProjector(view, model, quietLogger()).CatchUp(ctx, func(p eventstore.Position) {
					if *every > 0 && time.Since(memLast) >= *every {
						memLast = time.Now()
						fmt.Fprintf(stderr, "read model (check 6): position %s of %s, %s\n", p, head, time.Since(memStart).Round(time.Second))
					}
				})
			}()
		}
	}

	a := audit.New(opts)
	start := time.Now()
	last := start
	fmt.Fprintf(stderr, "auditing %s up to position %s\n", log.where, head)
	_, err = audit.Run(ctx, view, a, audit.RunOptions{Progress: func(p audit.Progress) {
		if *every <= 0 || time.Since(last) < *every {
			return
		}
		last = time.Now()
		fmt.Fprintf(stderr, "audit: %d events, position %s of %s, %.0f events/s\n", p.Events, p.Position, p.Head,
			float64(p.Events)/max(p.Elapsed.Seconds(), 1e-9))
	}})
	if err != nil {
		return err
	}
	r := a.Finish()
	took := time.Since(start)
	if memDone != nil {
		if err := <-memDone; err != nil {
			return fmt.Errorf("build the in-memory read model: %w", err)
		}
	}
	if rm != nil {
		if err := a.CheckReadModel(ctx, rmName, audit.ReaderBalances(rm)); err != nil {
			return err
		}
		if pgModel != nil {
			// A running server's projector may have moved the model while
			// its balances were read: then they are of no one position.
			if cp, err := pgModel.Checkpoint(ctx); err != nil || cp != opts.BalancesAt {
				r.Violations = slices.DeleteFunc(r.Violations, func(v audit.Violation) bool { return v.Check == audit.CheckReadModel })
				r.ReadModel, skipped = "", fmt.Sprintf("the PostgreSQL read model moved from %s while it was read: audit when no server writes", opts.BalancesAt)
			}
		}
	}
	r.ReadModelSkipped = skipped
	if !*readModel {
		r.ReadModelSkipped = "--read-model=false"
	}
	if err := audit.WriteReport(stdout, r, *maxShown); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "audited %d events in %s (%.0f events/s)\n", r.Events, took.Round(time.Millisecond),
		float64(r.Events)/max(took.Seconds(), 1e-9))
	if !r.OK() {
		return fmt.Errorf("%w: %d", errViolations, len(r.Violations))
	}
	return nil
}

func ledgerCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "export" {
		return errors.New("ledger: export is the only subcommand: cryptovps ledger export [--from T] [--to T] [--account EMAIL|ID] [--format csv|jsonl]")
	}
	fs, tf := newToolFlags("ledger export", stderr)
	var from, to timeFlag
	fs.Var(&from, "from", "only transactions dated at or after T (RFC 3339, or a UTC date)")
	fs.Var(&to, "to", "only transactions dated before T")
	who := fs.String("account", "", "only this customer's transactions (email or account id)")
	format := fs.String("format", "csv", "csv or jsonl")
	output := fs.String("output", "", "write to this file instead of stdout")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	o := audit.ExportOptions{From: from.t, To: to.t, Format: *format}
	if *who != "" {
		id, err := resolveAccount(*who)
		if err != nil {
			return err
		}
		o.AccountID = id
	}
	if *format != "csv" && *format != "jsonl" {
		return fmt.Errorf("--format %q: csv or jsonl", *format)
	}
	ctx, stop := signalContext()
	defer stop()
	log, err := openToolLog(ctx, tf, stderr)
	if err != nil {
		return err
	}
	defer log.Close()
	out := stdout
	var file *os.File
	if *output != "" {
		if file, err = os.OpenFile(*output, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return err
		}
		out = file
	}
	rows, err := audit.ExportLedger(ctx, log.Store, out, o)
	if file != nil {
		err = errors.Join(err, file.Close())
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %d postings\n", rows)
	return nil
}

func replayCmd(args []string, stdout, stderr io.Writer) error {
	fs, tf := newToolFlags("replay", stderr)
	who := fs.String("account", "", "the account: email or account id")
	var until timeFlag
	fs.Var(&until, "until", "rebuild the account as it stood at T (default: the end of the log)")
	explain := fs.Bool("explain", false, "print the ledger line by line beside the charges the billing rules expect")
	grace := fs.Duration("grace", audit.DefaultGrace, "with --explain: how long after an hour starts it may still be uncharged")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	id, err := resolveAccount(*who)
	if err != nil {
		return err
	}
	ctx, stop := signalContext()
	defer stop()
	log, err := openToolLog(ctx, tf, stderr)
	if err != nil {
		return err
	}
	defer log.Close()
	g := *grace
	if g == 0 {
		g = -1
	}
	r, err := replay.Account(ctx, log.Store, id, replay.Options{Until: until.t, Grace: g})
	if err != nil {
		if errors.Is(err, replay.ErrNoAccount) {
			by := ""
			if !until.t.IsZero() {
				by = " by " + until.String()
			}
			return fmt.Errorf("account %s (%s) is not in the log%s", *who, id, by)
		}
		return err
	}
	if err := r.WriteState(stdout); err != nil {
		return err
	}
	if *explain {
		fmt.Fprintln(stdout)
		return r.WriteExplain(stdout)
	}
	return nil
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
