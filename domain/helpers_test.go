package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

// The given/when/then harness for the account decider.
//
// Histories are built by running commands through Decide (so every ledger
// transaction is sealed and chained exactly as in production), and every
// decision is checked against the invariants that must hold in any scenario:
// Decide does not touch its input, every LedgerPosted is balanced and chained,
// a charge covers exactly the server's next unbilled hour at its price while
// it is billable, a suspension happens at that hour only when the balance
// cannot cover it, and the balance never goes negative.

const (
	accountID = "acct-1"
	// defaultServerLimit is the limit a new account gets from the API.
	defaultServerLimit = 10
)

// t0 is deliberately not on a wall-clock hour: billing hours count from a
// server's creation, not from the top of the hour.
var t0 = time.Date(2025, 3, 3, 9, 17, 23, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func money(s string) domain.Money { return domain.MustMoney(s) }

// given is the state of the account stream after events.
func given(events ...domain.Event) domain.Account {
	a := domain.NewAccount(accountID)
	for _, e := range events {
		a = domain.Evolve(a, e)
	}
	return a
}

// spec is one scenario: the history so far and its folded state.
type spec struct {
	t       testing.TB
	history []domain.Event
	st      domain.Account
}

func newSpec(t testing.TB, events ...domain.Event) *spec {
	s := &spec{t: t, st: domain.NewAccount(accountID)}
	s.given(events...)
	t.Cleanup(func() { checkLedger(t, s.history) })
	return s
}

// registered is a scenario with an account registered an hour before t0
// with the default limit and the given signup credit.
func registered(t testing.TB, credit string) *spec {
	t.Helper()
	s := newSpec(t)
	s.then(register(credit), at(-time.Hour))
	return s
}

// sealedAnn stands for ann@example.com sealed with the account's data key:
// the domain only carries it.
const sealedAnn = "v1:sealed-ann"

func register(credit string) domain.Register {
	return domain.Register{
		AccountID: accountID, SealedEmail: sealedAnn, CredentialRef: "ref-ann",
		ServerLimit: defaultServerLimit, SignupCredit: money(credit),
	}
}

func (s *spec) given(events ...domain.Event) *spec {
	for _, e := range events {
		s.st = domain.Evolve(s.st, e)
	}
	s.history = append(s.history, events...)
	return s
}

// state is a private copy of the current state.
func (s *spec) state() domain.Account { return s.st.Clone() }

func (s *spec) server(id string) domain.Server {
	s.t.Helper()
	srv, ok := s.st.Server(id)
	if !ok {
		s.t.Fatalf("no server %s", id)
	}
	return srv
}

// when decides cmd at now on the current state. On success the events
// become part of the history.
func (s *spec) when(cmd domain.Command, now time.Time) ([]domain.Event, error) {
	s.t.Helper()
	in := s.st.Clone()
	events, err := domain.Decide(in, cmd, now)
	if !reflect.DeepEqual(in, s.st) {
		s.t.Fatalf("Decide(%T) modified the state it was given", cmd)
	}
	if err != nil {
		if len(events) != 0 {
			s.t.Fatalf("Decide(%T) returned events %v with error %v", cmd, types(events), err)
		}
		return nil, err
	}
	checkDecision(s.t, s.st, events, now)
	_, folded, err := domain.DecideFolded(s.st.Clone(), cmd, now)
	if err != nil {
		s.t.Fatalf("DecideFolded(%T) refused what Decide accepted: %v", cmd, err)
	}
	s.given(events...)
	if !reflect.DeepEqual(folded, s.st) {
		s.t.Fatalf("DecideFolded(%T) returned a state that is not its events folded", cmd)
	}
	return events, nil
}

// then decides a command that must succeed.
func (s *spec) then(cmd domain.Command, now time.Time) []domain.Event {
	s.t.Helper()
	events, err := s.when(cmd, now)
	if err != nil {
		s.t.Fatalf("%T at %s: unexpected error: %v", cmd, now.Sub(t0), err)
	}
	return events
}

// rejects decides a command that must fail, and returns the error.
func (s *spec) rejects(cmd domain.Command, now time.Time) error {
	s.t.Helper()
	events, err := s.when(cmd, now)
	if err == nil {
		s.t.Fatalf("%T at %s: want an error, got events %v", cmd, now.Sub(t0), types(events))
	}
	return err
}

// checkDecision checks the events of one decision against the state they
// were decided on.
func checkDecision(t testing.TB, before domain.Account, events []domain.Event, now time.Time) {
	t.Helper()
	a := before.Clone()
	prev := a.LastHash
	customer := domain.CustomerLedger(a.ID)
	for i, e := range events {
		switch e := e.(type) {
		case domain.LedgerPosted:
			if !e.Balanced() {
				t.Fatalf("event %d: transaction %s (%s) is not balanced: %+v", i, e.TxID, e.Kind, e.Postings)
			}
			if e.PrevHash != prev {
				t.Fatalf("event %d: PrevHash %q, want the previous transaction's hash %q", i, e.PrevHash, prev)
			}
			if e.Hash != e.ComputeHash() {
				t.Fatalf("event %d: Hash %q is not ComputeHash() %q", i, e.Hash, e.ComputeHash())
			}
			prev = e.Hash
			if e.Kind == domain.TxCharge {
				srv, ok := a.Server(e.ServerID)
				switch {
				case !ok:
					t.Fatalf("event %d: charge for unknown server %q", i, e.ServerID)
				case !srv.Billable():
					t.Fatalf("event %d: charge for server %s while %s", i, srv.ID, srv.Status)
				case e.From == nil || e.To == nil:
					t.Fatalf("event %d: charge without its hour", i)
				case !e.From.Equal(srv.BilledUntil):
					t.Fatalf("event %d: charge for hour %s, want the next unbilled hour %s", i, e.From.Sub(t0), srv.BilledUntil.Sub(t0))
				case !e.To.Equal(e.From.Add(time.Hour)) || !e.At.Equal(*e.From):
					t.Fatalf("event %d: charge [%s, %s) at %s is not one hour starting at At", i, e.From, e.To, e.At)
				case e.From.After(now):
					t.Fatalf("event %d: charge for hour %s which starts after now %s", i, e.From.Sub(t0), now.Sub(t0))
				case e.From.Sub(srv.CreatedAt)%time.Hour != 0:
					t.Fatalf("event %d: hour %s is not a whole number of hours after creation %s", i, e.From, srv.CreatedAt)
				case e.AmountFor(domain.LedgerRevenueCompute).Cmp(srv.HourlyPrice) != 0 || e.AmountFor(customer).Cmp(srv.HourlyPrice.Neg()) != 0:
					t.Fatalf("event %d: charge %+v does not move the server's price %s from %s to %s", i, e.Postings, srv.HourlyPrice, customer, domain.LedgerRevenueCompute)
				}
			}
		case domain.ServerSuspended:
			srv, ok := a.Server(e.ServerID)
			switch {
			case !ok:
				t.Fatalf("event %d: suspension of unknown server %q", i, e.ServerID)
			case !srv.Billable():
				t.Fatalf("event %d: suspension of server %s while %s", i, srv.ID, srv.Status)
			case !e.At.Equal(srv.BilledUntil):
				t.Fatalf("event %d: suspended at %s, want the unpaid hour %s", i, e.At.Sub(t0), srv.BilledUntil.Sub(t0))
			case a.Balance.Cmp(srv.HourlyPrice) >= 0:
				t.Fatalf("event %d: suspended although the balance %s covers %s", i, a.Balance, srv.HourlyPrice)
			}
		}
		a = domain.Evolve(a, e)
		if a.Balance.Sign() < 0 {
			t.Fatalf("event %d (%s): balance went negative: %s", i, e.EventType(), a.Balance)
		}
	}
}

// checkLedger checks a whole history: every transaction balanced, chained to
// the previous one and hashed as ComputeHash says, ids unique, and the
// balance equal to the sum of the customer's postings.
func checkLedger(t testing.TB, history []domain.Event) {
	t.Helper()
	a := domain.NewAccount(accountID)
	prev := ""
	sum := domain.Zero()
	ids := map[string]bool{}
	for i, e := range history {
		a = domain.Evolve(a, e)
		tx, ok := e.(domain.LedgerPosted)
		if !ok {
			continue
		}
		if !tx.Balanced() {
			t.Errorf("history[%d]: transaction %s is not balanced", i, tx.TxID)
		}
		if tx.PrevHash != prev {
			t.Errorf("history[%d]: PrevHash %q does not chain to %q", i, tx.PrevHash, prev)
		}
		if tx.Hash != tx.ComputeHash() {
			t.Errorf("history[%d]: Hash is not ComputeHash()", i)
		}
		if ids[tx.TxID] {
			t.Errorf("history[%d]: transaction id %s posted twice", i, tx.TxID)
		}
		ids[tx.TxID] = true
		prev = tx.Hash
		sum = sum.Add(tx.AmountFor(domain.CustomerLedger(accountID)))
	}
	if a.Balance.Cmp(sum) != 0 {
		t.Errorf("balance %s is not the sum of the customer's postings %s", a.Balance, sum)
	}
	if a.LastHash != prev {
		t.Errorf("LastHash %q, want the last transaction's hash %q", a.LastHash, prev)
	}
}

// Commands and specs.

func plan(t testing.TB, id string) domain.Plan {
	t.Helper()
	p, ok := domain.DefaultCatalog().Plan(id)
	if !ok {
		t.Fatalf("no plan %s", id)
	}
	return p
}

const (
	micro = "vc2-1c-1gb"  // 0.014 an hour
	std   = "vc2-2c-4gb"  // 0.047 an hour
	beast = "vc2-6c-16gb" // 0.164 an hour
)

func serverSpec(id, planID string) domain.ServerSpec {
	p, _ := domain.DefaultCatalog().Plan(planID)
	return domain.ServerSpec{ID: id, Label: "web-" + id, Plan: p.ID, Region: "ams", HourlyPrice: p.HourlyPrice}
}

// deploy deploys micro servers with the given ids.
func deploy(ids ...string) domain.Deploy {
	c := domain.Deploy{Bulk: len(ids) > 1}
	for _, id := range ids {
		c.Servers = append(c.Servers, serverSpec(id, micro))
	}
	return c
}

func deployPlan(planID string, ids ...string) domain.Deploy {
	c := domain.Deploy{Bulk: len(ids) > 1}
	for _, id := range ids {
		c.Servers = append(c.Servers, serverSpec(id, planID))
	}
	return c
}

// Assertions.

func types(events []domain.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.EventType()
	}
	return out
}

