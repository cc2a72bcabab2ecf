package domain_test

import (
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

func TestRegisterPostsTheSignupCreditFromThePromoAccount(t *testing.T) {
	t.Parallel()
	s := newSpec(t)
	events := s.then(register("5.00"), t0)
	wantTypes(t, events, "AccountRegistered", "LedgerPosted")

	reg := as[domain.AccountRegistered](t, events[0])
	wantEqual(t, "account", reg.AccountID, accountID)
	wantEqual(t, "sealed email", reg.SealedEmail, sealedAnn)
	wantEqual(t, "no plain email", reg.Email, "")
	wantEqual(t, "password hash (never in the log)", reg.PasswordHash, "")
	wantEqual(t, "credential ref", reg.CredentialRef, "ref-ann")
	wantEqual(t, "limit", reg.ServerLimit, defaultServerLimit)
	wantTime(t, "at", reg.At, t0)

	tx := as[domain.LedgerPosted](t, events[1])
	wantEqual(t, "kind", tx.Kind, domain.TxSignupCredit)
	wantEqual(t, "postings", len(tx.Postings), 2)
	wantMoney(t, "customer", tx.AmountFor(domain.CustomerLedger(accountID)), "5.00")
	wantMoney(t, "promo:signup", tx.AmountFor(domain.LedgerPromoSignup), "-5.00")
	wantEqual(t, "first transaction's PrevHash", tx.PrevHash, "")
	wantTime(t, "at", tx.At, t0)

	a := s.state()
	wantEqual(t, "registered", a.Registered, true)
	wantEqual(t, "limit", a.ServerLimit, defaultServerLimit)
	wantMoney(t, "balance", a.Balance, "5.00")
	wantEqual(t, "LastHash", a.LastHash, tx.Hash)
}

func TestRegisterWithoutSignupCreditPostsNothing(t *testing.T) {
	t.Parallel()
	s := newSpec(t)
	events := s.then(register("0"), t0)
	wantTypes(t, events, "AccountRegistered")
	wantMoney(t, "balance", s.state().Balance, "0")
}

func TestRegisteringAnAccountTwiceIsEmailTaken(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	wantErr(t, s.rejects(register("5.00"), t0), domain.ErrEmailTaken)
}

func TestRegisterRejectsIncompleteRegistrationsAndNegativeCredit(t *testing.T) {
	t.Parallel()
	for name, mutate := range map[string]func(*domain.Register){
		"no account id":   func(r *domain.Register) { r.AccountID = "" },
		"no email":        func(r *domain.Register) { r.SealedEmail = "" },
		"negative credit": func(r *domain.Register) { r.SignupCredit = money("-1.00") },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := register("5.00")
			mutate(&cmd)
			wantErr(t, newSpec(t).rejects(cmd, t0), domain.ErrInvalid)
		})
	}
}

func TestEveryCommandOnAnUnregisteredAccountIsNotFound(t *testing.T) {
	t.Parallel()
	for _, cmd := range []domain.Command{
		deploy("a"), domain.Destroy{ServerID: "a"}, domain.Settle{},
		domain.StartProvision{ServerID: "a"}, domain.RecordInstance{ServerID: "a", InstanceID: "i"},
		domain.Activate{ServerID: "a", IPv4: "192.0.2.1"}, domain.FailDeploy{ServerID: "a"},
		domain.CompleteDestroy{ServerID: "a"},
		domain.CreateTopup{TopupID: "t", Amount: money("5")}, domain.PayTopup{TopupID: "t"},
		domain.Suspend{}, domain.Unsuspend{}, domain.SetLimit{Limit: 3},
	} {
		_, err := domain.Decide(given(), cmd, t0)
		if err == nil {
			t.Errorf("%T on an unregistered account succeeded", cmd)
			continue
		}
		wantErr(t, err, domain.ErrNotFound)
	}
}

func TestSuspendPutsTheAccountOnHoldAndUnsuspendLiftsIt(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")

	events := s.then(domain.Suspend{Reason: "abuse report #7", Actor: "ops@cryptovps"}, t0)
	wantTypes(t, events, "AccountSuspended")
	sus := as[domain.AccountSuspended](t, events[0])
	wantEqual(t, "reason", sus.Reason, "abuse report #7")
	wantEqual(t, "actor", sus.Actor, "ops@cryptovps")
	wantTime(t, "at", sus.At, t0)
	wantEqual(t, "suspended", s.state().Suspended, true)
	wantEqual(t, "reason", s.state().SuspendReason, "abuse report #7")

	events = s.then(domain.Unsuspend{Reason: "resolved", Actor: "ops@cryptovps"}, at(time.Hour))
	wantTypes(t, events, "AccountUnsuspended")
	un := as[domain.AccountUnsuspended](t, events[0])
	wantEqual(t, "reason", un.Reason, "resolved")
	wantEqual(t, "actor", un.Actor, "ops@cryptovps")
	wantTime(t, "at", un.At, at(time.Hour))
	wantEqual(t, "suspended", s.state().Suspended, false)
	wantEqual(t, "reason", s.state().SuspendReason, "")
}

func TestSuspendingTwiceOrUnsuspendingAnActiveAccountIsAStateError(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	wantStateError(t, s.rejects(domain.Unsuspend{Reason: "?", Actor: "ops"}, t0))
	s.then(domain.Suspend{Reason: "abuse", Actor: "ops"}, t0)
	wantStateError(t, s.rejects(domain.Suspend{Reason: "again", Actor: "ops"}, t0))
}

func TestSuspendedAccountCannotDeployDestroyOrCreateTopups(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	s.then(deploy("a"), t0)
	s.then(domain.Suspend{Reason: "abuse", Actor: "ops"}, at(time.Minute))
	for _, cmd := range []domain.Command{
		deploy("b"),
		domain.Destroy{ServerID: "a"},
		domain.CreateTopup{TopupID: "t1", Amount: money("5.00"), Currency: "BTC"},
	} {
		wantErr(t, s.rejects(cmd, at(2*time.Minute)), domain.ErrAccountSuspended)
	}
}

func TestSetLimitRecordsALimitBetweenZeroAndTenThousand(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	for _, limit := range []int{0, 3, 10000} {
		events := s.then(domain.SetLimit{Limit: limit, Actor: "ops"}, t0)
		wantTypes(t, events, "ServerLimitSet")
		set := as[domain.ServerLimitSet](t, events[0])
		wantEqual(t, "limit", set.Limit, limit)
		wantEqual(t, "actor", set.Actor, "ops")
		wantTime(t, "at", set.At, t0)
		wantEqual(t, "state limit", s.state().ServerLimit, limit)
	}
	for _, limit := range []int{-1, 10001} {
		wantErr(t, s.rejects(domain.SetLimit{Limit: limit, Actor: "ops"}, t0), domain.ErrInvalid)
	}
}

func TestDecideRejectsAnUnknownCommandAsInvalid(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	wantErr(t, s.rejects(unknownCommand{}, t0), domain.ErrInvalid)
}

// unknownCommand is a Command the decider does not know. Command's method is
// unexported, so it is embedded from a real command.
type unknownCommand struct{ domain.Settle }
