package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
)

// restoreCheckCmd proves a backup can be restored: it opens the copy
// read-only (never writing to it, so it works on read-only media and
// leaves the copy as it was), checks the file's structure, and runs the
// whole audit on the log in it. It exits non-zero on any damage or
// violation.
func restoreCheckCmd(args []string, stdout, stderr io.Writer) error {
	stderr = &lockedWriter{w: stderr}
	// Only the audit's flags: the backup is the whole input, nothing of a
	// deployment's configuration applies to it.
	fs := flag.NewFlagSet("restore-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: cryptovps restore-check [flags] FILE\n\nOpen a backup read-only, check its structure and audit its log.")
		fs.PrintDefaults()
	}
	grace := fs.Duration("grace", audit.DefaultGrace, "how long after an hour starts the biller may not have charged it yet (0: none)")
	maxShown := fs.Int("max-violations", 200, "violations to print (0: all)")
	every := fs.Duration("progress", 2*time.Second, "how often to print progress to stderr (0: never)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("restore-check: one FILE, the backup")
	}
	file := fs.Arg(0)
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("restore-check: %w", err)
	}
	ctx, stop := signalContext()
	defer stop()
	s, err := bbolt.Open(file, bbolt.Options{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("restore-check: %s does not open as an event store: %w", file, err)
	}
	defer s.Close()
	if err := s.Verify(ctx); err != nil {
		return fmt.Errorf("restore-check: %w", err)
	}
	fmt.Fprintf(stderr, "%s: the file's structure is sound\n", file)
	// The read model to compare balances with is built in memory from the
	// copy, never a configured PostgreSQL: that one belongs to the live
	// deployment, not to this backup.
	return runAudit(ctx, &toolLog{Store: s, where: file, close: s.Close}, config{},
		auditFlags{grace: *grace, maxShown: *maxShown, every: *every, readModel: true}, stdout, stderr)
}
