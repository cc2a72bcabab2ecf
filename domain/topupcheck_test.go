package domain_test

import (
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

func audit(events []domain.Event) []string {
	c := domain.NewTopupCredits()
	var bad []string
	for _, e := range events {
		bad = append(bad, c.Observe(accountID, e)...)
	}
	return bad
}

func TestTopupCreditsCheckPassesWhatTheDeciderDoes(t *testing.T) {
	t.Parallel()
	s := opened(t, "25.00")
	s.then(domain.ApplyInvoice{TopupID: "t1", Invoice: invoice("inv-1", "t1", "25.00", domain.InvoiceSettled, domain.ExceptionPaidOver, "30.00")}, at(time.Minute))
	s.then(domain.RequestTopup{TopupID: "t2", Amount: money("10.00")}, at(time.Hour))
	s.then(domain.RecordInvoice{TopupID: "t2", Invoice: invoice("inv-2", "t2", "10.00", domain.InvoiceNew, domain.ExceptionNone, "0")}, at(time.Hour))
	s.then(domain.ApplyInvoice{TopupID: "t2", Invoice: invoice("inv-2", "t2", "10.00", domain.InvoiceExpired, domain.ExceptionPaidPartial, "4.00")}, at(2*time.Hour))
	s.then(domain.CreditTopup{TopupID: "t2", Amount: money("4.00"), Reason: "what was paid", Actor: "operator"}, at(3*time.Hour))
	s.then(topup("old", "5.00"), at(4*time.Hour))
	s.then(domain.PayTopup{TopupID: "old"}, at(4*time.Hour))
	if bad := audit(s.history); len(bad) != 0 {
		t.Errorf("violations in a clean history: %v", bad)
	}
}

func TestTopupCreditsCheckCatchesADoubleOrWrongCredit(t *testing.T) {
	t.Parallel()
	s := opened(t, "25.00")
	events := s.then(domain.ApplyInvoice{TopupID: "t1", Invoice: invoice("inv-1", "t1", "25.00", domain.InvoiceSettled, domain.ExceptionNone, "25.00")}, at(time.Minute))
	tx := as[domain.LedgerPosted](t, events[1])
	doubled := append(append([]domain.Event{}, s.history...), tx)
	if bad := audit(doubled); len(bad) < 2 {
		t.Errorf("a credit repeated: %v, want the invoice and the top-up credited twice", bad)
	}
	wrong := tx
	wrong.Postings = []domain.Posting{{Account: domain.CustomerLedger(accountID), Amount: money("250.00")},
		{Account: domain.LedgerCryptoDeposits, Amount: money("-250.00")}}
	history := append(append([]domain.Event{}, s.history[:len(s.history)-1]...), wrong)
	if bad := audit(history); len(bad) != 1 {
		t.Errorf("a credit of another amount: %v", bad)
	}
}
