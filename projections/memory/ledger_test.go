package memory_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
)

// counted counts the events the ledger reads from the log.
type counted struct {
	eventstore.Store
	read atomic.Int64
}

func (c *counted) ReadStreamPage(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.Event, error) {
	evs, err := c.Store.ReadStreamPage(ctx, stream, from, limit)
	c.read.Add(int64(len(evs)))
	return evs, err
}

func openStore(t *testing.T) *counted {
	t.Helper()
	s, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &counted{Store: s}
}

func appendAll(t testing.TB, s eventstore.Store, stream string, events []domain.Event) {
	t.Helper()
	for len(events) > 0 {
		n := min(len(events), 500)
		ps, err := eventstore.Propose(eventstore.Metadata{}, events[:n]...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(context.Background(), stream, eventstore.Any, ps); err != nil {
			t.Fatal(err)
		}
		events = events[n:]
	}
}

func project(t *testing.T, s eventstore.Store) *memory.Model {
	t.Helper()
	m := memory.New(s)
	if err := projections.NewProjector(s, m, nil).CatchUp(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return m
}

// reference is the account's ledger as a reader of its whole stream makes
// it, oldest first.
func reference(t *testing.T, s eventstore.Store, id string) []projections.LedgerEntry {
	t.Helper()
	evs, err := s.ReadStreamLazy(context.Background(), domain.AccountStream(id), 0)
	if err != nil {
		t.Fatal(err)
	}
	a := domain.NewAccount(id)
	var out []projections.LedgerEntry
	for i := range evs {
		e, err := projections.DecodeEvent(&evs[i])
		if err != nil {
			t.Fatal(err)
		}
		a = domain.Evolve(a, e)
		if tx, ok := e.(domain.LedgerPosted); ok {
			out = append(out, projections.LedgerEntry{Position: evs[i].Position, TxID: tx.TxID, Kind: tx.Kind,
				Amount: tx.CustomerAmount(id), BalanceAfter: a.Balance, CreatedAt: tx.At, ServerID: tx.ServerID,
				From: tx.From, To: tx.To, TopupID: tx.TopupID})
		}
	}
	return out
}

func show(e projections.LedgerEntry) string {
	t := func(p *time.Time) string {
		if p == nil {
			return "-"
		}
		return p.Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("%s %s %s %s %s %s %s %s %s %s", e.Position, e.TxID, e.Kind, e.Amount, e.BalanceAfter,
		e.CreatedAt.Format(time.RFC3339Nano), e.ServerID, t(e.From), t(e.To), e.TopupID)
}

func same(t *testing.T, what string, got, want []projections.LedgerEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range got {
		if g, w := show(got[i]), show(want[i]); g != w {
			t.Fatalf("%s: entry %d\n got %s\nwant %s", what, i, g, w)
		}
	}
}

// newestFirst is the entries of want strictly before before (zero: all),
// newest first, at most limit.
func newestFirst(want []projections.LedgerEntry, before eventstore.Position, limit int) []projections.LedgerEntry {
	out := []projections.LedgerEntry{}
	for i := len(want) - 1; i >= 0 && len(out) < limit; i-- {
		if before.IsZero() || want[i].Position.Less(before) {
			out = append(out, want[i])
		}
	}
	return out
}

// longAccount writes an account with n ledger transactions, with (keys) an
// API key created between some of them, and returns its id.
func longAccount(t testing.TB, s eventstore.Store, n int, keys bool) string {
	t.Helper()
	id := uuid.NewString()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	events := []domain.Event{domain.AccountRegistered{AccountID: id, ServerLimit: 5, At: at}}
	server := uuid.NewString()
	for i := range n {
		at = at.Add(time.Hour)
		if keys && i%3 == 0 {
			events = append(events, domain.APIKeyCreated{KeyID: uuid.NewString(), Name: "k", At: at})
		}
		var tx domain.LedgerPosted
		if i%50 == 0 {
			tx = domain.LedgerPosted{TxID: uuid.NewString(), Kind: domain.TxTopup, TopupID: uuid.NewString(), At: at,
				Postings: []domain.Posting{{Account: domain.CustomerLedger(id), Amount: domain.MustMoney("25.00")},
					{Account: domain.LedgerCryptoDeposits, Amount: domain.MustMoney("-25.00")}}}
		} else {
			from, to := at.Add(-time.Hour), at
			price := domain.MustMoney(fmt.Sprintf("0.%03d", 1+i%97))
			tx = domain.LedgerPosted{TxID: uuid.NewString(), Kind: domain.TxCharge, ServerID: server, From: &from, To: &to, At: at,
				Postings: []domain.Posting{{Account: domain.CustomerLedger(id), Amount: price.Neg()},
					{Account: domain.LedgerRevenueCompute, Amount: price}}}
		}
		events = append(events, tx)
	}
	appendAll(t, s, domain.AccountStream(id), events)
	return id
}

// Paging through a long ledger, from the newest down with each page's
// last position as the next cursor, shows every transaction once, with
// the balance after it, whatever the page size; and a page reads from the
// log its own transactions and at most about one index interval more.
func TestLedgerDeepPaging(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	id := longAccount(t, s, 3*1024+37, true)
	m := project(t, s)
	want := reference(t, s, id)
	ctx := context.Background()
	// The stream holds 4 events for 3 transactions: a page of limit
	// transactions reads at most its own, the rest of its index interval,
	// and a stream page.
	bound := func(limit int) int64 { return int64(4*(limit+1024)/3 + 512) }
	page := func(limit int, before eventstore.Position) []projections.LedgerEntry {
		s.read.Store(0)
		page, err := m.Ledger(ctx, id, before, limit)
		if err != nil {
			t.Fatal(err)
		}
		if n := s.read.Load(); n > bound(limit) {
			t.Fatalf("limit %d before %s: read %d events, more than %d", limit, before, n, bound(limit))
		}
		same(t, fmt.Sprintf("limit %d before %s", limit, before), page, newestFirst(want, before, limit))
		return page
	}
	for _, limit := range []int{100, 1500, 10_000} {
		var got []projections.LedgerEntry
		for before := (eventstore.Position{}); ; {
			p := page(limit, before)
			if len(p) == 0 {
				break
			}
			got = append(got, p...)
			before = p[len(p)-1].Position
		}
		slices.Reverse(got)
		same(t, fmt.Sprintf("limit %d, every page", limit), got, want)
	}
	// Small pages, from the newest and from deep down, across index points.
	for _, limit := range []int{1, 7} {
		for _, start := range []eventstore.Position{{}, want[1030].Position, want[2060].Position} {
			before := start
			for range 25 {
				p := page(limit, before)
				if len(p) == 0 {
					break
				}
				before = p[len(p)-1].Position
			}
		}
	}
}

// A cursor at an index point, next to one, between two, on an event that
// is not a transaction, before the first transaction or past the last
// gives the transactions strictly before it.
func TestLedgerCursors(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	id := longAccount(t, s, 3*1024+5, true)
	m := project(t, s)
	want := reference(t, s, id)
	all, err := s.ReadStreamLazy(context.Background(), domain.AccountStream(id), 0)
	if err != nil {
		t.Fatal(err)
	}
	var cursors []eventstore.Position
	for _, i := range []int{0, 1, 1023, 1024, 1025, 2047, 2048, 3073, len(want) - 1} {
		p := want[i].Position
		cursors = append(cursors, p, eventstore.Position{Commit: p.Commit + 1, Prepare: p.Prepare + 1},
			eventstore.Position{Commit: p.Commit - 1, Prepare: p.Prepare - 1})
	}
	for _, ev := range all[:5] { // the registration and API keys among the first
		cursors = append(cursors, ev.Position)
	}
	last := all[len(all)-1].Position
	cursors = append(cursors, eventstore.Position{Commit: last.Commit + 1000, Prepare: last.Prepare + 1000})
	for _, before := range cursors {
		for _, limit := range []int{2, 1030} {
			got, err := m.Ledger(context.Background(), id, before, limit)
			if err != nil {
				t.Fatal(err)
			}
			same(t, fmt.Sprintf("before %s limit %d", before, limit), got, newestFirst(want, before, limit))
		}
	}
}

// Transactions the log holds whatever their shape (ids that are not UUIDs,
// a kind the model does not know, times far off) read back as they were
// written, with their balance.
func TestLedgerOddTransactions(t *testing.T) {
	s := openStore(t)
	id := "not-a-uuid-account"
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)
	far := time.Date(2999, 12, 31, 23, 59, 59, 1, time.UTC)
	old := time.Date(1066, 10, 14, 9, 0, 0, 0, time.UTC)
	appendAll(t, s, domain.AccountStream(id), []domain.Event{
		domain.AccountRegistered{AccountID: id, ServerLimit: 1, At: at},
		domain.LedgerPosted{TxID: "tx-1", Kind: domain.TxSignupCredit, At: at,
			Postings: []domain.Posting{{Account: domain.CustomerLedger(id), Amount: domain.MustMoney("10")},
				{Account: domain.LedgerPromoSignup, Amount: domain.MustMoney("-10")}}},
		domain.LedgerPosted{TxID: "bonus 2", Kind: "bonus", ServerID: "srv one", TopupID: "t/1", From: &old, To: &far, At: far,
			Postings: []domain.Posting{{Account: domain.CustomerLedger(id), Amount: domain.MustMoney("1.5000")},
				{Account: domain.LedgerPromoSignup, Amount: domain.MustMoney("-1.5000")}}},
		domain.LedgerPosted{TxID: "tx-3", Kind: domain.TxCharge, At: at,
			Postings: []domain.Posting{{Account: domain.LedgerRevenueCompute, Amount: domain.MustMoney("0.25")},
				{Account: domain.CustomerLedger(id), Amount: domain.MustMoney("-0.25")}}},
	})
	m := project(t, s)
	want := reference(t, s, id)
	got, err := m.Ledger(context.Background(), id, eventstore.Position{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	same(t, "odd", got, newestFirst(want, eventstore.Position{}, 10))
	if got[0].BalanceAfter.String() != "11.2500" || got[1].TxID != "bonus 2" || got[1].Kind != "bonus" || !got[1].To.Equal(far) {
		t.Fatalf("odd ledger: %s / %s", show(got[0]), show(got[1]))
	}
}

// An account without a ledger transaction has an empty ledger; an
// unknown account has none. Transactions the model has not folded yet
// are not shown.
func TestLedgerEmptyUnknownAndUnfolded(t *testing.T) {
	s := openStore(t)
	id := uuid.NewString()
	at := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	appendAll(t, s, domain.AccountStream(id), []domain.Event{domain.AccountRegistered{AccountID: id, ServerLimit: 1, At: at},
		domain.APIKeyCreated{KeyID: "k", Name: "k", At: at}})
	m := project(t, s)
	got, err := m.Ledger(context.Background(), id, eventstore.Position{}, 10)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("no ledger: %v %v", got, err)
	}
	if _, err := m.Ledger(context.Background(), uuid.NewString(), eventstore.Position{}, 10); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}
	appendAll(t, s, domain.AccountStream(id), []domain.Event{domain.LedgerPosted{TxID: "late", Kind: domain.TxTopup, At: at,
		Postings: []domain.Posting{{Account: domain.CustomerLedger(id), Amount: domain.MustMoney("5")},
			{Account: domain.LedgerCryptoDeposits, Amount: domain.MustMoney("-5")}}}})
	if got, err := m.Ledger(context.Background(), id, eventstore.Position{}, 10); err != nil || len(got) != 0 {
		t.Fatalf("a transaction the model has not folded: %v %v", got, err)
	}
	if err := projections.NewProjector(s, m, nil).CatchUp(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := m.Ledger(context.Background(), id, eventstore.Position{}, 10); err != nil || len(got) != 1 || got[0].BalanceAfter.String() != "5" {
		t.Fatalf("once folded: %v %v", got, err)
	}
}