func wantTypes(t testing.TB, events []domain.Event, want ...string) {
	t.Helper()
	if got := types(events); !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("events = %v\nwant     %v", got, want)
	}
}

func wantNoEvents(t testing.TB, events []domain.Event) {
	t.Helper()
	if len(events) != 0 {
		t.Fatalf("want no events, got %v", describe(events))
	}
}

// as returns e as a T, failing the test if it is another event.
func as[T domain.Event](t testing.TB, e domain.Event) T {
	t.Helper()
	v, ok := e.(T)
	if !ok {
		var zero T
		t.Fatalf("event is %T, want %T", e, zero)
	}
	return v
}

func wantEqual[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func wantTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s = t0%+v, want t0%+v", what, got.Sub(t0), want.Sub(t0))
	}
}

func wantMoney(t testing.TB, what string, got domain.Money, want string) {
	t.Helper()
	if got.Cmp(money(want)) != 0 {
		t.Fatalf("%s = %s, want %s", what, got, want)
	}
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func wantStateError(t testing.TB, err error) {
	t.Helper()
	if !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("error = %v (%T), want an invalid_state error", err, err)
	}
}

// wantCharge asserts e charges server id the hour [from, from+1h) at price.
func wantCharge(t testing.TB, e domain.Event, id string, from time.Time, price string) {
	t.Helper()
	tx := as[domain.LedgerPosted](t, e)
	wantEqual(t, "charge kind", tx.Kind, domain.TxCharge)
	wantEqual(t, "charge server", tx.ServerID, id)
	if tx.From == nil || tx.To == nil {
		t.Fatalf("charge %s has no hour", tx.TxID)
	}
	wantTime(t, "charge from", *tx.From, from)
	wantTime(t, "charge to", *tx.To, from.Add(time.Hour))
	wantTime(t, "charge at", tx.At, from)
	wantEqual(t, "charge postings", len(tx.Postings), 2)
	wantMoney(t, "revenue:compute", tx.AmountFor(domain.LedgerRevenueCompute), price)
	wantMoney(t, "customer", tx.AmountFor(domain.CustomerLedger(accountID)), "-"+price)
}

