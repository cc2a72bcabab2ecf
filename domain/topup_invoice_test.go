package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

// A top-up paid through an invoice: requested, invoiced, then moved by what
// the processor reports, under the money rules of DecideTopup.

func invoice(ref, topup, amount string, st domain.InvoiceStatus, ex domain.InvoiceException, paid string) domain.Invoice {
	return domain.Invoice{Ref: ref, TopupID: topup, AccountID: accountID, Amount: money(amount), Currency: "USD",
		Paid: money(paid), Status: st, Exception: ex, ExpiresAt: at(15 * time.Minute),
		Methods: []domain.PaymentMethod{{ID: "BTC-CHAIN", Currency: "BTC", Destination: "tb1qexample", Amount: "0.00025", Rate: money("100000")}}}
}

// opened is an account with top-up t1 of amount, invoiced as inv-1.
func opened(t *testing.T, amount string) *spec {
	t.Helper()
	s := registered(t, "0")
	s.then(domain.RequestTopup{TopupID: "t1", Amount: money(amount), Method: "BTC-CHAIN", Idem: idem("k", "h", t0)}, t0)
	s.then(domain.RecordInvoice{TopupID: "t1", Invoice: invoice("inv-1", "t1", amount, domain.InvoiceNew, domain.ExceptionNone, "0")}, t0)
	wantEqual(t, "status", s.state().Topups["t1"].Status, domain.TopupStatusPending)
	return s
}

func TestSettledInvoiceCreditsOnceWithATransactionNamedByTheInvoice(t *testing.T) {
	t.Parallel()
	s := opened(t, "25.00")
	settled := invoice("inv-1", "t1", "25.00", domain.InvoiceSettled, domain.ExceptionNone, "25.00")
	events := s.then(domain.ApplyInvoice{TopupID: "t1", Invoice: settled}, at(time.Minute))
	wantTypes(t, events, "TopupPaid", "LedgerPosted")
	tx := as[domain.LedgerPosted](t, events[1])
	wantEqual(t, "tx id", tx.TxID, domain.TopupTxID("inv-1"))
	wantEqual(t, "invoice id", tx.InvoiceID, "inv-1")
	wantEqual(t, "topup id", tx.TopupID, "t1")
	wantMoney(t, "balance", s.state().Balance, "25.00")
	// Again, and after every other report: nothing more.
	for _, st := range []domain.InvoiceStatus{domain.InvoiceSettled, domain.InvoiceExpired, domain.InvoiceInvalid, domain.InvoiceNew} {
		if ev := s.then(domain.ApplyInvoice{TopupID: "t1", Invoice: invoice("inv-1", "t1", "25.00", st, domain.ExceptionNone, "25.00")}, at(2*time.Minute)); len(ev) != 0 {
			t.Errorf("%s after the credit: %v", st, ev)
		}
	}
	wantMoney(t, "balance", s.state().Balance, "25.00")
}

func TestInvoiceStatesMoveTheTopupForwardOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		st     domain.InvoiceStatus
		ex     domain.InvoiceException
		paid   string
		status string
		review bool
	}{
		{"new", domain.InvoiceNew, domain.ExceptionNone, "0", domain.TopupStatusPending, false},
		{"new, partly paid", domain.InvoiceNew, domain.ExceptionPaidPartial, "5.00", domain.TopupStatusPending, false},
		{"processing", domain.InvoiceProcessing, domain.ExceptionNone, "25.00", domain.TopupStatusProcessing, false},
		{"expired", domain.InvoiceExpired, domain.ExceptionNone, "0", domain.TopupStatusExpired, false},
		{"expired partly paid", domain.InvoiceExpired, domain.ExceptionPaidPartial, "5.00", domain.TopupStatusExpired, true},
		{"paid late", domain.InvoiceExpired, domain.ExceptionPaidLate, "25.00", domain.TopupStatusExpired, true},
		{"invalid", domain.InvoiceInvalid, domain.ExceptionNone, "0", domain.TopupStatusInvalid, false},
		{"invalid after a payment", domain.InvoiceInvalid, domain.ExceptionMarked, "25.00", domain.TopupStatusInvalid, true},
		{"marked settled", domain.InvoiceSettled, domain.ExceptionMarked, "0", domain.TopupStatusReview, true},
		{"overpaid", domain.InvoiceSettled, domain.ExceptionPaidOver, "30.00", domain.TopupStatusPaid, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := opened(t, "25.00")
			s.then(domain.ApplyInvoice{TopupID: "t1", Invoice: invoice("inv-1", "t1", "25.00", tc.st, tc.ex, tc.paid)}, at(time.Minute))
			tp := s.state().Topups["t1"]
			wantEqual(t, "status", tp.Status, tc.status)
			wantEqual(t, "needs review", tp.NeedsReview(), tc.review)
			credited := "0"
			if tc.status == domain.TopupStatusPaid {
				credited = "25.00" // the invoice amount, never what was paid
			}
			wantMoney(t, "balance", s.state().Balance, credited)
			// A processor that forgot (New again) moves nothing back.
			if ev := s.then(domain.ApplyInvoice{TopupID: "t1", Invoice: invoice("inv-1", "t1", "25.00", domain.InvoiceNew, domain.ExceptionNone, "0")}, at(2*time.Minute)); len(ev) != 0 && tc.status != domain.TopupStatusPending {
				t.Errorf("New after %s: %v", tc.status, ev)
			}
		})
	}
}

