package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// topupsCmd runs the operator's top-up commands through the running
// server's admin API, like accounts: the review list of top-ups whose
// money was not (all) credited automatically, and the explicit, audited
// decision on each (credit, or dismiss), recorded with the operator as
// actor and the reason.
func topupsCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("topups: review|credit|dismiss")
	}
	sub := args[0]
	fs := flag.NewFlagSet("topups "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	reason := fs.String("reason", "", "why (required for credit and dismiss; kept in the log)")
	amount := fs.String("amount", "", "credit: USD to credit (default: the top-up's amount)")
	op, err := parseOperator(fs, args[1:])
	if err != nil {
		return err
	}
	server, tok, pos := op.server, op.token, op.pos
	switch sub {
	case "review":
		if len(pos) != 0 {
			return errors.New("topups review takes no argument")
		}
		return adminCall(server, tok, http.MethodGet, "/admin/topups/review", nil, stdout)
	case "credit", "dismiss":
		if len(pos) != 1 {
			return fmt.Errorf("topups %s TOPUP --reason TEXT", sub)
		}
		if *reason == "" {
			return fmt.Errorf("topups %s: --reason is required", sub)
		}
		body := map[string]string{"reason": *reason}
		if *amount != "" {
			if sub != "credit" {
				return errors.New("topups dismiss: --amount is for credit only")
			}
			body["amount"] = *amount
		}
		return adminCall(server, tok, http.MethodPost, "/admin/topups/"+url.PathEscape(pos[0])+"/"+sub, body, stdout)
	}
	return fmt.Errorf("topups: unknown command %q", sub)
}
