package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/tests/apiclient"
)

// restart stops the process with SIGTERM, starts it again on the same data
// dir, and requires everything an agent can see to be exactly as before.
func (j *journey) restart(t *testing.T) {
	a := j.agents[0]
	// Keyed requests, whose first answers a retry must get back byte for
	// byte across a restart and a crash.
	keyed := []struct {
		path  string
		body  any
		first *apiclient.Answer
		key   string
	}{
		{path: "/billing/topups", body: map[string]string{"amount": "3.00", "currency": "ETH"}},
		{path: "/limit-requests", body: map[string]any{"serverLimit": 50, "reason": "restart test"}},
	}
	for i := range keyed {
		keyed[i].key = fmt.Sprintf("restart-%d-%d", i, time.Now().UnixNano())
		keyed[i].first = a.call(t, http.MethodPost, keyed[i].path, keyed[i].body, "Idempotency-Key", keyed[i].key).Expect(t, http.StatusCreated)
	}
	replays := func(when string) {
		t.Helper()
		for _, k := range keyed {
			r := a.call(t, http.MethodPost, k.path, k.body, "Idempotency-Key", k.key).Expect(t, http.StatusCreated)
			if r.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(r.Raw, k.first.Raw) {
				t.Errorf("%s, POST %s with its Idempotency-Key again: %s, want the first answer %s", when, k.path, r, k.first.Raw)
			}
		}
	}
	j.quiesce(t)
	before := j.snapshot(t)
	nowBefore := j.healthNow(t)
	tokens := map[*agent]string{}
	offsets := map[*agent]int{}
	for _, ag := range j.agents {
		offsets[ag] = ag.call(t, http.MethodGet, "/sandbox/clock", nil).Expect(t, http.StatusOK).Num("offsetSeconds")
		tokens[ag] = ag.token
	}

	t0 := time.Now()
	j.srv.Stop(t)
	t.Logf("SIGTERM to exit: %s", time.Since(t0))
	t0 = time.Now()
	j.srv.Restart(t)
	t.Logf("start to healthy: %s", time.Since(t0))

	nowAfter := j.healthNow(t)
	if nowAfter.Before(nowBefore) {
		t.Fatalf("the sandbox clock moved backwards across the restart: %s -> %s", nowBefore, nowAfter)
	}
	if d := nowAfter.Sub(nowBefore); d > time.Minute {
		t.Fatalf("the sandbox clock jumped %s across the restart", d)
	}
	// Each account's own clock is where it was: its moves are in the log.
	for ag, off := range offsets {
		if got := ag.call(t, http.MethodGet, "/sandbox/clock", nil).Expect(t, http.StatusOK).Num("offsetSeconds"); got != off {
			t.Errorf("%s's own clock offset was %d s before the restart, %d s after", ag.email, off, got)
		}
	}
	// Tokens issued before the restart still work: the secret is kept.
	for ag, tok := range tokens {
		r := j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/auth/me", Token: tok})
		if r.Status != http.StatusOK {
			t.Errorf("%s's token from before the restart: %s", ag.email, r)
		}
	}
	after := j.snapshot(t)
	for key, b := range before {
		if !bytes.Equal(b, after[key]) {
			t.Errorf("%s changed across the restart:\nbefore %s\nafter  %s", key, b, after[key])
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d views before the restart, %d after", len(before), len(after))
	}
	replays("after a restart")
	// Accounts: every one can log in with its password.
	for _, ag := range j.agents {
		ag.login(t)
	}
	// And life goes on: the clock still moves forward, deploys still work,
	// and the sandbox cloud never hands out an address twice.
	if now := a.advance(t, 1); now.Before(nowAfter) {
		t.Fatalf("advance after the restart answered %s, before %s", now, nowAfter)
	}
	s := a.deploy(t, "after-restart", micro, "ams")
	j.sawServer(t, a, s)
	s = a.waitFor(t, s.ID, "ACTIVE")
	j.sawServer(t, a, s)

	// A crash (SIGKILL) loses nothing that was acknowledged.
	var tp struct {
		Topup topupObj `json:"topup"`
	}
	a.call(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "7.50", "currency": "LTC"}).
		Expect(t, http.StatusCreated).Decode(t, &tp)
	late := a.deploy(t, "before-crash", micro, "lon")
	j.sawServer(t, a, late)
	nowCrash := j.healthNow(t)
	t0 = time.Now()
	j.srv.Kill()
	j.srv.Restart(t)
	t.Logf("crash and restart: %s", time.Since(t0))
	if now := j.healthNow(t); now.Before(nowCrash) {
		t.Fatalf("the sandbox clock moved backwards across a crash: %s -> %s", nowCrash, now)
	}
	a.call(t, http.MethodGet, "/billing/topups/"+tp.Topup.ID, nil).Expect(t, http.StatusOK)
	replays("after a crash")
	if got := a.server(t, s.ID); got.Status != "ACTIVE" || *got.IPv4 != *s.IPv4 {
		t.Fatalf("after the crash: %+v, want %+v", got, s)
	}
	// The deploy in flight at the crash completes, exactly once.
	late = a.waitFor(t, late.ID, "ACTIVE")
	j.sawServer(t, a, late)
	n := 0
	for _, x := range a.servers(t) {
		if x.Label == "before-crash" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d servers labelled before-crash after the crash", n)
	}
}

