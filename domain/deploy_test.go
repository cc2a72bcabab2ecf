package domain_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

func TestDeployAcceptsEachServerAndChargesItsFirstHour(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	cmd := domain.Deploy{
		Servers: []domain.ServerSpec{serverSpec("a", micro), serverSpec("b", beast)},
		Idem:    domain.Idem{Key: "key-1", RequestHash: "hash-1", Wall: t0}, Bulk: true,
	}
	cmd.Servers[0].SSHKeys = []domain.SSHKey{{Fingerprint: "SHA256:x", Key: "ssh-ed25519 AAAA"}}
	cmd.Servers[1].BackupID = "backup-9"
	events := s.then(cmd, t0)
	wantTypes(t, events, "ServerDeployed", "LedgerPosted", "ServerDeployed", "LedgerPosted", "IdempotencyKeyUsed")

	a := as[domain.ServerDeployed](t, events[0])
	wantEqual(t, "id", a.ServerID, "a")
	wantEqual(t, "label", a.Label, "web-a")
	wantEqual(t, "plan", a.Plan, micro)
	wantEqual(t, "region", a.Region, "ams")
	wantMoney(t, "price", a.HourlyPrice, "0.014")
	wantEqual(t, "ssh keys", len(a.SSHKeys), 1)
	wantTime(t, "at", a.At, t0)
	wantCharge(t, events[1], "a", t0, "0.014")
	b := as[domain.ServerDeployed](t, events[2])
	wantEqual(t, "id", b.ServerID, "b")
	wantEqual(t, "backup", b.BackupID, "backup-9")
	wantCharge(t, events[3], "b", t0, "0.164")

	key := as[domain.IdempotencyKeyUsed](t, events[4])
	wantEqual(t, "key", key.Key, "key-1")
	wantEqual(t, "hash", key.RequestHash, "hash-1")
	wantEqual(t, "ids", fmt.Sprint(key.ServerIDs), "[a b]")
	wantEqual(t, "bulk", key.Bulk, true)
	wantTime(t, "at", key.At, t0)
	wantTime(t, "wall", key.WallAt, t0)

	st := s.state()
	wantMoney(t, "balance", st.Balance, "9.822")
	wantEqual(t, "live servers", st.LiveServers(), 2)
	wantMoney(t, "hourly spend", st.HourlySpend(), "0.178")
	srv := s.server("a")
	wantEqual(t, "status", srv.Status, domain.StatusProvisioning)
	wantTime(t, "created", srv.CreatedAt, t0)
	wantTime(t, "billed until", srv.BilledUntil, at(time.Hour))
	wantMoney(t, "charged", srv.Charged, "0.014")
}

func TestDeployWithoutIdempotencyKeyRemembersNoKey(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	wantTypes(t, s.then(deploy("a"), t0), "ServerDeployed", "LedgerPosted")
	wantEqual(t, "keys", len(s.state().Idempotency), 0)
}

func TestDeployRejectsIncompleteOrDuplicateServerSpecs(t *testing.T) {
	t.Parallel()
	for name, cmd := range map[string]domain.Deploy{
		"no servers":                    {},
		"no id":                         deploy(""),
		"zero price":                    {Servers: []domain.ServerSpec{{ID: "x", Plan: micro, Region: "ams"}}},
		"id already used":               deploy("a"),
		"same id twice in one request":  deploy("x", "x"),
		"same id twice among new specs": deploy("x", "y", "x"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := registered(t, "10.00")
			s.then(deploy("a"), t0)
			wantErr(t, s.rejects(cmd, at(time.Minute)), domain.ErrInvalid)
		})
	}
}

func TestDeployRespectsTheServerLimitCountingOnlyLiveServers(t *testing.T) {
	t.Parallel()
	ten := []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"}
	for _, tc := range []struct {
		name    string
		setup   func(*spec)
		request []string
		want    error
	}{
		{"ten live servers leave no room", nil, []string{"n1"}, domain.ErrServerLimit},
		{"nine live servers leave room for one", func(s *spec) {
			s.then(domain.FailDeploy{ServerID: "s0"}, at(10*time.Minute))
		}, []string{"n1"}, nil},
		{"nine live servers leave no room for two", func(s *spec) {
			s.then(domain.FailDeploy{ServerID: "s0"}, at(10*time.Minute))
		}, []string{"n1", "n2"}, domain.ErrServerLimit},
		{"an ERROR server does not count", func(s *spec) {
			s.then(domain.FailDeploy{ServerID: "s3", Reason: "no capacity"}, at(10*time.Minute))
		}, []string{"n1"}, nil},
		{"a DESTROYED server does not count", func(s *spec) {
			s.then(domain.Destroy{ServerID: "s3"}, at(5*time.Minute))
			s.then(domain.CompleteDestroy{ServerID: "s3"}, at(10*time.Minute))
		}, []string{"n1"}, nil},
		{"a DESTROYING server no longer counts", func(s *spec) {
			s.then(domain.Destroy{ServerID: "s3"}, at(10*time.Minute))
		}, []string{"n1"}, nil},
		{"a raised limit makes room", func(s *spec) {
			s.then(domain.SetLimit{Limit: 12, Actor: "ops"}, at(10*time.Minute))
		}, []string{"n1", "n2"}, nil},
		{"a lowered limit leaves no room", func(s *spec) {
			s.then(domain.FailDeploy{ServerID: "s0"}, at(5*time.Minute))
			s.then(domain.FailDeploy{ServerID: "s1"}, at(5*time.Minute))
			s.then(domain.SetLimit{Limit: 8, Actor: "ops"}, at(10*time.Minute))
		}, []string{"n1"}, domain.ErrServerLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := registered(t, "10.00")
			s.then(deploy(ten...), t0)
			if tc.setup != nil {
				tc.setup(s)
			}
			events, err := s.when(deploy(tc.request...), at(20*time.Minute))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("deploy: %v", err)
				}
				if got := len(chargesIn(events)); got != len(tc.request) {
					t.Fatalf("%d first-hour charges, want %d", got, len(tc.request))
				}
				return
			}
			wantErr(t, err, tc.want)
		})
	}
}

