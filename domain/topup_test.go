package domain_test

import (
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

func topup(id, amount string) domain.CreateTopup {
	return domain.CreateTopup{TopupID: id, Amount: money(amount), Currency: "BTC", PayAddress: "bc1qexample", ProviderRef: "np-" + id}
}

func TestCreateTopupAcceptsDollarsAndCentsBetweenOneAndTenThousand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		amount string
		ok     bool
	}{
		{"1.00", true},
		{"1", true},
		{"25.5", true},
		{"99.99", true},
		{"10000.00", true},
		{"10000", true},
		{"0.99", false},
		{"0", false},
		{"-5.00", false},
		{"10000.01", false},
		{"20000", false},
		{"5.001", false},
		{"1.000", false}, // three decimals, even if the third is zero
	} {
		t.Run(tc.amount, func(t *testing.T) {
			t.Parallel()
			s := registered(t, "0")
			_, err := s.when(topup("t1", tc.amount), t0)
			if tc.ok && err != nil {
				t.Fatalf("CreateTopup(%s): %v", tc.amount, err)
			}
			if !tc.ok {
				wantErr(t, err, domain.ErrInvalid)
			}
			wantEqual(t, "CheckTopup", domain.NewAccount("a").CheckTopup(money(tc.amount), "BTC") == nil, tc.ok)
		})
	}
}

func TestCreateTopupRecordsAPendingInvoice(t *testing.T) {
	t.Parallel()
	s := registered(t, "0")
	events := s.then(topup("t1", "25.00"), t0)
	wantTypes(t, events, "TopupCreated")
	c := as[domain.TopupCreated](t, events[0])
	wantEqual(t, "id", c.TopupID, "t1")
	wantMoney(t, "amount", c.Amount, "25.00")
	wantEqual(t, "currency", c.Currency, "BTC")
	wantEqual(t, "address", c.PayAddress, "bc1qexample")
	wantEqual(t, "provider ref", c.ProviderRef, "np-t1")
	wantTime(t, "at", c.At, t0)

	tp := s.state().Topups["t1"]
	wantEqual(t, "status", tp.Status, domain.TopupStatusPending)
	wantMoney(t, "balance", s.state().Balance, "0")
	wantEqual(t, "order", len(s.state().TopupOrder), 1)
}

func TestCreateTopupRejectsAnEmptyOrReusedID(t *testing.T) {
	t.Parallel()
	s := registered(t, "0")
	s.then(topup("t1", "25.00"), t0)
	wantErr(t, s.rejects(topup("t1", "30.00"), at(time.Minute)), domain.ErrInvalid)
	wantErr(t, s.rejects(topup("", "30.00"), at(time.Minute)), domain.ErrInvalid)
}

func TestPayTopupCreditsTheCustomerFromCryptoDeposits(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	s.then(topup("t1", "25.00"), t0)
	now := at(20 * time.Minute)
	events := s.then(domain.PayTopup{TopupID: "t1"}, now)
	wantTypes(t, events, "TopupPaid", "LedgerPosted")
	paid := as[domain.TopupPaid](t, events[0])
	wantEqual(t, "id", paid.TopupID, "t1")
	wantTime(t, "at", paid.At, now)

	tx := as[domain.LedgerPosted](t, events[1])
	wantEqual(t, "kind", tx.Kind, domain.TxTopup)
	wantEqual(t, "topup", tx.TopupID, "t1")
	wantEqual(t, "postings", len(tx.Postings), 2)
	wantMoney(t, "customer", tx.AmountFor(domain.CustomerLedger(accountID)), "25.00")
	wantMoney(t, "crypto:deposits", tx.AmountFor(domain.LedgerCryptoDeposits), "-25.00")
	wantTime(t, "at", tx.At, now)

	wantMoney(t, "balance", s.state().Balance, "30.00")
	tp := s.state().Topups["t1"]
	wantEqual(t, "status", tp.Status, domain.TopupStatusPaid)
	wantTime(t, "paid at", tp.PaidAt, now)
}

func TestPayingATopupTwiceIsAStateError(t *testing.T) {
	t.Parallel()
	s := registered(t, "0")
	s.then(topup("t1", "25.00"), t0)
	s.then(domain.PayTopup{TopupID: "t1"}, at(time.Minute))
	err := s.rejects(domain.PayTopup{TopupID: "t1"}, at(2*time.Minute))
	wantStateError(t, err)
	wantContains(t, err.Error(), "is "+domain.TopupStatusPaid)
	wantMoney(t, "balance", s.state().Balance, "25.00")
}

func TestPayingAnUnknownTopupIsNotFound(t *testing.T) {
	t.Parallel()
	s := registered(t, "0")
	wantErr(t, s.rejects(domain.PayTopup{TopupID: "t-unknown"}, t0), domain.ErrNotFound)
}

func TestPaymentIsCreditedEvenWhileTheAccountIsOnHold(t *testing.T) {
	t.Parallel()
	s := registered(t, "0")
	s.then(topup("t1", "25.00"), t0)
	s.then(domain.Suspend{Reason: "abuse", Actor: "ops"}, at(time.Minute))
	s.then(domain.PayTopup{TopupID: "t1"}, at(2*time.Minute))
	wantMoney(t, "balance", s.state().Balance, "25.00")
}

func TestPayTopupSettlesDueHoursBeforeCrediting(t *testing.T) {
	t.Parallel()
	// 0.028 pays the first hour and the one at 1h; at 2h the server is
	// suspended, and a payment at 4h10 resumes it with the hour at 4h.
	s := registered(t, "0.028")
	s.then(deploy("a"), t0)
	s.then(topup("t1", "1.00"), at(time.Minute))
	events := s.then(domain.PayTopup{TopupID: "t1"}, at(4*hour+10*time.Minute))
	wantTypes(t, events, "LedgerPosted", "ServerSuspended", "TopupPaid", "LedgerPosted", "ServerResumed", "LedgerPosted")
	wantCharge(t, events[0], "a", at(hour), "0.014")
	wantTime(t, "suspended at", as[domain.ServerSuspended](t, events[1]).At, at(2*hour))
	wantCharge(t, events[5], "a", at(4*hour), "0.014")
	wantMoney(t, "balance", s.state().Balance, "0.986")
}
