package domain_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

func TestDestroyFromEveryLiveStatusRequestsDestructionAndStopsBilling(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status domain.ServerStatus
		credit string
		setup  func(*spec)
	}{
		{domain.StatusProvisioning, "10.00", nil},
		{domain.StatusActive, "10.00", func(s *spec) {
			s.then(domain.Activate{ServerID: "a", IPv4: "203.0.113.7"}, at(5*time.Minute))
		}},
		{domain.StatusSuspended, "0.014", func(s *spec) {
			s.then(domain.Settle{}, at(hour))
		}},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			t.Parallel()
			s := registered(t, tc.credit)
			s.then(deploy("a"), t0)
			if tc.setup != nil {
				tc.setup(s)
			}
			wantEqual(t, "status before", s.server("a").Status, tc.status)

			now := at(hour + 30*time.Minute)
			events := s.then(domain.Destroy{ServerID: "a"}, now)
			last := as[domain.ServerDestroyRequested](t, events[len(events)-1])
			wantEqual(t, "server", last.ServerID, "a")
			wantTime(t, "at", last.At, now)
			wantEqual(t, "status", s.server("a").Status, domain.StatusDestroying)
			charged := s.server("a").Charged

			for _, later := range []time.Time{at(2 * hour), at(3 * hour), at(100 * hour)} {
				wantNoEvents(t, s.then(domain.Settle{}, later))
			}
			events = s.then(domain.CompleteDestroy{ServerID: "a"}, at(100*hour))
			wantTypes(t, events, "ServerDestroyed")
			wantTime(t, "destroyed at", as[domain.ServerDestroyed](t, events[0]).At, at(100*hour))
			wantEqual(t, "status", s.server("a").Status, domain.StatusDestroyed)
			wantTime(t, "destroyed at", s.server("a").DestroyedAt, at(100*hour))
			wantMoney(t, "charged after the request", s.server("a").Charged, charged.String())
		})
	}
}

func TestDestroyChargesTheHoursThatStartedBeforeItAndNoneAfter(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(deploy("a"), t0)
	// No Settle ran since the deploy: the hours at 1h and 2h are still due.
	events := s.then(domain.Destroy{ServerID: "a"}, at(2*hour+30*time.Minute))
	wantTypes(t, events, "LedgerPosted", "LedgerPosted", "ServerDestroyRequested")
	wantCharge(t, events[0], "a", at(hour), "0.014")
	wantCharge(t, events[1], "a", at(2*hour), "0.014")

	wantNoEvents(t, s.then(domain.Settle{}, at(3*hour)))
	wantNoEvents(t, s.then(domain.Settle{}, at(30*hour)))
	wantMoney(t, "charged", s.server("a").Charged, "0.042")
	wantMoney(t, "balance", s.state().Balance, "9.958")
}

func TestDestroyingAServerTwiceOrAfterItIsDestroyedIsAStateError(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(deploy("a"), t0)
	s.then(domain.Destroy{ServerID: "a"}, at(time.Minute))
	err := s.rejects(domain.Destroy{ServerID: "a"}, at(2*time.Minute))
	wantStateError(t, err)
	wantContains(t, err.Error(), "is "+string(domain.StatusDestroying))

	s.then(domain.CompleteDestroy{ServerID: "a"}, at(3*time.Minute))
	err = s.rejects(domain.Destroy{ServerID: "a"}, at(4*time.Minute))
	wantStateError(t, err)
	wantContains(t, err.Error(), "is "+string(domain.StatusDestroyed))
}

func TestCommandsOnAnUnknownServerAreNotFound(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(deploy("a"), t0)
	for _, cmd := range []domain.Command{
		domain.Destroy{ServerID: "nope"},
		domain.StartProvision{ServerID: "nope"},
		domain.RecordInstance{ServerID: "nope", InstanceID: "i-1"},
		domain.Activate{ServerID: "nope", IPv4: "192.0.2.1"},
		domain.FailDeploy{ServerID: "nope"},
		domain.CompleteDestroy{ServerID: "nope"},
	} {
		wantErr(t, s.rejects(cmd, at(time.Minute)), domain.ErrNotFound)
	}
}

func TestStartProvisionCountsAttemptsUntilAnInstanceIsRecorded(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(deploy("a"), t0)
	for attempt := 1; attempt <= 3; attempt++ {
		now := at(time.Duration(attempt) * time.Minute)
		events := s.then(domain.StartProvision{ServerID: "a", Attempt: attempt}, now)
		wantTypes(t, events, "ServerProvisionStarted")
		started := as[domain.ServerProvisionStarted](t, events[0])
		wantEqual(t, "server", started.ServerID, "a")
		wantEqual(t, "attempt", started.Attempt, attempt)
		wantTime(t, "at", started.At, now)
		wantEqual(t, "attempts", s.server("a").Attempts, attempt)
		wantTime(t, "provision started at", s.server("a").ProvisionStartedAt, now)
	}

	events := s.then(domain.RecordInstance{ServerID: "a", InstanceID: "i-42"}, at(5*time.Minute))
	wantTypes(t, events, "ServerInstanceCreated")
	created := as[domain.ServerInstanceCreated](t, events[0])
	wantEqual(t, "instance", created.InstanceID, "i-42")
	wantEqual(t, "state instance", s.server("a").InstanceID, "i-42")

	wantStateError(t, s.rejects(domain.StartProvision{ServerID: "a"}, at(6*time.Minute)))
	wantStateError(t, s.rejects(domain.RecordInstance{ServerID: "a", InstanceID: "i-43"}, at(6*time.Minute)))
}

