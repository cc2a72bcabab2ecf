package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cryptovps/cryptovps/app/audit"
)

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
	if *who != "" {
		dir, err := openDirectory(ctx, tf, log.Store, stderr)
		if err != nil {
			return err
		}
		o.AccountID, err = dir.resolve(ctx, *who)
		dir.close()
		if err != nil {
			return err
		}
	}
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
