package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// t0 is deliberately off the hour: billing hours count from a server's
// creation, not from the top of the clock.
var t0 = time.Date(2026, 3, 3, 9, 17, 23, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// acctLog is one account's history decided by the real domain, which a test
// may then corrupt before it is written to a store.
type acctLog struct {
	t      testing.TB
	id     string
	st     domain.Account
	events []domain.Event
}

func newAcct(t testing.TB, name, credit string) *acctLog {
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte(name)).String()
	a := &acctLog{t: t, id: id, st: domain.NewAccount(id)}
	a.do(domain.Register{AccountID: id, SealedEmail: "v1:sealed-" + name, ServerLimit: 10,
		SignupCredit: domain.MustMoney(credit)}, at(-time.Hour))
	return a
}

// do decides cmd at now and returns the index of the first event it added.
func (a *acctLog) do(cmd domain.Command, now time.Time) int {
	a.t.Helper()
	events, err := domain.Decide(a.st, cmd, now)
	if err != nil {
		a.t.Fatalf("%T at %s: %v", cmd, now, err)
	}
	first := len(a.events)
	for _, e := range events {
		a.st = domain.Evolve(a.st, e)
	}
	a.events = append(a.events, events...)
	return first
}

func (a *acctLog) deploy(serverID, price string, now time.Time) {
	a.do(domain.Deploy{Servers: []domain.ServerSpec{{ID: serverID, Label: serverID, Plan: "p", Region: "ams",
		HourlyPrice: domain.MustMoney(price)}}}, now)
}

func (a *acctLog) topup(id, amount string, now time.Time) {
	a.do(domain.CreateTopup{TopupID: id, Amount: domain.MustMoney(amount), Currency: "BTC"}, now)
	a.do(domain.PayTopup{TopupID: id}, now)
}

// find returns the index of the n-th (0-based) event that matches.
func (a *acctLog) find(n int, match func(domain.Event) bool) int {
	a.t.Helper()
	for i, e := range a.events {
		if match(e) {
			if n == 0 {
				return i
			}
			n--
		}
	}
	a.t.Fatalf("no such event")
	return -1
}

// chargeAt is the index of the charge of serverID covering the hour that
// starts at from.
func (a *acctLog) chargeAt(serverID string, from time.Time) int {
	return a.find(0, func(e domain.Event) bool {
		tx, ok := e.(domain.LedgerPosted)
		return ok && tx.Kind == domain.TxCharge && tx.ServerID == serverID && tx.From != nil && tx.From.Equal(from)
	})
}

func (a *acctLog) ledger(i int) domain.LedgerPosted {
	a.t.Helper()
	tx, ok := a.events[i].(domain.LedgerPosted)
	if !ok {
		a.t.Fatalf("event %d is a %T", i, a.events[i])
	}
	return tx
}

// reseal recomputes the hash chain from the start, as someone covering
// their tracks would: what is left is only what the other checks see.
func (a *acctLog) reseal() {
	prev := ""
	for i, e := range a.events {
		if tx, ok := e.(domain.LedgerPosted); ok {
			tx.PrevHash = prev
			tx.Hash = tx.ComputeHash()
			prev = tx.Hash
			a.events[i] = tx
		}
	}
}

func (a *acctLog) remove(i int) { a.events = slices.Delete(a.events, i, i+1) }

func (a *acctLog) insert(i int, e domain.Event) { a.events = slices.Insert(a.events, i, e) }

// written says where each account's events landed in the store.
type written map[string][]eventstore.Position

func (w written) at(a *acctLog, i int) eventstore.Position { return w[a.id][i] }

// writeLogs writes each account's history in one append, one account after
// the other, and returns the positions.
func writeLogs(t testing.TB, store eventstore.Store, logs ...*acctLog) written {
	t.Helper()
	ctx := context.Background()
	w := written{}
	for _, a := range logs {
		props := make([]eventstore.Proposed, len(a.events))
		for i, e := range a.events {
			data, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			props[i] = eventstore.Proposed{ID: uuid.New(), Type: e.EventType(), Data: data}
		}
		res, err := store.Append(ctx, domain.AccountStream(a.id), eventstore.Any, props)
		if err != nil {
			t.Fatal(err)
		}
		first := res.Position.Commit - uint64(len(props)) + 1
		for i := range props {
			w[a.id] = append(w[a.id], eventstore.Position{Commit: first + uint64(i), Prepare: first + uint64(i)})
		}
	}
	return w
}

// expect is one violation a test plants: its check and the event named.
type expect struct {
	check audit.Check
	pos   eventstore.Position
}

func (e expect) String() string { return fmt.Sprintf("%s@%s", e.check, e.pos) }

// runAudit audits the store with Run and with Apply (they must agree) and
// returns the report.
func runAudit(t testing.TB, store eventstore.Store, opts audit.Options) *audit.Report {
	t.Helper()
	ctx := context.Background()
	a := audit.New(opts)
	if _, err := audit.Run(ctx, store, a, audit.RunOptions{Page: 7, Workers: 3}); err != nil {
		t.Fatal(err)
	}
	r := a.Finish()

	serial := audit.New(opts)
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = audit.ReadLog(ctx, store, eventstore.Position{}, head, 100, func(batch []eventstore.Event) error {
		serial.Apply(batch)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := serial.Finish(); fmt.Sprint(s.Violations) != fmt.Sprint(r.Violations) || s.Events != r.Events ||
		s.ChargedHours != r.ChargedHours || s.RequiredHours != r.RequiredHours {
		t.Fatalf("Apply and Run disagree:\n%v\n%v", s.Violations, r.Violations)
	}
	return r
}

// assertExactly checks the report holds exactly the planted violations.
func assertExactly(t testing.TB, r *audit.Report, want ...expect) {
	t.Helper()
	var got []string
	for _, v := range r.Violations {
		got = append(got, expect{v.Check, v.Event.Position}.String())
	}
	var exp []string
	for _, e := range want {
		exp = append(exp, e.String())
	}
	slices.Sort(got)
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		for _, v := range r.Violations {
			t.Log(v)
		}
		t.Fatalf("violations %v, want %v", got, exp)
	}
}