func TestStartProvisionRefusesAnAttemptOtherThanTheNext(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(deploy("a"), t0)
	// Two workers both saw no attempt and both ask for attempt 1: the
	// second, acting on a stale state, must not start another one.
	s.then(domain.StartProvision{ServerID: "a", Attempt: 1}, at(time.Second))
	wantStateError(t, s.rejects(domain.StartProvision{ServerID: "a", Attempt: 1}, at(2*time.Second)))
	// Skipping ahead is refused too.
	wantStateError(t, s.rejects(domain.StartProvision{ServerID: "a", Attempt: 3}, at(2*time.Second)))
	wantEqual(t, "attempts", s.server("a").Attempts, 1)
	wantTime(t, "provision started at", s.server("a").ProvisionStartedAt, at(time.Second))
	// The next attempt, named, goes through; so does an unnamed one (zero).
	s.then(domain.StartProvision{ServerID: "a", Attempt: 2}, at(3*time.Minute))
	events := s.then(domain.StartProvision{ServerID: "a"}, at(6*time.Minute))
	wantEqual(t, "unnamed attempt", as[domain.ServerProvisionStarted](t, events[0]).Attempt, 3)
	wantTime(t, "provision started at", s.server("a").ProvisionStartedAt, at(6*time.Minute))
}

func TestStartProvisionIsOnlyForAProvisioningServer(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(deploy("a", "b"), t0)
	s.then(domain.Activate{ServerID: "a", IPv4: "203.0.113.7"}, at(time.Minute))
	s.then(domain.Destroy{ServerID: "b"}, at(time.Minute))
	wantStateError(t, s.rejects(domain.StartProvision{ServerID: "a"}, at(2*time.Minute)))
	wantStateError(t, s.rejects(domain.StartProvision{ServerID: "b"}, at(2*time.Minute)))
}

func TestActivateMakesTheServerActiveWithItsAddress(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(deploy("a"), t0)
	s.then(domain.StartProvision{ServerID: "a"}, at(time.Second))
	s.then(domain.RecordInstance{ServerID: "a", InstanceID: "i-1"}, at(2*time.Second))
	events := s.then(domain.Activate{ServerID: "a", IPv4: "203.0.113.7"}, at(time.Minute))
	wantTypes(t, events, "ServerActivated")
	act := as[domain.ServerActivated](t, events[0])
	wantEqual(t, "server", act.ServerID, "a")
	wantEqual(t, "ipv4", act.IPv4, "203.0.113.7")
	wantTime(t, "at", act.At, at(time.Minute))

	srv := s.server("a")
	wantEqual(t, "status", srv.Status, domain.StatusActive)
	wantEqual(t, "ipv4", srv.IPv4, "203.0.113.7")
	wantEqual(t, "activated", srv.Activated, true)

	wantStateError(t, s.rejects(domain.Activate{ServerID: "a", IPv4: "203.0.113.8"}, at(2*time.Minute)))
	s.then(domain.Destroy{ServerID: "a"}, at(3*time.Minute))
	wantStateError(t, s.rejects(domain.Activate{ServerID: "a", IPv4: "203.0.113.8"}, at(4*time.Minute)))
}

func TestFailDeployRefundsEverythingTheServerWasCharged(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(deploy("a"), t0)
	s.then(domain.Settle{}, at(2*hour)) // charged at 0h, 1h and 2h
	wantMoney(t, "charged", s.server("a").Charged, "0.042")

	now := at(2*hour + 10*time.Minute)
	events := s.then(domain.FailDeploy{ServerID: "a", Reason: "image not found"}, now)
	wantTypes(t, events, "ServerFailed", "LedgerPosted")
	failed := as[domain.ServerFailed](t, events[0])
	wantEqual(t, "server", failed.ServerID, "a")
	wantEqual(t, "reason", failed.Reason, "image not found")
	wantTime(t, "at", failed.At, now)

	refund := as[domain.LedgerPosted](t, events[1])
	wantEqual(t, "kind", refund.Kind, domain.TxRefund)
	wantEqual(t, "server", refund.ServerID, "a")
	wantEqual(t, "postings", len(refund.Postings), 2)
	wantMoney(t, "customer", refund.AmountFor(domain.CustomerLedger(accountID)), "0.042")
	wantMoney(t, "revenue:compute", refund.AmountFor(domain.LedgerRevenueCompute), "-0.042")
	wantTime(t, "at", refund.At, now)

	srv := s.server("a")
	wantEqual(t, "status", srv.Status, domain.StatusError)
	wantMoney(t, "charged", srv.Charged, "0")
	wantMoney(t, "balance", s.state().Balance, "10.00")
	wantEqual(t, "live", s.state().LiveServers(), 0)

	wantStateError(t, s.rejects(domain.FailDeploy{ServerID: "a", Reason: "again"}, at(3*hour)))
}

