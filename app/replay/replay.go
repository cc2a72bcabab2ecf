// Package replay rebuilds one account from the event log alone, as it stood
// at a given moment (balance, servers and their statuses, backups, top-ups),
// and explains its ledger line by line against the billing rules: the
// charges the rules say should exist are recomputed by the audit engine
// (app/audit) from the account's own lifecycle events, so a support
// engineer sees why a balance is what it is and where the two disagree.
//
// "As it stood at T" takes every event whose time is at or before T. An
// event's time is its domain timestamp, or the latest timestamp earlier on
// its stream if that is later: a charge carries the start of the hour it
// covers rather than the moment the biller wrote it, and running the
// maximum along the stream keeps a stream's included events a prefix of
// it, in the order they were decided. The sandbox clock is honoured: these
// are the times the API showed, not the store's recording times.
package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// ErrNoAccount is returned for an account that has no event in the log (by
// the time asked for).
var ErrNoAccount = errors.New("replay: no such account in the log")

// Options say which moment to rebuild.
type Options struct {
	// Until is the moment; zero means the end of the log.
	Until time.Time
	// Grace is the audit's grace for hours not yet charged (see
	// audit.Options); zero means audit.DefaultGrace.
	Grace time.Duration
}

// Line is one ledger transaction of the account, with the balance after it
// and what the billing rules say about it.
type Line struct {
	Ref      audit.Ref
	At       time.Time
	TxID     string
	Kind     domain.TxKind
	Amount   domain.Money // on the customer's ledger account
	Balance  domain.Money
	ServerID string
	From, To *time.Time
	TopupID  string
	// Rule says what the billing rules expect here ("" for credits);
	// Diffs are the audit's violations naming this transaction.
	Rule  string
	Diffs []audit.Violation
}

// Missing is a charge the rules say should exist and the ledger lacks.
type Missing struct {
	ServerID string
	From, To time.Time
	// First is the index of the first missing hour, Hours how many.
	First, Hours int64
	Price        domain.Money
	Diff         audit.Violation
}

// Result is the account as it stood, and its explained ledger.
type Result struct {
	AccountID string
	Account   domain.Account
	// Email is the account's email to print: the log holds it sealed, so
	// the caller opens it with the key store ("forgotten" once forgotten);
	// Account replays leave the plain email of an old account here.
	Email   string
	Backups []domain.Backup
	// AsOf is the moment rebuilt: Until, or the account's newest event
	// time. DueBy is AsOf less the grace: hours starting later may still
	// be uncharged.
	AsOf     time.Time
	Grace    time.Duration
	Position eventstore.Position // the last event taken
	Events   int
	Ledger   []Line
	Missing  []Missing
	// Diffs are all the audit's violations on this account, including
	// those about other events than ledger lines (an unrefunded failure).
	Diffs []audit.Violation
}

// streamCut follows one stream's running event time, to stop taking its
// events once they are past Until.
type streamCut struct {
	latest time.Time
	done   bool
}

// take reports whether an event with domain time t is within until.
func (c *streamCut) take(t time.Time, until time.Time) bool {
	if c.done {
		return false
	}
	if t.After(c.latest) {
		c.latest = t
	}
	if !until.IsZero() && c.latest.After(until) {
		c.done = true
		return false
	}
	return true
}

