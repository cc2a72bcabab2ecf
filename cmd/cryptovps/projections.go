package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/projections/postgres"
)

// openReadModel is the read model serve answers from: PostgreSQL when a
// database URL is configured, shared by every API process on it; otherwise
// the in-memory model, rebuilt from the log at each start (from its
// snapshot and the log after it, when they match: see stack.Config).
func openReadModel(ctx context.Context, cfg config, log *slog.Logger) (projections.Model, func(), error) {
	if cfg.DatabaseURL == "" {
		return memory.New(), func() {}, nil
	}
	m, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, nil, fmt.Errorf("read models: %w", err)
	}
	log.Info("read models in PostgreSQL", "database", redactURL(cfg.DatabaseURL))
	return m, m.Close, nil
}

// redactURL drops the password from a database URL for logs and output.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return "(a libpq connection string)"
	}
	return u.Redacted()
}

// projectionsCmd runs the operator commands on the read models. They take
// serve's configuration (flags and environment), so they act on the same
// data directory and database.
func projectionsCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "rebuild" && args[0] != "status") {
		return errors.New("projections: rebuild|status")
	}
	sub := args[0]
	var cfg config
	fs := flag.NewFlagSet("projections "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.flags(fs)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if sub == "rebuild" {
		return rebuildProjections(ctx, cfg, stdout)
	}
	return projectionStatus(ctx, cfg, stdout)
}

// errStoreBusy is the embedded store held by a running server.
var errStoreBusy = errors.New("locked by a running cryptovps server")

// eventLog is the log serve reads, opened for an operator command.
type eventLog struct {
	eventstore.Store
	where string
	// embedded is the bbolt store, whose positions are event numbers; a
	// KurrentDB position is a byte offset, so counts are shown only here.
	embedded bool
}