func TestDeployCountsASuspendedServerAgainstTheLimit(t *testing.T) {
	t.Parallel()
	// Nine micros and a beast: 0.290 for the first hour. At t0+1h the micros
	// take 0.126 and leave 0.100, which cannot cover the beast's 0.164, so the
	// beast is suspended while the balance still covers another micro.
	s := registered(t, "0.516")
	s.then(domain.Deploy{Servers: []domain.ServerSpec{
		serverSpec("m1", micro), serverSpec("m2", micro), serverSpec("m3", micro),
		serverSpec("m4", micro), serverSpec("m5", micro), serverSpec("m6", micro),
		serverSpec("m7", micro), serverSpec("m8", micro), serverSpec("m9", micro),
		serverSpec("beast", beast),
	}}, t0)
	events := s.then(domain.Settle{}, at(time.Hour))
	wantEqual(t, "charges", len(chargesIn(events)), 9)
	wantEqual(t, "beast", s.server("beast").Status, domain.StatusSuspended)
	wantMoney(t, "balance", s.state().Balance, "0.100")

	wantErr(t, s.rejects(deploy("n1"), at(70*time.Minute)), domain.ErrServerLimit)
	// With one more slot the balance is the obstacle: 0.100 does not cover
	// an hour of the nine billed micros and the new one (0.140).
	s.then(domain.SetLimit{Limit: 11, Actor: "ops"}, at(71*time.Minute))
	wantErr(t, s.rejects(deploy("n1"), at(72*time.Minute)), domain.ErrInsufficientFunds)
}

func TestDeployNeedsTheBalanceToCoverAnHourOfEveryBilledServer(t *testing.T) {
	t.Parallel()
	// a (0.047/h) runs; b would be a second: 0.094 an hour for both.
	s := registered(t, "0.140")
	s.then(deployPlan(std, "a"), t0)
	err := s.rejects(deployPlan(std, "b"), at(time.Minute)) // 0.093 left
	wantErr(t, err, domain.ErrInsufficientFunds)
	wantContains(t, err.Error(), "0.001 missing")
	s.then(topup("t1", "1.00"), at(2*time.Minute))
	s.then(domain.PayTopup{TopupID: "t1"}, at(2*time.Minute))
	s.then(deployPlan(std, "b"), at(3*time.Minute))
}

func TestDeployNeedsTheBalanceToCoverEveryServersFirstHour(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		credit  string
		servers []string
		want    error
	}{
		{"balance exactly covers two", "0.094", []string{"a", "b"}, nil},
		{"balance one mill short for two", "0.093", []string{"a", "b"}, domain.ErrInsufficientFunds},
		{"balance covers one of two", "0.047", []string{"a", "b"}, domain.ErrInsufficientFunds},
		{"balance covers one", "0.047", []string{"a"}, nil},
		{"no balance", "0", []string{"a"}, domain.ErrInsufficientFunds},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := registered(t, tc.credit)
			_, err := s.when(deployPlan(std, tc.servers...), t0)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("deploy: %v", err)
				}
				wantMoney(t, "balance", s.state().Balance, money(tc.credit).Sub(money("0.047").Times(len(tc.servers))).String())
				return
			}
			wantErr(t, err, tc.want)
			wantEqual(t, "servers", len(s.state().Servers), 0)
		})
	}
}

func TestDeploySettlesDueHoursBeforeCheckingTheBalance(t *testing.T) {
	t.Parallel()
	// a costs 0.014 at t0, 1h and 2h: with 0.070 there is 0.028 left, an
	// hour of a and b together.
	s := registered(t, "0.070")
	s.then(deploy("a"), t0)
	events := s.then(deploy("b"), at(2*time.Hour+30*time.Minute))
	wantTypes(t, events, "LedgerPosted", "LedgerPosted", "ServerDeployed", "LedgerPosted")
	wantCharge(t, events[0], "a", at(time.Hour), "0.014")
	wantCharge(t, events[1], "a", at(2*time.Hour), "0.014")
	wantCharge(t, events[3], "b", at(2*time.Hour+30*time.Minute), "0.014")
	wantMoney(t, "balance", s.state().Balance, "0.014")

	// With 0.056 the same due hours leave 0.014: c's first hour, but not
	// a's next one too.
	s2 := registered(t, "0.056")
	s2.then(deploy("a"), t0)
	wantErr(t, s2.rejects(deploy("c"), at(2*time.Hour+30*time.Minute)), domain.ErrInsufficientFunds)
}

