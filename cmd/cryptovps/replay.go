package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/app/replay"
)

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
	if *who == "" {
		return errors.New("--account EMAIL|ID is required")
	}
	ctx, stop := signalContext()
	defer stop()
	log, err := openToolLog(ctx, tf, stderr)
	if err != nil {
		return err
	}
	defer log.Close()
	dir, err := openDirectory(ctx, tf, log.Store, stderr)
	if err != nil {
		return err
	}
	defer dir.close()
	id, err := dir.resolve(ctx, *who)
	if err != nil {
		return err
	}
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
	if r.Email, err = dir.email(ctx, r.Account); err != nil {
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
