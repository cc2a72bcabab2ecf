package audit

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteReport prints the report for people: what was read, the totals, each
// check's verdict and at most maxViolations violations (all if <= 0).
func WriteReport(w io.Writer, r *Report, maxViolations int) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("audit of %d events, positions %s..%s\n", r.Events, r.First, r.Last)
	if !r.Newest.IsZero() {
		p("log time %s .. %s; open hours are due up to %s before the newest\n", fmtTime(r.Oldest), fmtTime(r.Newest), r.Grace)
	}
	p("accounts %d, servers %d, transactions %d, charged hours %d, due billable hours %d, failed deploys %d\n\n",
		r.Accounts, r.Servers, r.Transactions, r.ChargedHours, r.RequiredHours, r.FailedDeploys)

	p("transactions by kind\tcount\tamount\n")
	for _, k := range r.Kinds {
		p("  %s\t%d\t%s\n", k.Kind, k.Count, k.Amount)
	}
	p("ledger account\taccounts\tbalance\n")
	for _, t := range r.Totals {
		p("  %s\t%d\t%s\n", t.Account, t.Accounts, t.Balance)
	}
	p("  trial balance (sum of all postings)\t\t%s\n\n", r.Trial)

	p("check\tverdict\n")
	for _, c := range Checks() {
		n := r.Count(c)
		verdict := "ok"
		switch {
		case n > 0:
			verdict = fmt.Sprintf("%d violation(s)", n)
		case c == CheckReadModel && r.ReadModelSkipped != "":
			verdict = "not run: " + r.ReadModelSkipped
		case c == CheckReadModel && r.ReadModel == "":
			verdict = "not run"
		}
		if c == CheckReadModel && r.ReadModel != "" {
			verdict += "\t" + r.ReadModel
		}
		p("  %d %s\t%s\n", int(c), c, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.OK() {
		_, err := fmt.Fprintln(w, "\nno violations")
		return err
	}
	fmt.Fprintf(w, "\n%d violation(s):\n", len(r.Violations))
	for i, v := range r.Violations {
		if maxViolations > 0 && i == maxViolations {
			fmt.Fprintf(w, "... and %d more (raise --max-violations to see them)\n", len(r.Violations)-i)
			break
		}
		if _, err := fmt.Fprintln(w, v.String()); err != nil {
			return err
		}
	}
	return nil
}
