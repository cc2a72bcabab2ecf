package security

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/tests/apiclient"
)

// Requests racing for one thing: exactly one wins, the others get the
// refusal their rules give, and the books show one outcome. Accounts here
// start with 0.042 (three hours of the smallest plan at 0.014) and a limit
// of 3 servers; provisioning and destroying take an hour, so nothing moves
// in the background while the race is judged.
func TestRacesHaveOneWinner(t *testing.T) {
	t.Parallel()
	const racers = 8
	s := start(t, false, "--signup-credit", "0.042", "--server-limit", "3", "--provision-delay", "1h", "--destroy-delay", "1h")
	plans := s.send(t, apiclient.Request{Method: http.MethodGet, Path: "/plans"}).Expect(t, http.StatusOK)
	if plans.Str("plans.0.id") != "vc2-1c-1gb" || !money(plans.Str("plans.0.hourlyPrice"), "0.014") {
		t.Fatalf("the suite assumes vc2-1c-1gb at 0.014/h first in /plans: %s", plans)
	}
	deploy := func(a *account) func() *apiclient.Answer {
		return func() *apiclient.Answer {
			return a.do(t, http.MethodPost, "/servers", map[string]any{"label": "race", "planId": "vc2-1c-1gb",
				"regionId": "ams", "sshKeys": []string{sshKey}})
		}
	}
	count := func(a *account, what string) int {
		return len(a.do(t, http.MethodGet, what, nil).Expect(t, http.StatusOK).List(strings.Trim(map[string]string{
			"/servers": "servers", "/billing/ledger": "transactions", "/billing/topups": "topups"}[what], "/")))
	}

	t.Run("deploys at the balance edge", func(t *testing.T) {
		// 0.042 covers two servers: after the second, 0.014 is left, the
		// next hour of both is 0.028.
		a := s.register(t)
		got := parallel(racers, deploy(a))
		if got[http.StatusAccepted] != 2 || got[http.StatusPaymentRequired] != racers-2 {
			t.Errorf("statuses %v, want 2 accepted and %d payment required", got, racers-2)
		}
		if b := a.state(t).Balance; !money(b, "0.014") {
			t.Errorf("balance %s, want 0.014", b)
		}
		if n, l := count(a, "/servers"), count(a, "/billing/ledger"); n != 2 || l != 3 {
			t.Errorf("%d servers and %d ledger transactions, want 2 and 3 (signup, two first hours)", n, l)
		}
	})

	var limited *account
	t.Run("deploys at the server limit", func(t *testing.T) {
		a := s.register(t)
		limited = a
		a.do(t, http.MethodPost, "/sandbox/topups/"+a.topup(t, "25.00")+"/pay", nil).Expect(t, http.StatusOK)
		got := parallel(racers, deploy(a))
		if got[http.StatusAccepted] != 3 || got[http.StatusForbidden] != racers-3 {
			t.Errorf("statuses %v, want 3 accepted and %d forbidden", got, racers-3)
		}
		if b := a.state(t).Balance; !money(b, "25.000") {
			t.Errorf("balance %s, want 25.000 (25.042 less three first hours)", b)
		}
		if n, l := count(a, "/servers"), count(a, "/billing/ledger"); n != 3 || l != 5 {
			t.Errorf("%d servers and %d ledger transactions, want 3 and 5", n, l)
		}
	})

	t.Run("pays of one top-up", func(t *testing.T) {
		a := s.register(t)
		topup := a.topup(t, "10.00")
		got := parallel(racers, func() *apiclient.Answer {
			return a.do(t, http.MethodPost, "/sandbox/topups/"+topup+"/pay", nil)
		})
		// A payment settles the invoice and applies it; one racing a
		// payment already applied is a 409, one applying the same settled
		// invoice again a 200 that credits nothing (the ledger
		// transaction's id derives from the invoice).
		if got[http.StatusOK] < 1 || got[http.StatusOK]+got[http.StatusConflict] != racers {
			t.Errorf("statuses %v, want 200s (at least one) and 409s only", got)
		}
		if st := a.do(t, http.MethodGet, "/billing/topups/"+topup, nil).Expect(t, http.StatusOK).Str("topup.status"); st != "PAID" {
			t.Errorf("top-up %s, want PAID", st)
		}
		if b := a.state(t).Balance; !money(b, "10.042") {
			t.Errorf("balance %s, want 10.042: credited once", b)
		}
		if l := count(a, "/billing/ledger"); l != 2 {
			t.Errorf("%d ledger transactions, want 2 (signup, one top-up)", l)
		}
	})

	t.Run("deletes of one server", func(t *testing.T) {
		if limited == nil {
			t.Skip("no servers: the limit race failed")
		}
		a := limited
		server := a.do(t, http.MethodGet, "/servers", nil).Expect(t, http.StatusOK).Str("servers.0.id")
		before := a.state(t)
		got := parallel(racers, func() *apiclient.Answer { return a.do(t, http.MethodDelete, "/servers/"+server, nil) })
		if got[http.StatusAccepted] != 1 || got[http.StatusConflict] != racers-1 {
			t.Errorf("statuses %v, want 1 accepted and %d conflicts", got, racers-1)
		}
		after := a.state(t)
		if after.Balance != before.Balance || after.Ledger != before.Ledger {
			t.Errorf("a destroy moved money: %s -> %s", before.Balance, after.Balance)
		}
		servers := a.do(t, http.MethodGet, "/servers", nil).Expect(t, http.StatusOK)
		statuses := map[string]int{}
		for i := range servers.List("servers") {
			statuses[servers.Str("servers."+itoa(i)+".status")]++
		}
		if statuses["DESTROYING"] != 1 || statuses["PROVISIONING"] != 2 {
			t.Errorf("statuses %v, want one DESTROYING and two PROVISIONING", statuses)
		}
	})
}
