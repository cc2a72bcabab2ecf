package domain_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

// owner is the customer forgetting their own account.
func owner(forfeit bool) domain.Forget {
	return domain.Forget{Actor: "account:" + accountID, ForfeitBalance: forfeit}
}

func TestRegisterKeepsOnlyTheSealedEmail(t *testing.T) {
	t.Parallel()
	s := newSpec(t)
	events := s.then(register("5.00"), t0)
	b, err := json.Marshal(events[0])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"email"`) {
		t.Fatalf("AccountRegistered holds a plain email field: %s", b)
	}
	wantEqual(t, "state", s.state().Email, domain.StoredEmail{Sealed: sealedAnn})
}

func TestAnOldRegistrationFoldsToAPlainEmailAndSealEmailMovesItToTheSealedForm(t *testing.T) {
	t.Parallel()
	// Written before emails were sealed: plain email in the event.
	s := newSpec(t, domain.AccountRegistered{AccountID: accountID, Email: "ann@example.com", PasswordHash: "h", ServerLimit: 10, At: t0})
	wantEqual(t, "state", s.state().Email, domain.StoredEmail{Plain: "ann@example.com"})

	events := s.then(domain.SealEmail{Sealed: sealedAnn}, at(time.Hour))
	wantTypes(t, events, "AccountEmailSealed")
	wantEqual(t, "sealed", as[domain.AccountEmailSealed](t, events[0]).SealedEmail, sealedAnn)
	wantEqual(t, "state", s.state().Email, domain.StoredEmail{Sealed: sealedAnn})

	// Once sealed there is nothing more to do: running it again (another
	// process starting at the same time) records nothing.
	wantNoEvents(t, s.then(domain.SealEmail{Sealed: "v1:other"}, at(2*time.Hour)))
	wantEqual(t, "state", s.state().Email, domain.StoredEmail{Sealed: sealedAnn})
}

func TestSealEmailWithoutASealedFormIsInvalid(t *testing.T) {
	t.Parallel()
	s := newSpec(t, domain.AccountRegistered{AccountID: accountID, Email: "ann@example.com", PasswordHash: "h", ServerLimit: 10, At: t0})
	wantErr(t, s.rejects(domain.SealEmail{}, t0), domain.ErrInvalid)
}

func TestForgetAnEmptyAccountRecordsAccountForgottenWithoutPersonalData(t *testing.T) {
	t.Parallel()
	s := registered(t, "0")
	events := s.then(owner(false), t0)
	wantTypes(t, events, "AccountForgotten")
	f := as[domain.AccountForgotten](t, events[0])
	wantEqual(t, "actor", f.Actor, "account:"+accountID)
	wantMoney(t, "forfeited", f.Forfeited, "0")
	wantTime(t, "at", f.At, t0)

	a := s.state()
	wantEqual(t, "forgotten", a.Forgotten, true)
	wantEqual(t, "email", a.Email, domain.StoredEmail{})
	wantEqual(t, "legacy password hash", a.LegacyPasswordHash, "")
	wantEqual(t, "credential ref", a.CredentialRef, "")
	wantEqual(t, "still registered", a.Registered, true)
}

func TestForgetRefusesAPositiveBalanceUnlessItIsForfeited(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	err := s.rejects(owner(false), t0)
	wantErr(t, err, domain.ErrAccountHasBalance)
	wantContains(t, err.Error(), "5.00")
	wantContains(t, err.Error(), "forfeitBalance=true")
	wantEqual(t, "not forgotten", s.state().Forgotten, false)

	events := s.then(owner(true), at(time.Minute))
	wantTypes(t, events, "LedgerPosted", "AccountForgotten")
	tx := as[domain.LedgerPosted](t, events[0])
	wantEqual(t, "kind", tx.Kind, domain.TxForfeit)
	wantMoney(t, "customer", tx.AmountFor(domain.CustomerLedger(accountID)), "-5.00")
	wantMoney(t, "forfeited account", tx.AmountFor(domain.LedgerRevenueForfeited), "5.00")
	wantMoney(t, "recorded forfeit", as[domain.AccountForgotten](t, events[1]).Forfeited, "5.00")
	wantMoney(t, "balance", s.state().Balance, "0")
}

func TestForgetWithNothingToForfeitNeedsNoForfeit(t *testing.T) {
	t.Parallel()
	s := registered(t, "0")
	// Asking to forfeit a zero balance moves no money.
	wantTypes(t, s.then(owner(true), t0), "AccountForgotten")
}

func TestForgetRefusesLiveServersAndTakesDestroyingOnes(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	s.then(deploy("a"), t0)
	s.then(domain.Activate{ServerID: "a", IPv4: "192.0.2.1"}, at(time.Minute))
	err := s.rejects(owner(true), at(2*time.Minute))
	wantErr(t, err, domain.ErrAccountHasServers)
	wantContains(t, err.Error(), "1 server(s)")

	s.then(domain.Destroy{ServerID: "a"}, at(3*time.Minute))
	// DESTROYING holds no slot and is not billed: the account can go, and
	// the background work still completes the destroy afterwards.
	s.then(owner(true), at(4*time.Minute))
	wantTypes(t, s.then(domain.CompleteDestroy{ServerID: "a"}, at(5*time.Minute)), "ServerDestroyed")
	wantNoEvents(t, s.then(domain.Settle{}, at(5*time.Hour)))
}

func TestForgetRefusesSuspendedServers(t *testing.T) {
	t.Parallel()
	s := registered(t, "0.014")
	s.then(deploy("a"), t0)
	s.then(domain.Settle{}, at(time.Hour)) // the next hour cannot be paid
	wantEqual(t, "status", s.server("a").Status, domain.StatusSuspended)
	wantErr(t, s.rejects(owner(true), at(time.Hour)), domain.ErrAccountHasServers)
}

func TestTheOwnerCannotForgetAnAccountOnHoldButAnOperatorCan(t *testing.T) {
	t.Parallel()
	s := registered(t, "0")
	s.then(domain.Suspend{Reason: "abuse", Actor: "operator"}, t0)
	wantErr(t, s.rejects(owner(false), at(time.Minute)), domain.ErrAccountSuspended)
	events := s.then(domain.Forget{Actor: "operator", Operator: true}, at(2*time.Minute))
	wantTypes(t, events, "AccountForgotten")
	wantEqual(t, "actor", as[domain.AccountForgotten](t, events[0]).Actor, "operator")
}

func TestAForgottenAccountTakesOnlyWhatFinishesWorkInFlight(t *testing.T) {
	t.Parallel()
	s := registered(t, "0")
	s.then(owner(false), t0)
	for _, cmd := range []domain.Command{
		deploy("a"), domain.Destroy{ServerID: "a"}, topup("t1", "5.00"), domain.PayTopup{TopupID: "t1"},
		domain.RequestTopup{TopupID: "t2", Amount: money("5.00")},
		domain.Suspend{Reason: "x", Actor: "operator"}, domain.Unsuspend{Reason: "x", Actor: "operator"},
		domain.SetLimit{Limit: 3, Actor: "operator"}, domain.SealEmail{Sealed: "v1:x"},
		domain.RequestLimit{RequestID: "r", ServerLimit: 20, Reason: "x"},
		domain.Forget{Actor: "operator", Operator: true, ForfeitBalance: true},
	} {
		wantErr(t, s.rejects(cmd, at(time.Hour)), domain.ErrAccountForgotten)
	}
	// The same account id cannot be registered again (its email can, as a
	// new account).
	wantErr(t, s.rejects(register("5.00"), at(time.Hour)), domain.ErrEmailTaken)
	wantNoEvents(t, s.then(domain.Settle{}, at(2*time.Hour)))
}

func TestALatePaymentIsStillCreditedToAForgottenAccount(t *testing.T) {
	t.Parallel()
	s := opened(t, "5.00")
	s.then(domain.Forget{Actor: "operator", Operator: true}, at(time.Minute))
	settled := invoice("inv-1", "t1", "5.00", domain.InvoiceSettled, domain.ExceptionNone, "5.00")
	wantTypes(t, s.then(domain.ApplyInvoice{TopupID: "t1", Invoice: settled}, at(2*time.Minute)), "TopupPaid", "LedgerPosted")
	wantMoney(t, "balance", s.state().Balance, "5.00")
}