// Account rebuilds accountID from store. It reads the whole log once: the
// backups of an account live on their own streams, found by their
// BackupRequested.
func Account(ctx context.Context, store eventstore.Store, accountID string, opts Options) (*Result, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("replay: read the head of the log: %w", err)
	}
	stream := domain.AccountStream(accountID)
	r := &Result{AccountID: accountID, Account: domain.NewAccount(accountID)}
	var taken []eventstore.Event // the account's, for the audit
	acctCut := &streamCut{}
	backups := map[string]*streamCut{} // backup stream -> its cut
	backupState := map[string]*domain.Backup{}
	var backupOrder []string
	balance := domain.Zero()
	customer := domain.CustomerLedger(accountID)

	err = audit.ReadLog(ctx, store, eventstore.Position{}, head, 1024, func(batch []eventstore.Event) error {
		for _, ev := range batch {
			switch {
			case ev.Stream == stream:
				e, err := domain.DecodeEvent(ev.Type, ev.Data)
				if err != nil {
					return fmt.Errorf("replay: event %s at %s: %w", ev.ID, ev.Position, err)
				}
				if !acctCut.take(audit.EventTime(e), opts.Until) {
					continue
				}
				r.Account = domain.Evolve(r.Account, e)
				r.Events++
				r.Position = ev.Position
				taken = append(taken, ev)
				if tx, ok := e.(domain.LedgerPosted); ok {
					amount := tx.AmountFor(customer)
					balance = balance.Add(amount)
					r.Ledger = append(r.Ledger, Line{Ref: audit.Ref{ID: ev.ID, Stream: ev.Stream, Version: ev.Version, Position: ev.Position},
						At: tx.At, TxID: tx.TxID, Kind: tx.Kind, Amount: amount, Balance: balance, ServerID: tx.ServerID,
						From: tx.From, To: tx.To, TopupID: tx.TopupID})
				}
			case len(ev.Stream) > len(domain.BackupStreamPrefix) && ev.Stream[:len(domain.BackupStreamPrefix)] == domain.BackupStreamPrefix:
				cut, mine := backups[ev.Stream]
				if !mine && ev.Type != "BackupRequested" {
					continue // not one of this account's, or not started
				}
				e, err := domain.DecodeEvent(ev.Type, ev.Data)
				if err != nil {
					return fmt.Errorf("replay: event %s at %s: %w", ev.ID, ev.Position, err)
				}
				if !mine {
					if req, ok := e.(domain.BackupRequested); !ok || req.AccountID != accountID {
						continue
					}
					cut = &streamCut{}
					backups[ev.Stream] = cut
				}
				if !cut.take(audit.EventTime(e), opts.Until) {
					continue
				}
				b := backupState[ev.Stream]
				if b == nil {
					b = &domain.Backup{}
					backupState[ev.Stream] = b
					backupOrder = append(backupOrder, ev.Stream)
				}
				*b = domain.EvolveBackup(*b, e)
				r.Events++
				if r.Position.Less(ev.Position) {
					r.Position = ev.Position
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !r.Account.Registered {
		return nil, fmt.Errorf("%w: %s", ErrNoAccount, accountID)
	}
	for _, s := range backupOrder {
		r.Backups = append(r.Backups, *backupState[s])
	}

	r.AsOf = opts.Until
	if r.AsOf.IsZero() {
		r.AsOf = acctCut.latest
	}
	a := audit.New(audit.Options{Now: r.AsOf, Grace: opts.Grace})
	a.Apply(taken)
	rep := a.Finish()
	r.Grace = rep.Grace
	r.Diffs = rep.Violations
	r.explain(a, rep)
	r.Email = r.Account.Email.Plain
	if r.Account.Forgotten {
		r.Email = domain.ForgottenEmail
	}
	return r, nil
}

// explain pairs the ledger with what the billing rules say.
func (r *Result) explain(a *audit.Auditor, rep *audit.Report) {
	onLedger := map[eventstore.Position]bool{}
	for _, l := range r.Ledger {
		onLedger[l.Ref.Position] = true
	}
	byPos := map[eventstore.Position][]audit.Violation{}
	for _, v := range rep.Violations {
		// A missing-hours violation names the event that opened the
		// billing period, not a transaction: it becomes a line of its own.
		if v.Check == audit.CheckBilling && !onLedger[v.Event.Position] && !v.From.IsZero() {
			m := Missing{ServerID: v.ServerID, From: v.From, To: v.To, Hours: int64(v.To.Sub(v.From) / time.Hour), Diff: v}
			if s := r.Account.Servers[v.ServerID]; s != nil {
				m.Price, m.First = s.HourlyPrice, int64(v.From.Sub(s.CreatedAt)/time.Hour)
			}
			r.Missing = append(r.Missing, m)
			continue
		}
		byPos[v.Event.Position] = append(byPos[v.Event.Position], v)
	}
	seen := map[string]bool{} // server|hour already charged
	for i := range r.Ledger {
		l := &r.Ledger[i]
		l.Diffs = byPos[l.Ref.Position]
		switch l.Kind {
		case domain.TxCharge:
			if l.From == nil {
				l.Rule = "no charge without an hour"
				break
			}
			k, price, billable, why, ok := a.Hour(l.ServerID, *l.From)
			key := l.ServerID + "|" + l.From.UTC().String()
			switch {
			case !ok:
				l.Rule = "no charge: not an hour of a server of this account"
			case seen[key]:
				l.Rule = fmt.Sprintf("no charge: hour %d is charged already", k)
			case !billable:
				l.Rule = fmt.Sprintf("no charge: hour %d is not billable (%s)", k, why)
			default:
				l.Rule = fmt.Sprintf("%s for hour %d", price.Neg(), k)
			}
			seen[key] = true
		case domain.TxRefund:
			s := r.Account.Servers[l.ServerID]
			switch {
			case s == nil:
				l.Rule = "no refund: unknown server"
			case s.Status == domain.StatusError:
				l.Rule = "refund every charged hour: the deploy failed"
			default:
				l.Rule = "no refund: the deploy did not fail"
			}
		}
	}
	slices.SortFunc(r.Missing, func(x, y Missing) int { return x.From.Compare(y.From) })
}