func (j *journey) healthNow(t testing.TB) time.Time {
	t.Helper()
	var h struct {
		Now string `json:"now"`
	}
	j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/healthz"}).Expect(t, http.StatusOK).Decode(t, &h)
	now, err := time.Parse(time.RFC3339, h.Now)
	if err != nil {
		t.Fatalf("/healthz now %q: %v", h.Now, err)
	}
	return now
}

// snapshot is every view every agent has, keyed by agent and request.
func (j *journey) snapshot(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, ag := range j.agents {
		paths := []string{"/auth/me", "/billing", "/servers", "/backups", "/billing/topups"}
		for _, id := range j.serverIDs[ag] {
			paths = append(paths, "/servers/"+id)
		}
		for _, p := range paths {
			r := ag.call(t, http.MethodGet, p, nil).Expect(t, http.StatusOK)
			out[ag.email+" GET "+p] = r.Raw
		}
	}
	return out
}

// quiesce moves each agent's own sandbox clock until nothing is about to
// happen on its account: no deploy, destroy or backup in flight, and no
// server's next billed hour or backup's expiry within the next half minute
// (a restart takes seconds of wall time, which is sandbox time too).
func (j *journey) quiesce(t testing.TB) {
	t.Helper()
	for _, ag := range j.agents {
		if busy := j.busy(t, ag); busy != "" {
			for i := 0; busy != ""; i++ {
				if i == 30 {
					t.Fatalf("the sandbox never came to rest: %s", busy)
				}
				t.Logf("before the restart: %s; moving %s's clock a minute", busy, ag.email)
				ag.advance(t, 60)
				busy = j.busy(t, ag)
			}
		}
		// A server that came up while resting shows its root password
		// once, at its first read: not in the snapshot.
		for _, id := range j.serverIDs[ag] {
			ag.call(t, http.MethodGet, "/servers/"+id, nil)
		}
	}
}

// busy says what is about to happen on the agent's account by its own
// clock ("" for nothing).
func (j *journey) busy(t testing.TB, ag *agent) string {
	t.Helper()
	const ahead, behind = 30 * time.Second, 5 * time.Second
	now, err := time.Parse(time.RFC3339, ag.call(t, http.MethodGet, "/sandbox/clock", nil).Expect(t, http.StatusOK).Str("now"))
	if err != nil {
		t.Fatalf("GET /sandbox/clock: %v", err)
	}
	busy := ""
	for _, s := range ag.servers(t) {
		switch s.Status {
		case "PROVISIONING", "DESTROYING":
			busy = fmt.Sprintf("server %s is %s", s.ID, s.Status)
		case "ACTIVE":
			created, err := time.Parse(time.RFC3339, s.CreatedAt)
			if err != nil {
				t.Fatalf("createdAt %q: %v", s.CreatedAt, err)
			}
			phase := now.Sub(created) % time.Hour
			if phase < behind || time.Hour-phase < ahead {
				busy = fmt.Sprintf("server %s is at an hour boundary", s.ID)
			}
		}
	}
	for _, b := range ag.backups(t) {
		expires, err := time.Parse(time.RFC3339, b.ExpiresAt)
		if err != nil {
			t.Fatalf("expiresAt %q: %v", b.ExpiresAt, err)
		}
		if b.Status == "PENDING" {
			busy = "backup " + b.ID + " is PENDING"
		} else if d := expires.Sub(now); d > -behind && d < ahead {
			busy = "backup " + b.ID + " is about to expire"
		}
	}
	return busy
}