// charge is an expected charge: a server and the hour it starts.
type charge struct {
	server string
	from   time.Duration // after t0
}

func (c charge) String() string { return fmt.Sprintf("%s@%s", c.server, c.from) }

// chargesIn lists the charges among events, in order.
func chargesIn(events []domain.Event) []charge {
	var out []charge
	for _, e := range events {
		if tx, ok := e.(domain.LedgerPosted); ok && tx.Kind == domain.TxCharge {
			out = append(out, charge{tx.ServerID, tx.From.Sub(t0)})
		}
	}
	return out
}

func describe(events []domain.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		switch e := e.(type) {
		case domain.LedgerPosted:
			from := ""
			if e.From != nil {
				from = "@" + e.From.Sub(t0).String()
			}
			out[i] = fmt.Sprintf("LedgerPosted(%s %s%s %s)", e.Kind, e.ServerID, from, e.AmountFor(domain.CustomerLedger(accountID)))
		case domain.ServerSuspended:
			out[i] = fmt.Sprintf("ServerSuspended(%s@%s)", e.ServerID, e.At.Sub(t0))
		default:
			out[i] = e.EventType()
		}
	}
	return out
}

func wantContains(t testing.TB, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%q does not contain %q", got, want)
	}
}

// idem is an Idempotency-Key sent at the real time wall.
func idem(key, hash string, wall time.Time) domain.Idem {
	return domain.Idem{Key: key, RequestHash: hash, Wall: wall}
}