func TestDeployIsRefusedOnASuspendedAccount(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(domain.Suspend{Reason: "abuse", Actor: "ops"}, t0)
	wantErr(t, s.rejects(deploy("a"), at(time.Minute)), domain.ErrAccountSuspended)
	s.then(domain.Unsuspend{Reason: "ok", Actor: "ops"}, at(2*time.Minute))
	s.then(deploy("a"), at(3*time.Minute))
}

// keyed is c with an Idempotency-Key, sent at the real time wall.
func keyed(c domain.Deploy, key, hash string, wall time.Time) domain.Deploy {
	c.Idem = domain.Idem{Key: key, RequestHash: hash, Wall: wall}
	return c
}

func TestDeployRetriedWithTheSameKeyAndRequestReplaysTheOriginalServers(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(keyed(deploy("a", "b"), "key-1", "hash-1", t0), t0)
	for _, now := range []time.Time{at(time.Second), at(23 * time.Hour), at(24*time.Hour - time.Nanosecond)} {
		err := s.rejects(keyed(deploy("c", "d"), "key-1", "hash-1", now), now)
		var replay *domain.ReplayError
		if !errors.As(err, &replay) {
			t.Fatalf("at t0+%s: error = %v, want a *ReplayError", now.Sub(t0), err)
		}
		if !reflect.DeepEqual(replay.ServerIDs, []string{"a", "b"}) || !replay.Bulk {
			t.Fatalf("replay = %+v, want servers [a b], bulk", replay)
		}
	}
	// A retry names no servers of its own.
	var replay *domain.ReplayError
	if err := s.rejects(keyed(domain.Deploy{}, "key-1", "hash-1", at(time.Hour)), at(time.Hour)); !errors.As(err, &replay) {
		t.Fatalf("a retry without servers: %v, want a replay", err)
	}
	wantEqual(t, "servers", len(s.state().Servers), 2)
}

func TestDeployReusingAKeyForADifferentRequestIsAMismatch(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(keyed(deploy("a"), "key-1", "hash-1", t0), t0)
	wantErr(t, s.rejects(keyed(deploy("c"), "key-1", "hash-2", at(time.Hour)), at(time.Hour)), domain.ErrIdempotencyMismatch)
	// Another key is another request.
	s.then(keyed(deploy("c"), "key-2", "hash-2", at(time.Hour)), at(time.Hour))
}

func TestIdempotencyKeyCanBeReusedAfterTwentyFourHours(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(keyed(deploy("a"), "key-1", "hash-1", t0), t0)
	events := s.then(keyed(deploy("c"), "key-1", "hash-2", at(domain.IdempotencyWindow)), at(domain.IdempotencyWindow))
	used := as[domain.IdempotencyKeyUsed](t, events[len(events)-1])
	wantEqual(t, "ids", fmt.Sprint(used.ServerIDs), "[c]")
	wantEqual(t, "hash", used.RequestHash, "hash-2")
	wantTime(t, "at", used.At, at(domain.IdempotencyWindow))
	// The window now runs from the second use.
	err := s.rejects(keyed(deploy("d"), "key-1", "hash-2", at(domain.IdempotencyWindow+time.Hour)), at(domain.IdempotencyWindow+time.Hour))
	var replay *domain.ReplayError
	if !errors.As(err, &replay) || fmt.Sprint(replay.ServerIDs) != "[c]" || replay.Bulk {
		t.Fatalf("error = %v, want a replay of [c]", err)
	}
}

func TestIdempotencyKeysAgeInRealTimeNotServiceTime(t *testing.T) {
	t.Parallel()
	s := registered(t, "50.00")
	s.then(keyed(deploy("a"), "key-1", "hash-1", t0), t0)
	// The sandbox clock moved 30 days, the real time one minute: the key
	// holds.
	var replay *domain.ReplayError
	if err := s.rejects(keyed(deploy("b"), "key-1", "hash-1", at(time.Minute)), at(30*24*time.Hour)); !errors.As(err, &replay) {
		t.Fatalf("after a sandbox jump: %v, want a replay", err)
	}
	// A day of real time later it is free, whatever the service clock says.
	s.then(keyed(deploy("b"), "key-1", "hash-2", at(domain.IdempotencyWindow)), at(30*24*time.Hour+time.Minute))
}

func TestAKeyWithoutItsRequestHashOrTimeIsRefused(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	wantErr(t, s.rejects(keyed(deploy("a"), "key-1", "", t0), t0), domain.ErrInvalid)
	wantErr(t, s.rejects(keyed(deploy("a"), "key-1", "h", time.Time{}), t0), domain.ErrInvalid)
	wantErr(t, s.rejects(keyed(deploy("a"), " key", "h", t0), t0), domain.ErrInvalid)
}
