package replay

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func signed(m domain.Money) string {
	if m.Sign() > 0 {
		return "+" + m.String()
	}
	return m.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// WriteState prints the account as it stood.
func (r *Result) WriteState(w io.Writer) error {
	a := r.Account
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("account %s (%s) as of %s: %d events, up to position %s\n", a.ID, r.Email, fmtTime(r.AsOf), r.Events, r.Position)
	p("balance\t%s\n", a.Balance)
	p("hourly spend\t%s\n", a.HourlySpend())
	p("suspended\t%s", yesNo(a.Suspended))
	if a.Suspended {
		p(" (%s)", a.SuspendReason)
	}
	p("\nserver limit\t%d (%d live)\n", a.ServerLimit, a.LiveServers())
	p("registered\t%s\n\n", fmtTime(a.CreatedAt))

	p("SERVER\tLABEL\tPLAN\tREGION\tPRICE/H\tSTATUS\tCREATED\tBILLED UNTIL\tCHARGED\n")
	for _, id := range a.ServerOrder {
		s := a.Servers[id]
		billed := fmtTime(s.BilledUntil)
		if !s.Billable() {
			billed = "-"
		}
		p("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Label, s.Plan, s.Region, s.HourlyPrice, s.Status,
			fmtTime(s.CreatedAt), billed, s.Charged)
	}
	if len(a.ServerOrder) == 0 {
		p("(none)\n")
	}
	p("\nBACKUP\tSERVER\tLABEL\tSTATUS\tCREATED\tEXPIRES\n")
	for _, b := range r.Backups {
		status := string(b.Status)
		if (b.Status == domain.BackupPending || b.Status == domain.BackupAvailable || b.Status == domain.BackupError) && !b.Visible(r.AsOf) {
			status += " (expired by then, not yet retired)"
		}
		p("%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.ServerID, b.Label, status, fmtTime(b.CreatedAt), fmtTime(b.ExpiresAt))
	}
	if len(r.Backups) == 0 {
		p("(none)\n")
	}
	p("\nTOP-UP\tAMOUNT\tCURRENCY\tSTATUS\tCREATED\tPAID\n")
	for _, id := range a.TopupOrder {
		t := a.Topups[id]
		p("%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Amount, t.Currency, t.Status, fmtTime(t.CreatedAt), fmtTime(t.PaidAt))
	}
	if len(a.TopupOrder) == 0 {
		p("(none)\n")
	}
	return tw.Flush()
}

// hours prints an hour range by its ends, the day only once.
func hours(from, to time.Time) string {
	from, to = from.UTC(), to.UTC()
	if from.Format(time.DateOnly) == to.Format(time.DateOnly) {
		return "[" + from.Format("2006-01-02 15:04:05") + ", " + to.Format("15:04:05") + ")"
	}
	return "[" + from.Format("2006-01-02 15:04:05") + ", " + to.Format("2006-01-02 15:04:05") + ")"
}

// WriteExplain prints the ledger line by line with the running balance and,
// beside it, what the billing rules say; every difference is marked DIFF.
// Hours the rules say should be charged and are not get lines of their own,
// in time order among the transactions.
func (r *Result) WriteExplain(w io.Writer) error {
	a := r.Account
	fmt.Fprintf(w, "ledger of %s (%s) up to %s; hours starting after %s may still be uncharged (grace %s)\n\n",
		r.Email, a.ID, fmtTime(r.AsOf), fmtTime(r.AsOf.Add(-r.Grace)), r.Grace)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format, args...) }
	p("POSITION\tTIME\tKIND\tAMOUNT\tBALANCE\tFOR\tBILLING RULES\tMARK\n")
	shown := map[eventstore.Position]bool{}
	diffs := 0
	mark := func(vs []audit.Violation) string {
		if len(vs) == 0 {
			return "ok"
		}
		diffs += len(vs)
		var parts []string
		for _, v := range vs {
			shown[v.Event.Position] = true
			parts = append(parts, fmt.Sprintf("DIFF %s: %s", v.Check, v.Message))
		}
		return strings.Join(parts, "; ")
	}
	m := 0
	missing := func(upTo time.Time, all bool) {
		for ; m < len(r.Missing) && (all || r.Missing[m].From.Before(upTo)); m++ {
			x := r.Missing[m]
			diffs++
			which := fmt.Sprintf("hour %d", x.First)
			if x.Hours > 1 {
				which = fmt.Sprintf("each of hours %d-%d", x.First, x.First+x.Hours-1)
			}
			p("-\t%s\t(missing)\t\t\t%s %s\t%s for %s\tDIFF %s: billable but not charged\n",
				fmtTime(x.From), x.ServerID, hours(x.From, x.To), x.Price.Neg(), which, audit.CheckBilling)
		}
	}
	for _, l := range r.Ledger {
		missing(l.At, false)
		var what string
		switch {
		case l.ServerID != "" && l.From != nil && l.To != nil:
			what = l.ServerID + " " + hours(*l.From, *l.To)
		case l.ServerID != "":
			what = l.ServerID
		case l.TopupID != "":
			what = "top-up " + l.TopupID
		}
		rule := l.Rule
		if rule == "" {
			rule = "-"
		}
		mk := mark(l.Diffs)
		p("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Ref.Position, fmtTime(l.At), l.Kind, signed(l.Amount), l.Balance, what, rule, mk)
	}
	missing(time.Time{}, true)
	if err := tw.Flush(); err != nil {
		return err
	}

	// Differences that are about other events than transactions.
	var other []audit.Violation
	for _, v := range r.Diffs {
		if shown[v.Event.Position] {
			continue
		}
		isMissing := false
		for _, x := range r.Missing {
			if x.Diff.Event == v.Event && x.Diff.From.Equal(v.From) {
				isMissing = true
			}
		}
		if !isMissing {
			other = append(other, v)
		}
	}
	for _, v := range other {
		diffs++
		fmt.Fprintf(w, "DIFF %s\n", v)
	}

	// Why the balance is what it is.
	byKind := map[domain.TxKind]domain.Money{}
	counts := map[domain.TxKind]int{}
	for _, l := range r.Ledger {
		byKind[l.Kind] = byKind[l.Kind].Add(l.Amount)
		counts[l.Kind]++
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, string(k))
	}
	sort.Strings(kinds)
	var terms []string
	for _, k := range kinds {
		terms = append(terms, fmt.Sprintf("%s %s (%d)", k, signed(byKind[domain.TxKind(k)]), counts[domain.TxKind(k)]))
	}
	if len(terms) == 0 {
		terms = []string{"no transaction"}
	}
	fmt.Fprintf(w, "\nbalance %s = %s\n", a.Balance, strings.Join(terms, " "))
	if diffs == 0 {
		_, err := fmt.Fprintln(w, "differences from the billing rules: none")
		return err
	}
	_, err := fmt.Fprintf(w, "differences from the billing rules: %d (marked DIFF)\n", diffs)
	return err
}

// Differences counts what WriteExplain marks.
func (r *Result) Differences() int { return len(r.Diffs) }