func TestASettledInvoiceForAnotherAmountOrTopupIsHeld(t *testing.T) {
	t.Parallel()
	s := opened(t, "25.00")
	s.then(domain.ApplyInvoice{TopupID: "t1", Invoice: invoice("inv-1", "t1", "2500.00", domain.InvoiceSettled, domain.ExceptionNone, "2500.00")}, at(time.Minute))
	wantEqual(t, "status", s.state().Topups["t1"].Status, domain.TopupStatusReview)
	wantMoney(t, "balance", s.state().Balance, "0")
	// An invoice that is not the top-up's is refused outright.
	wantErr(t, s.rejects(domain.ApplyInvoice{TopupID: "t1", Invoice: invoice("inv-2", "t1", "25.00", domain.InvoiceSettled, domain.ExceptionNone, "25.00")}, at(time.Minute)), domain.ErrInvalid)
}

func TestOperatorCreditsAHeldTopupOnceAndNamesThemselves(t *testing.T) {
	t.Parallel()
	s := opened(t, "25.00")
	wantErr(t, s.rejects(domain.CreditTopup{TopupID: "t1", Reason: "r", Actor: "operator"}, t0), domain.ErrInvalidState)
	s.then(domain.ApplyInvoice{TopupID: "t1", Invoice: invoice("inv-1", "t1", "25.00", domain.InvoiceSettled, domain.ExceptionMarked, "0")}, at(time.Minute))
	wantErr(t, s.rejects(domain.CreditTopup{TopupID: "t1", Actor: "operator"}, at(time.Minute)), domain.ErrInvalid)
	events := s.then(domain.CreditTopup{TopupID: "t1", Reason: "wallet checked", Actor: "operator"}, at(time.Hour))
	wantTypes(t, events, "TopupPaid", "LedgerPosted")
	paid := as[domain.TopupPaid](t, events[0])
	wantEqual(t, "actor", paid.Actor, "operator")
	wantEqual(t, "reason", paid.Reason, "wallet checked")
	wantEqual(t, "tx id", as[domain.LedgerPosted](t, events[1]).TxID, domain.TopupTxID("inv-1"))
	wantMoney(t, "balance", s.state().Balance, "25.00")
	wantEqual(t, "needs review", s.state().Topups["t1"].NeedsReview(), false)
	wantErr(t, s.rejects(domain.CreditTopup{TopupID: "t1", Reason: "again", Actor: "operator"}, at(time.Hour)), domain.ErrInvalidState)
	// And a settlement seen afterwards credits nothing more.
	if ev := s.then(domain.ApplyInvoice{TopupID: "t1", Invoice: invoice("inv-1", "t1", "25.00", domain.InvoiceSettled, domain.ExceptionNone, "25.00")}, at(2*time.Hour)); len(ev) != 0 {
		t.Errorf("settled after the operator's credit: %v", ev)
	}
}

func TestTopupIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := opened(t, "25.00")
	var replay *domain.ReplayError
	_, err := s.when(domain.RequestTopup{TopupID: "t2", Amount: money("25.00"), Idem: idem("k", "h", at(time.Hour))}, at(time.Hour))
	if !errors.As(err, &replay) || replay.Ref != "t1" {
		t.Fatalf("same key and request: %v, want a replay of t1", err)
	}
	wantErr(t, s.rejects(domain.RequestTopup{TopupID: "t2", Amount: money("25.00"), Idem: idem("k", "other", at(time.Hour))}, at(time.Hour)),
		domain.ErrIdempotencyMismatch)
	// After the window the key is free again.
	s.then(domain.RequestTopup{TopupID: "t2", Amount: money("25.00"), Idem: idem("k", "other", at(domain.IdempotencyWindow+time.Hour))}, at(domain.IdempotencyWindow+time.Hour))
}

func TestACreditResumesASuspendedServer(t *testing.T) {
	t.Parallel()
	s := registered(t, "0.02")
	s.then(domain.Deploy{Servers: []domain.ServerSpec{serverSpec("a", micro)}}, t0)
	s.then(domain.Settle{}, at(time.Hour))
	wantEqual(t, "status", s.server("a").Status, domain.StatusSuspended)
	s.then(domain.RequestTopup{TopupID: "t1", Amount: money("5.00")}, at(90*time.Minute))
	s.then(domain.RecordInvoice{TopupID: "t1", Invoice: invoice("inv-1", "t1", "5.00", domain.InvoiceNew, domain.ExceptionNone, "0")}, at(90*time.Minute))
	events := s.then(domain.ApplyInvoice{TopupID: "t1", Invoice: invoice("inv-1", "t1", "5.00", domain.InvoiceSettled, domain.ExceptionNone, "5.00")}, at(100*time.Minute))
	wantTypes(t, events, "TopupPaid", "LedgerPosted", "ServerResumed", "LedgerPosted")
	if st := s.server("a").Status; st == domain.StatusSuspended {
		t.Errorf("still %s after a credit that covers its hour", st)
	}
}

func TestTheFirstSandboxTopupsKeepTheirCredit(t *testing.T) {
	t.Parallel()
	s := registered(t, "0")
	s.then(topup("old", "10.00"), t0)
	events := s.then(domain.PayTopup{TopupID: "old"}, at(time.Minute))
	if tx := as[domain.LedgerPosted](t, events[1]); tx.InvoiceID != "" || tx.TxID == domain.TopupTxID("np-old") {
		t.Errorf("a first-sandbox top-up's credit changed: %+v", tx)
	}
	s2 := opened(t, "10.00")
	wantErr(t, s2.rejects(domain.PayTopup{TopupID: "t1"}, at(time.Minute)), domain.ErrInvalidState)
}
