package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
)

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
	return runAudit(ctx, log, tf.cfg, auditFlags{grace: *grace, maxShown: *maxShown, every: *every, readModel: *readModel}, stdout, stderr)
}

// auditFlags are the audit's own flags.
type auditFlags struct {
	grace     time.Duration
	maxShown  int
	every     time.Duration
	readModel bool
}

// runAudit audits log and prints the report; cfg says where the read model
// to compare is (PostgreSQL with a database URL, else one built in memory).
func runAudit(ctx context.Context, log *toolLog, cfg config, f auditFlags, stdout, stderr io.Writer) error {
	head, err := log.Head(ctx)
	if err != nil {
		return err
	}
	view := audit.Bounded(log, head)
	opts := audit.Options{Grace: f.grace}
	if f.grace == 0 {
		opts.Grace = -1 // the flag's 0 means none; Options' zero means the default
	}

	// Check 6's read model. The in-memory one is built from the same prefix
	// of the log, alongside the audit; a shared PostgreSQL one is compared
	// at its own checkpoint, which the fold keeps the balances of.
	var rm projections.Reader
	rmName, skipped := "", ""
	var memModel *memory.Model
	var pgModel projections.Model
	if f.readModel {
		if cfg.DatabaseURL != "" {
			m, closeModel, err := openReadModel(ctx, cfg, log, quietLogger())
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
			// Built from the same read of the log as the audit, as serve
			// builds it at every start.
			memModel = memory.New(view)
			rm, rmName = memModel, "memory"
		}
	}

	a := audit.New(opts)
	start := time.Now()
	last := start
	fmt.Fprintf(stderr, "auditing %s up to position %s\n", log.where, head)
	ro := audit.RunOptions{Progress: func(p audit.Progress) {
		if f.every <= 0 || time.Since(last) < f.every {
			return
		}
		last = time.Now()
		fmt.Fprintf(stderr, "audit: %d events, position %s of %s, %.0f events/s\n", p.Events, p.Position, p.Head,
			float64(p.Events)/max(p.Elapsed.Seconds(), 1e-9))
	}}
	if memModel != nil {
		ro.Model = memModel
	}
	_, err = audit.Run(ctx, view, a, ro)
	if errors.Is(err, audit.ErrModel) {
		return fmt.Errorf("build the in-memory read model: %w", err)
	}
	if err != nil {
		return err
	}
	r := a.Finish()
	took := time.Since(start)
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
	if !f.readModel {
		r.ReadModelSkipped = "--read-model=false"
	}
	if err := audit.WriteReport(stdout, r, f.maxShown); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "audited %d events in %s (%.0f events/s)\n", r.Events, took.Round(time.Millisecond),
		float64(r.Events)/max(took.Seconds(), 1e-9))
	if !r.OK() {
		return fmt.Errorf("%w: %d", errViolations, len(r.Violations))
	}
	return nil
}
