package memory

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// A ledger transaction reads back exactly as it was kept, compacted or
// (when it does not compact) whole.
func TestLedgerRowsReadBackAsKept(t *testing.T) {
	from := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	to := from.Add(time.Hour)
	charge := projections.LedgerEntry{Position: eventstore.Position{Commit: 7, Prepare: 7}, TxID: uuid.NewString(),
		Kind: domain.TxCharge, Amount: domain.MustMoney("-0.014"), BalanceAfter: domain.MustMoney("9.972"),
		CreatedAt: from, ServerID: uuid.NewString(), From: &from, To: &to}
	topup := projections.LedgerEntry{Position: eventstore.Position{Commit: 9, Prepare: 8}, TxID: uuid.NewString(),
		Kind: domain.TxTopup, Amount: domain.MustMoney("25.00"), BalanceAfter: domain.MustMoney("34.972"),
		CreatedAt: to.Add(time.Nanosecond), TopupID: uuid.NewString()}
	odd := projections.LedgerEntry{Position: eventstore.Position{Commit: 11, Prepare: 11}, TxID: "not-a-uuid",
		Kind: "bonus", Amount: domain.MustMoney("1"), BalanceAfter: domain.MustMoney("35.972"), CreatedAt: to}
	m := New()
	id := uuid.NewString()
	m.accounts[id] = &domain.Account{ID: id, Registered: true}
	for _, e := range []projections.LedgerEntry{charge, topup, odd} {
		m.addLedger(id, e)
	}
	if r := m.ledger[id]; r[0].flags&isOdd != 0 || r[1].flags&isOdd != 0 || r[2].flags&isOdd == 0 {
		t.Fatalf("compacted: %v %v %v", r[0].flags, r[1].flags, r[2].flags)
	}
	got, err := m.Ledger(t.Context(), id, eventstore.Position{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if want := []projections.LedgerEntry{odd, topup, charge}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ledger read back\n got %+v\nwant %+v", got, want)
	}
	got, err = m.Ledger(t.Context(), id, topup.Position, 1)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], charge) {
		t.Fatalf("the page before the top-up: %+v %v", got, err)
	}
}