// openLog opens the event log of serve's configuration: KurrentDB when
// --eventstore-url is set, else the data dir's embedded store, which it
// refuses to create (a mistyped --data-dir would otherwise "rebuild" from
// nothing) and which a running server holds locked (errStoreBusy).
func openLog(ctx context.Context, cfg config) (eventLog, error) {
	if cfg.EventStoreURL != "" {
		s, err := openEventStore(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		return eventLog{Store: s, where: redactURL(cfg.EventStoreURL)}, err
	}
	path := filepath.Join(cfg.DataDir, "events.db")
	l := eventLog{where: path, embedded: true}
	if _, err := os.Stat(path); err != nil {
		return l, fmt.Errorf("no event store at %s (is --data-dir right?): %w", path, err)
	}
	store, err := bbolt.Open(path, bbolt.Options{LockTimeout: 500 * time.Millisecond})
	if errors.Is(err, bbolt.ErrLocked) {
		return l, fmt.Errorf("the event store %s is %w", path, errStoreBusy)
	}
	if err != nil {
		return l, err
	}
	l.Store = store
	return l, nil
}

func rebuildProjections(ctx context.Context, cfg config, stdout io.Writer) error {
	if cfg.DatabaseURL == "" {
		fmt.Fprintln(stdout, "The read models are in memory (no --database-url / DATABASE_URL): serve rebuilds them")
		fmt.Fprintln(stdout, "from the log at every start, so there is nothing to rebuild (deleting its snapshot,")
		fmt.Fprintln(stdout, readModelSnapshotFile+" in the data dir, makes the next start replay the whole log). Set")
		fmt.Fprintln(stdout, "--database-url to rebuild the PostgreSQL read models.")
		return nil
	}
	store, err := openLog(ctx, cfg)
	if errors.Is(err, errStoreBusy) {
		return fmt.Errorf("%w: stop it before rebuilding (its projector writes to the tables a rebuild drops), "+
			"then run the rebuild and start it again", err)
	}
	if err != nil {
		return err
	}
	defer store.Close()
	head, err := store.Head(ctx)
	if err != nil {
		return err
	}
	model, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer model.Close()
	fmt.Fprintf(stdout, "Rebuilding the read models in %s from %s (head %s)\n", redactURL(cfg.DatabaseURL), store.where, head)
	if !store.embedded {
		fmt.Fprintln(stdout, "The event store is shared: every API process using this database must be stopped first.")
	}
	p := newProgress(stdout, head, store.embedded)
	start := time.Now()
	if err := model.Rebuild(ctx, store, p.update); err != nil {
		p.done()
		return fmt.Errorf("rebuild: %w", err)
	}
	p.done()
	took := time.Since(start)
	if store.embedded {
		fmt.Fprintf(stdout, "Rebuilt %s events in %s (%s events/s); checkpoint %s\n", count(head.Commit),
			took.Round(time.Millisecond), count(uint64(float64(head.Commit)/max(took.Seconds(), 1e-3))), head)
	} else {
		fmt.Fprintf(stdout, "Rebuilt in %s; checkpoint %s\n", took.Round(time.Millisecond), head)
	}
	return nil
}

func projectionStatus(ctx context.Context, cfg config, stdout io.Writer) error {
	var head eventstore.Position
	headKnown := true
	store, err := openLog(ctx, cfg)
	switch {
	case errors.Is(err, errStoreBusy):
		headKnown = false
	case err != nil:
		return err
	default:
		head, err = store.Head(ctx)
		store.Close()
		if err != nil {
			return err
		}
	}
	headText := head.String()
	if !headKnown {
		headText = "unknown"
	}
	if cfg.DatabaseURL == "" {
		fmt.Fprintf(stdout, "Read models: in memory (no --database-url / DATABASE_URL), rebuilt from the log at every\n")
		fmt.Fprintf(stdout, "start of serve (from %s and the log after it, when that snapshot matches\n", readModelSnapshotFile)
		fmt.Fprintf(stdout, "the log) and kept up to date while it runs.\n")
		fmt.Fprintf(stdout, "Head of the log (%s): %s\n", store.where, headText)
		if !headKnown {
			fmt.Fprintf(stdout, "(the embedded event store is locked by the running server)\n")
		}
		return nil
	}
	model, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer model.Close()
	rows, err := model.Checkpoints(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Read models in %s; log %s\n\n", redactURL(cfg.DatabaseURL), store.where)
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tCHECKPOINT\tHEAD\tLAG\tUPDATED")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Position, headText, lag(r.Position, head, headKnown, store.embedded),
			r.UpdatedAt.UTC().Format(time.RFC3339))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !headKnown {
		fmt.Fprintln(stdout, "\nThe head of the log is unknown: the embedded event store is locked by the running")
		fmt.Fprintln(stdout, "server, whose projector follows it. Stop the server to compare, or see its log.")
	}
	return nil
}

// lag says how far a checkpoint is behind the head: in events for the
// embedded store, whose positions are event numbers.
func lag(cp, head eventstore.Position, headKnown, embedded bool) string {
	switch {
	case !headKnown:
		return "?"
	case !cp.Less(head):
		return "0 (up to date)"
	case embedded:
		return count(head.Commit-cp.Commit) + " events"
	}
	return "behind"
}

// count writes n with thousands separators.
func count(n uint64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// progress shows a rebuild's progress: a bar redrawn in place on a
// terminal, a line every few seconds otherwise (a log file, CI).
type progress struct {
	w        io.Writer
	terminal bool
	embedded bool // positions count events
	total    uint64
	start    time.Time
	last     time.Time
	shown    bool
}

func newProgress(w io.Writer, head eventstore.Position, embedded bool) *progress {
	p := &progress{w: w, total: head.Commit, start: time.Now(), embedded: embedded}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) update(applied eventstore.Position) {
	now := time.Now()
	every := 5 * time.Second
	if p.terminal {
		every = 100 * time.Millisecond
	}
	if now.Sub(p.last) < every && applied.Commit < p.total {
		return
	}
	p.last = now
	done := applied.Commit
	frac := 1.0
	if p.total > 0 {
		frac = min(1, float64(done)/float64(p.total))
	}
	elapsed := now.Sub(p.start).Seconds()
	rate := float64(done) / max(elapsed, 1e-3)
	eta := "ETA -"
	switch {
	case done >= p.total:
		eta = "building indexes" // the rebuild's last step, after the last batch
	case rate > 0:
		eta = "ETA " + (time.Duration(float64(p.total-done)/rate) * time.Second).Round(time.Second).String()
	}
	what := fmt.Sprintf("%s/%s events  %s events/s", count(done), count(p.total), count(uint64(rate)))
	if !p.embedded {
		what = fmt.Sprintf("position %s of %d", applied, p.total)
	}
	if p.terminal {
		const width = 30
		n := int(frac * width)
		fmt.Fprintf(p.w, "\r[%s%s] %3.0f%%  %s  %s   ", strings.Repeat("#", n), strings.Repeat(".", width-n),
			frac*100, what, eta)
		p.shown = true
		return
	}
	fmt.Fprintf(p.w, "rebuild: %3.0f%%  %s  %s\n", frac*100, what, eta)
}

// done ends the bar's line.
func (p *progress) done() {
	if p.terminal && p.shown {
		fmt.Fprintln(p.w)
	}
}