func TestFailDeployOfASuspendedServerThatNeverRanRefundsIt(t *testing.T) {
	t.Parallel()
	s := registered(t, "0.014")
	s.then(deploy("a"), t0)
	s.then(domain.Settle{}, at(hour))
	events := s.then(domain.FailDeploy{ServerID: "a", Reason: "timeout"}, at(hour+time.Minute))
	wantTypes(t, events, "ServerFailed", "LedgerPosted")
	wantEqual(t, "status", s.server("a").Status, domain.StatusError)
	wantMoney(t, "balance", s.state().Balance, "0.014")
}

func TestFailDeployAfterActivationIsAStateError(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(deploy("a", "b"), t0)
	s.then(domain.Activate{ServerID: "a", IPv4: "203.0.113.7"}, at(time.Minute))
	wantStateError(t, s.rejects(domain.FailDeploy{ServerID: "a", Reason: "late"}, at(2*time.Minute)))
	s.then(domain.Destroy{ServerID: "b"}, at(time.Minute))
	wantStateError(t, s.rejects(domain.FailDeploy{ServerID: "b", Reason: "late"}, at(2*time.Minute)))
}

func TestFailDeployRefundResumesASuspendedServer(t *testing.T) {
	t.Parallel()
	s := registered(t, "0.028")
	s.then(deploy("a", "b"), t0)
	s.then(domain.Settle{}, at(hour)) // both suspended at 1h
	now := at(hour + 30*time.Minute)
	events := s.then(domain.FailDeploy{ServerID: "b", Reason: "no capacity"}, now)
	wantTypes(t, events, "ServerFailed", "LedgerPosted", "ServerResumed", "LedgerPosted")
	wantEqual(t, "refund", as[domain.LedgerPosted](t, events[1]).Kind, domain.TxRefund)
	wantEqual(t, "resumed", as[domain.ServerResumed](t, events[2]).ServerID, "a")
	wantCharge(t, events[3], "a", at(hour), "0.014")
	wantMoney(t, "balance", s.state().Balance, "0")
}

// A refund is a credit like a top-up: the hours that came due before it are
// settled first against the balance as it was, so the outcome does not depend
// on whether the biller happened to run just before the failure.
func TestFailDeploySettlesDueHoursBeforeCreditingTheRefund(t *testing.T) {
	t.Parallel()
	scenario := func(t *testing.T, settleFirst bool) *spec {
		s := registered(t, "0.042")
		s.then(deploy("a", "x"), t0) // 0.014 left
		s.then(domain.Activate{ServerID: "a", IPv4: "203.0.113.7"}, at(5*time.Minute))
		now := at(3*hour + 30*time.Minute)
		if settleFirst {
			s.then(domain.Settle{}, now)
		}
		s.then(domain.FailDeploy{ServerID: "x", Reason: "no capacity"}, now)
		s.then(domain.Settle{}, now)
		return s
	}
	lagging, prompt := scenario(t, false), scenario(t, true)

	// a paid 1h, was suspended at 2h, and x's refund resumed it at 3h.
	want := "[a@0s x@0s a@1h0m0s a@3h0m0s]"
	for name, s := range map[string]*spec{"biller lagging": lagging, "biller prompt": prompt} {
		if got := fmt.Sprint(chargesIn(s.history)); got != want {
			t.Errorf("%s: charges %s, want %s", name, got, want)
		}
		a := s.server("a")
		if a.Status != domain.StatusActive || !a.BilledUntil.Equal(at(4*hour)) {
			t.Errorf("%s: a is %s billed until t0+%s, want ACTIVE until t0+4h", name, a.Status, a.BilledUntil.Sub(t0))
		}
		wantMoney(t, name+" balance", s.state().Balance, "0")
	}
}

func TestCompleteDestroyIsOnlyForAServerBeingDestroyed(t *testing.T) {
	t.Parallel()
	s := registered(t, "0.014")
	s.then(deploy("a"), t0)
	wantStateError(t, s.rejects(domain.CompleteDestroy{ServerID: "a"}, at(time.Minute))) // PROVISIONING
	s.then(domain.Activate{ServerID: "a", IPv4: "203.0.113.7"}, at(time.Minute))
	wantStateError(t, s.rejects(domain.CompleteDestroy{ServerID: "a"}, at(2*time.Minute))) // ACTIVE
	s.then(domain.Settle{}, at(hour))
	wantStateError(t, s.rejects(domain.CompleteDestroy{ServerID: "a"}, at(hour))) // SUSPENDED
	s.then(domain.Destroy{ServerID: "a"}, at(hour+time.Minute))
	s.then(domain.CompleteDestroy{ServerID: "a"}, at(hour+2*time.Minute))
	wantStateError(t, s.rejects(domain.CompleteDestroy{ServerID: "a"}, at(hour+3*time.Minute))) // DESTROYED
}
