package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cryptovps/cryptovps/tests/apiclient"
)

const (
	micro   = "vc2-1c-1gb"
	beast   = "vc2-6c-16gb"
	microPH = "0.014"
	beastPH = "0.164"
)

// journey is the shared state of TestAgentJourney: one server process, one
// sandbox clock, the agents that used it.
type journey struct {
	srv    *server
	agents []*agent
	// every IPv4 the sandbox handed out, to check none is ever reused
	ips map[string]string
	// every server id each agent ever had, destroyed ones included
	serverIDs map[*agent][]string
}

func (j *journey) agent(t *testing.T, email string) *agent {
	t.Helper()
	a := newAgent(j.srv, email)
	j.agents = append(j.agents, a)
	return a
}

func (j *journey) sawServer(t testing.TB, a *agent, s serverObj) {
	t.Helper()
	if !slices.Contains(j.serverIDs[a], s.ID) {
		j.serverIDs[a] = append(j.serverIDs[a], s.ID)
	}
	if s.IPv4 == nil {
		return
	}
	if other, ok := j.ips[*s.IPv4]; ok && other != s.ID {
		t.Fatalf("IPv4 %s handed to server %s and again to %s", *s.IPv4, other, s.ID)
	}
	j.ips[*s.IPv4] = s.ID
}

// TestAgentJourney walks the guide as an agent would, against one server
// process whose sandbox clock every step shares, so the steps run in order.
func TestAgentJourney(t *testing.T) {
	t.Parallel()
	start := time.Now()
	srv := startServer(t, "--provision-delay", "60s", "--backup-delay", "3m",
		// Every agent of this test comes from 127.0.0.1: the rate limits have
		// their own tests, on their own servers.
		"--auth-rate-limit", "100000", "--rate-limit", "100000")
	j := &journey{srv: srv, ips: map[string]string{}, serverIDs: map[*agent][]string{}}
	steps := []struct {
		name string
		run  func(*testing.T)
	}{
		{"happy path", j.happyPath},
		{"llms.txt and catalog", j.guide},
		{"top-up", j.topup},
		{"errors", j.errors},
		{"billing across time", j.billingAcrossTime},
		{"backups", j.backupsLifecycle},
		{"garbage input", j.garbage},
		{"restart", j.restart},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.FailNow() // the steps share one clock and one history
		}
	}
	if strings.Contains(srv.Log(), "panic") {
		t.Fatalf("the server log mentions a panic")
	}
	t.Logf("journey took %s", time.Since(start).Round(time.Millisecond))
}

// ---------------------------------------------------------------------------

// happyPath follows the happy path of /llms.txt to the letter: every request
// it sends is the one the guide names, answered as the guide says the first
// time (no blind poll, no guess, no second try), and it ends with a server
// the agent can log into with its own key.
func (j *journey) happyPath(t *testing.T) {
	a := j.agent(t, "agent@example.com")
	sent := j.srv.Requests()

	// 1. register
	u := a.register(t)
	if u.Balance != "10.00" {
		t.Fatalf("signup balance %q, want 10.00", u.Balance)
	}
	// 2. bearer token everywhere; store the SSH public key once
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	fingerprint := ssh.FingerprintSHA256(sk)
	var stored struct {
		SSHKey struct {
			ID, Name, Fingerprint, CreatedAt string
		} `json:"sshKey"`
	}
	a.call(t, http.MethodPost, "/ssh-keys", map[string]string{"name": "me",
		"publicKey": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk))) + " agent@example.com"}).
		Expect(t, http.StatusCreated).Decode(t, &stored)
	if stored.SSHKey.Fingerprint != fingerprint || stored.SSHKey.Name != "me" {
		t.Fatalf("POST /ssh-keys stored %+v, want fingerprint %s", stored.SSHKey, fingerprint)
	}
	// 3. the balance covers an hour; money reads as the guide shows it
	b := a.billing(t)
	if b.Balance != "10.00" || b.HourlySpend != "0.00" {
		t.Fatalf("fresh billing %+v, want balance 10.00 and hourlySpend 0.00", b)
	}
	// 4. deploy (with an Idempotency-Key, as the guide advises): the stored
	// key is installed, and the 202 says where to look and when.
	r := a.call(t, http.MethodPost, "/servers", map[string]string{"label": "my-bot", "planId": micro, "regionId": "ams"},
		"Idempotency-Key", "happy-path-deploy").Expect(t, http.StatusAccepted)
	s := decodeServer(t, r, "server")
	j.sawServer(t, a, s)
	if s.Status != "PROVISIONING" || s.IPv4 != nil || s.HourlyPrice != microPH || !slices.Equal(s.SSHKeys, []string{fingerprint}) {
		t.Fatalf("the deploy answered %s, want PROVISIONING at %s with the stored key %s", r, microPH, fingerprint)
	}
	location, retryAfter := r.Header.Get("Location"), r.Header.Get("Retry-After")
	wait, err := strconv.ParseInt(retryAfter, 10, 64)
	if location != "/servers/"+s.ID || err != nil || wait < 1 {
		t.Fatalf("the 202 says Location %q, Retry-After %q", location, retryAfter)
	}
	b = a.billing(t)
	sameMoney(t, "balance after the deploy (first hour charged)", b.Balance, sub(t, "10.00", microPH, 1))
	sameMoney(t, "hourlySpend", b.HourlySpend, dec(t, microPH))

	// 5. wait without polling: in the sandbox, move the clock by
	// Retry-After, then one long-poll answers at once, ACTIVE.
	a.advance(t, wait)
	r = a.call(t, http.MethodGet, location+"?waitFor=ACTIVE,ERROR&timeout=60", nil).Expect(t, http.StatusOK)
	s = decodeServer(t, r, "server")
	j.sawServer(t, a, s)
	if s.Status != "ACTIVE" || s.IPv4 == nil {
		t.Fatalf("after Retry-After seconds the long-poll answered %s, want ACTIVE with ipv4", r)
	}
	ip := net.ParseIP(*s.IPv4).To4()
	_, sandboxNet, _ := net.ParseCIDR("198.18.0.0/15")
	if ip == nil || !sandboxNet.Contains(ip) {
		t.Fatalf("ipv4 %q is not a sandbox address in 198.18.0.0/15", *s.IPv4)
	}
	// Everything needed to log in: ssh -p 22 root@<ipv4> with our key,
	// the host key to expect (made up, plainly, in the sandbox).
	if s.SSHUser != "root" || s.SSHPort != 22 || !slices.Equal(s.SSHKeys, []string{fingerprint}) || len(s.HostKeyFingerprints) == 0 {
		t.Fatalf("the ACTIVE server does not say how to log in with our key: %s", r)
	}
	for _, hk := range s.HostKeyFingerprints {
		if !strings.HasPrefix(hk, "SHA256:SANDBOXxNOTxREALx") {
			t.Errorf("sandbox host key fingerprint %q does not say it is made up", hk)
		}
	}
	list := a.servers(t)
	if len(list) != 1 || list[0].ID != s.ID || list[0].Status != "ACTIVE" || list[0].IPv4 == nil || *list[0].IPv4 != *s.IPv4 {
		t.Fatalf("GET /servers: %+v, want just %+v", list, s)
	}
	// No request so far was a second try, a 4xx or a blind poll.
	if errs := j.srv.FailedSince(sent); len(errs) > 0 {
		t.Fatalf("the happy path met errors: %v", errs)
	}

	// 6. destroy
	r = a.call(t, http.MethodDelete, "/servers/"+s.ID, nil).Expect(t, http.StatusAccepted)
	var ok map[string]any
	r.Decode(t, &ok)
	if len(ok) != 1 || ok["ok"] != true {
		t.Fatalf(`DELETE must answer {"ok":true}: %s`, r)
	}
	if got := a.server(t, s.ID); got.Status != "DESTROYING" && got.Status != "DESTROYED" {
		t.Fatalf("right after DELETE the server is %s", got.Status)
	}
	j.waitGone(t, a, s.ID)
	if list := a.servers(t); len(list) != 0 {
		t.Fatalf("a destroyed server is still listed: %+v", list)
	}
	b = a.billing(t)
	sameMoney(t, "balance after the destroy (no second hour)", b.Balance, sub(t, "10.00", microPH, 1))
	if dec(t, b.HourlySpend).Sign() != 0 {
		t.Fatalf("hourlySpend %s after the only server was destroyed", b.HourlySpend)
	}
}

// waitGone polls a destroyed server until it is DESTROYED (or, equally
// acceptable to an agent, 404).
func (j *journey) waitGone(t testing.TB, a *agent, id string) {
	t.Helper()
	for range 6 {
		r := a.call(t, http.MethodGet, "/servers/"+id, nil)
		if r.Status == http.StatusNotFound {
			return
		}
		s := decodeServer(t, r.Expect(t, http.StatusOK), "server")
		switch s.Status {
		case "DESTROYED":
			return
		case "DESTROYING":
			a.advance(t, 60)
		default:
			t.Fatalf("destroyed server %s is %s", id, s.Status)
		}
	}
	t.Fatalf("server %s never reached DESTROYED", id)
}

// ---------------------------------------------------------------------------

var guideEndpoints = []string{
	"POST /auth/register", "POST /auth/login", "GET /auth/me", "DELETE /auth/me", "POST /auth/password",
	"POST /auth/api-keys", "GET /auth/api-keys", "DELETE /auth/api-keys/:id",
	"GET /billing", "GET /billing/ledger", "POST /billing/topups", "GET /billing/topups", "GET /billing/topups/:id",
	"GET /plans", "GET /regions", "GET /healthz", "GET /readyz",
	"GET /servers", "GET /servers/:id", "POST /servers", "POST /servers/bulk", "DELETE /servers/:id",
	"GET /backups", "GET /backups/:id", "POST /backups", "POST /backups/:id/restore", "DELETE /backups/:id",
	"GET /events", "POST /ssh-keys", "GET /ssh-keys", "DELETE /ssh-keys/:id",
	"POST /limit-requests", "GET /limit-requests", "GET /docs/custom-requests",
	"GET /sandbox/clock", "POST /sandbox/clock/advance", "POST /sandbox/topups/:id/pay",
}

var wantPlans = map[string]string{
	"vc2-1c-1gb": "0.014", "vc2-1c-2gb": "0.025", "vc2-2c-4gb": "0.047", "vc2-4c-8gb": "0.085", "vc2-6c-16gb": "0.164",
}

const wantRegions = "ams fra par lon mad waw sto ewr ord dfw atl mia sea lax sjc yto mex sao scl nrt icn sgp blr bom del syd mel jnb tlv"

func (j *journey) guide(t *testing.T) {
	r := j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/llms.txt"}).Expect(t, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/llms.txt Content-Type %q, want text/plain", ct)
	}
	text := string(r.Raw)
	// Every endpoint is named ...
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)\b(GET|POST|DELETE|PUT|PATCH) (/[A-Za-z0-9_./:<>-]*[A-Za-z0-9_>])`).FindAllStringSubmatch(text, -1) {
		path := regexp.MustCompile(`<[a-z]+>`).ReplaceAllString(m[2], ":id")
		if path == "/llms.txt" || path == "/docs" || path == "/openapi.json" {
			continue
		}
		named[m[1]+" "+path] = true
	}
	for _, e := range guideEndpoints {
		if !named[e] {
			t.Errorf("/llms.txt does not name %s", e)
		}
	}
	// ... and nothing it names is made up.
	for e := range named {
		if !slices.Contains(guideEndpoints, e) {
			t.Errorf("/llms.txt names %s, which this test does not know as an endpoint", e)
		}
	}
	if !strings.Contains(text, j.srv.URL) {
		t.Errorf("/llms.txt does not give this deployment's base URL %s", j.srv.URL)
	}
	for id := range wantPlans {
		if !strings.Contains(text, id) {
			t.Errorf("/llms.txt does not list plan %s", id)
		}
	}

	var plans struct {
		Plans []struct {
			ID          string `json:"id"`
			HourlyPrice string `json:"hourlyPrice"`
		} `json:"plans"`
	}
	j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/plans"}).Expect(t, http.StatusOK).Decode(t, &plans)
	got := map[string]string{}
	for _, p := range plans.Plans {
		got[p.ID] = p.HourlyPrice
	}
	if fmt.Sprint(got) != fmt.Sprint(wantPlans) {
		t.Errorf("GET /plans hourly prices %v, want %v", got, wantPlans)
	}
	var regions struct {
		Regions []struct {
			ID string `json:"id"`
		} `json:"regions"`
	}
	j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/regions"}).Expect(t, http.StatusOK).Decode(t, &regions)
	var ids []string
	for _, r := range regions.Regions {
		ids = append(ids, r.ID)
	}
	want := strings.Fields(wantRegions)
	sort.Strings(ids)
	sort.Strings(want)
	if !slices.Equal(ids, want) {
		t.Errorf("GET /regions %v, want the guide's 29: %v", ids, want)
	}
	var health struct {
		Status string `json:"status"`
		Now    string `json:"now"`
	}
	j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/healthz"}).Expect(t, http.StatusOK).Decode(t, &health)
	if health.Status != "ok" {
		t.Errorf("/healthz status %q", health.Status)
	}
	// The real binary is ready once it listens: store, read model, leader.
	j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/readyz"}).Expect(t, http.StatusOK)
}

// ---------------------------------------------------------------------------

func (j *journey) topup(t *testing.T) {
	a := j.agents[0]
	before := a.billing(t).Balance
	r := a.call(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "25.00", "currency": "BTC"}).
		Expect(t, http.StatusCreated)
	var out struct {
		Topup topupObj `json:"topup"`
	}
	r.Decode(t, &out)
	tp := out.Topup
	if tp.ID == "" || tp.Status != "PENDING" || tp.Amount != "25.00" || tp.Currency != "BTC" || tp.PayAddress == "" || tp.PaidAt != nil {
		t.Fatalf("new top-up: %s", r)
	}
	var list struct {
		Topups []topupObj `json:"topups"`
	}
	a.call(t, http.MethodGet, "/billing/topups", nil).Expect(t, http.StatusOK).Decode(t, &list)
	if len(list.Topups) != 1 || list.Topups[0].ID != tp.ID {
		t.Fatalf("GET /billing/topups: %+v", list.Topups)
	}
	if got := a.billing(t).Balance; got != before {
		t.Fatalf("an unpaid top-up changed the balance from %s to %s", before, got)
	}

	r = a.call(t, http.MethodPost, "/sandbox/topups/"+tp.ID+"/pay", nil).Expect(t, http.StatusOK)
	r.Decode(t, &out)
	if out.Topup.Status != "PAID" || out.Topup.PaidAt == nil {
		t.Fatalf("paid top-up: %s", r)
	}
	sameMoney(t, "balance after the top-up", a.billing(t).Balance, add(t, before, "25.00"))
	// Paying twice credits once.
	a.call(t, http.MethodPost, "/sandbox/topups/"+tp.ID+"/pay", nil).ExpectError(t, http.StatusConflict, "")
	sameMoney(t, "balance after paying twice", a.billing(t).Balance, add(t, before, "25.00"))
}

// ---------------------------------------------------------------------------

func (j *journey) errors(t *testing.T) {
	a := j.agents[0]
	other := j.agent(t, "other@example.com")
	other.register(t)
	otherSrv := other.deploy(t, "others-box", micro, "fra")
	j.sawServer(t, other, otherSrv)

	t.Run("400", func(t *testing.T) {
		beforeBal, beforeList := a.billing(t), a.servers(t)
		e := a.call(t, http.MethodPost, "/servers", map[string]string{"label": "bad label!", "planId": "vc2-9c-999gb", "regionId": "atlantis"}).
			ExpectError(t, http.StatusBadRequest, "validation_failed")
		for _, f := range []string{"label", "planId", "regionId"} {
			if e.Details[f] == "" {
				t.Errorf("400 details do not name %s: %+v", f, e)
			}
		}
		e = a.call(t, http.MethodPost, "/servers", map[string]any{"label": "ok", "planId": micro, "regionId": "ams", "isAdmin": true}).
			ExpectError(t, http.StatusBadRequest, "")
		if e.Details["isAdmin"] == "" {
			t.Errorf("an unknown field must be named in the details: %+v", e)
		}
		a.call(t, http.MethodPost, "/servers", `{"label":`).ExpectError(t, http.StatusBadRequest, "")
		e = a.call(t, http.MethodPost, "/servers", map[string]any{"label": 5, "planId": micro, "regionId": "ams"}).
			ExpectError(t, http.StatusBadRequest, "")
		if e.Details["label"] == "" {
			t.Errorf("a wrongly typed field must be named: %+v", e)
		}
		e = a.call(t, http.MethodPost, "/servers", map[string]string{"label": strings.Repeat("x", 65), "planId": micro, "regionId": "ams"}).
			ExpectError(t, http.StatusBadRequest, "")
		if e.Details["label"] == "" {
			t.Errorf("a 65-character label must be refused on label: %+v", e)
		}
		for _, count := range []int{0, 11, -1} {
			e = a.call(t, http.MethodPost, "/servers/bulk", map[string]any{"label": "fleet", "count": count, "planId": micro, "regionId": "ams"}).
				ExpectError(t, http.StatusBadRequest, "")
			if e.Details["count"] == "" {
				t.Errorf("bulk count %d must be refused on count: %+v", count, e)
			}
		}
		// 62 + "-10" is 65 characters: the suffix counts.
		e = a.call(t, http.MethodPost, "/servers/bulk", map[string]any{"label": strings.Repeat("y", 62), "count": 10, "planId": micro, "regionId": "ams"}).
			ExpectError(t, http.StatusBadRequest, "")
		if e.Details["label"] == "" {
			t.Errorf("bulk label too long with its suffix must be refused on label: %+v", e)
		}
		e = j.srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/register",
			Body: map[string]string{"email": "not-an-email", "password": "long enough"}}).ExpectError(t, http.StatusBadRequest, "")
		if e.Details["email"] == "" {
			t.Errorf("a bad email must be named: %+v", e)
		}
		e = j.srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/register",
			Body: map[string]string{"email": "short@example.com", "password": "short"}}).ExpectError(t, http.StatusBadRequest, "")
		if e.Details["password"] == "" {
			t.Errorf("a short password must be named: %+v", e)
		}
		e = a.call(t, http.MethodPost, "/backups", map[string]string{}).ExpectError(t, http.StatusBadRequest, "")
		if e.Details["serverId"] == "" {
			t.Errorf("a missing serverId must be named: %+v", e)
		}
		// Which currencies are offered only the payment processor knows:
		// it is asked once the amount is right.
		e = a.call(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "0.001", "currency": "DOGE"}).
			ExpectError(t, http.StatusBadRequest, "")
		if e.Details["amount"] == "" {
			t.Errorf("a bad top-up must name amount: %+v", e)
		}
		e = a.call(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "5.00", "currency": "DOGE"}).
			ExpectError(t, http.StatusBadRequest, "")
		if !strings.Contains(e.Details["currency"], "BTC-CHAIN") {
			t.Errorf("a top-up in a currency not offered must name the offered ones: %+v", e)
		}
		for _, secs := range []int64{0, -60, 31*24*3600 + 1} {
			e = a.call(t, http.MethodPost, "/sandbox/clock/advance", map[string]int64{"seconds": secs}).ExpectError(t, http.StatusBadRequest, "")
			if e.Details["seconds"] == "" {
				t.Errorf("advance by %d must be refused on seconds: %+v", secs, e)
			}
		}
		// A 64-character label is fine.
		s := a.deploy(t, strings.Repeat("z", 64), micro, "ams")
		j.sawServer(t, a, s)
		a.call(t, http.MethodDelete, "/servers/"+s.ID, nil).Expect(t, http.StatusAccepted)
		j.waitGone(t, a, s.ID)
		// Bad input changed nothing.
		if afterList := a.servers(t); len(afterList) != len(beforeList) {
			t.Errorf("servers changed across refused requests: %+v -> %+v", beforeList, afterList)
		}
		sameMoney(t, "balance across refused requests (and one 64-char deploy)", a.billing(t).Balance, sub(t, beforeBal.Balance, microPH, 1))
	})

	t.Run("401", func(t *testing.T) {
		j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/servers"}).ExpectError(t, http.StatusUnauthorized, "")
		j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/billing", Header: http.Header{"Authorization": {"Basic YWdlbnQ6cHc="}}}).
			ExpectError(t, http.StatusUnauthorized, "")
		wrong := j.srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/login",
			Body: map[string]string{"email": a.email, "password": "wrong password"}})
		wrong.ExpectError(t, http.StatusUnauthorized, "")
		unknown := j.srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/login",
			Body: map[string]string{"email": "nobody@example.com", "password": "wrong password"}})
		unknown.ExpectError(t, http.StatusUnauthorized, "")
		if !bytes.Equal(wrong.Raw, unknown.Raw) {
			t.Errorf("unknown email and wrong password must answer alike:\n%s\n%s", wrong, unknown)
		}
		// Tokens: malformed, signature of another token, alg none.
		parts := strings.Split(a.token, ".")
		oparts := strings.Split(other.token, ".")
		enc := base64.RawURLEncoding
		none := enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
			enc.EncodeToString(fmt.Appendf(nil, `{"iss":"cryptovps","sub":%q,"exp":%d}`, a.id, time.Now().Add(240*time.Hour).Unix())) + "."
		for name, tok := range map[string]string{
			"malformed": "abc.def.ghi",
			"tampered":  parts[0] + "." + oparts[1] + "." + parts[2],
			"alg none":  none,
		} {
			r := j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/auth/me", Token: tok})
			if r.Status != http.StatusUnauthorized {
				t.Errorf("%s token: %s", name, r)
			}
		}
		// Operator routes never take a customer token.
		j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/admin/accounts/" + a.email, Token: a.token}).
			ExpectError(t, http.StatusUnauthorized, "")
	})

	t.Run("403 server limit", func(t *testing.T) {
		l := j.agent(t, "fleet@example.com")
		l.register(t)
		r := l.call(t, http.MethodPost, "/servers/bulk", map[string]any{"label": "fleet", "count": 10, "planId": micro, "regionId": "ams"}).
			Expect(t, http.StatusAccepted)
		var out struct {
			Servers []json.RawMessage `json:"servers"`
		}
		r.Decode(t, &out)
		if len(out.Servers) != 10 {
			t.Fatalf("bulk of 10 answered %d servers", len(out.Servers))
		}
		for i, raw := range out.Servers {
			requireKeys(t, "servers[]", raw, serverKeys...)
			var s serverObj
			_ = json.Unmarshal(raw, &s)
			if s.Status != "PROVISIONING" || s.Label != fmt.Sprintf("fleet-%d", i+1) {
				t.Fatalf("bulk server %d: %s", i, raw)
			}
			j.sawServer(t, l, s)
		}
		sameMoney(t, "balance after a bulk of 10", l.billing(t).Balance, sub(t, "10.00", microPH, 10))
		// The 11th server.
		e := l.call(t, http.MethodPost, "/servers", map[string]string{"label": "eleventh", "planId": micro, "regionId": "ams"}).
			ExpectError(t, http.StatusForbidden, "")
		if msg := strings.ToLower(e.Error); !strings.Contains(msg, "limit") || strings.Count(msg, "limit reached") > 1 {
			t.Errorf("the 403 must say, once, that it is the limit: %+v", e)
		}
		l.call(t, http.MethodPost, "/servers/bulk", map[string]any{"label": "more", "count": 1, "planId": micro, "regionId": "ams"}).
			ExpectError(t, http.StatusForbidden, e.Code)
		if n := len(l.servers(t)); n != 10 {
			t.Fatalf("%d servers after the refused 11th", n)
		}
		// The operator raises the limit with the CLI while the server runs.
		out2, err := j.srv.CLI(t, "accounts", "set-limit", l.email, "11", "--data-dir", j.srv.DataDir, "--server", j.srv.URL)
		if err != nil {
			t.Fatalf("accounts set-limit: %v", err)
		}
		if !strings.Contains(out2, `"serverLimit":11`) {
			t.Errorf("accounts set-limit printed %q", out2)
		}
		if lim := l.me(t).ServerLimit; lim != 11 {
			t.Errorf("serverLimit %d after set-limit 11", lim)
		}
		j.sawServer(t, l, l.deploy(t, "eleventh", micro, "ams"))
		l.call(t, http.MethodPost, "/servers", map[string]string{"label": "twelfth", "planId": micro, "regionId": "ams"}).
			ExpectError(t, http.StatusForbidden, e.Code)
	})

	t.Run("403 suspended", func(t *testing.T) {
		s := j.agent(t, "suspect@example.com")
		s.register(t)
		box := s.deploy(t, "suspect-box", micro, "ams")
		j.sawServer(t, s, box)
		cli := func(args ...string) (string, error) {
			return j.srv.CLI(t, append(append([]string{"accounts"}, args...), "--data-dir", j.srv.DataDir, "--server", j.srv.URL)...)
		}
		if _, err := cli("suspend", s.email); err == nil {
			t.Errorf("accounts suspend without --reason must fail")
		}
		if _, err := cli("suspend", "nobody@example.com", "--reason", "x"); err == nil {
			t.Errorf("accounts suspend of an unknown account must fail")
		}
		if _, err := j.srv.CLI(t, "accounts", "suspend", s.email, "--reason", "x", "--admin-token", "not-the-token", "--server", j.srv.URL); err == nil {
			t.Errorf("accounts suspend with a wrong operator token must fail")
		}
		out, err := cli("suspend", s.email, "--reason", "x")
		if err != nil {
			t.Fatalf("accounts suspend: %v", err)
		}
		if !strings.Contains(out, `"suspended":true`) {
			t.Errorf("accounts suspend printed %q", out)
		}
		e := s.call(t, http.MethodPost, "/servers", map[string]string{"label": "more", "planId": micro, "regionId": "ams"}).
			ExpectError(t, http.StatusForbidden, "")
		if !strings.Contains(strings.ToLower(e.Error), "suspend") {
			t.Errorf("the 403 must say the account is suspended: %+v", e)
		}
		s.call(t, http.MethodDelete, "/servers/"+box.ID, nil).ExpectError(t, http.StatusForbidden, e.Code)
		s.call(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "5.00", "currency": "ETH"}).ExpectError(t, http.StatusForbidden, e.Code)
		s.call(t, http.MethodPost, "/backups", map[string]string{"serverId": box.ID}).ExpectError(t, http.StatusForbidden, e.Code)
		// Reading is still fine.
		if list := s.servers(t); len(list) != 1 {
			t.Errorf("a suspended account reads its servers: %+v", list)
		}
		if !s.me(t).Suspended {
			t.Errorf("GET /auth/me does not show the hold")
		}
		if out, err := cli("show", s.email); err != nil || !strings.Contains(out, `"suspended":true`) {
			t.Errorf("accounts show: %q, %v", out, err)
		}
		if _, err := cli("suspend", s.email, "--reason", "again"); err == nil {
			t.Errorf("suspending twice must fail")
		}
		if _, err := cli("unsuspend", s.email, "--reason", "cleared"); err != nil {
			t.Fatalf("accounts unsuspend: %v", err)
		}
		j.sawServer(t, s, s.deploy(t, "after-hold", micro, "ams"))
	})

	t.Run("404", func(t *testing.T) {
		unknown := "0b7e6f1c-3c8e-4c55-9d3e-2f7b1a9c0d11"
		nf := a.call(t, http.MethodGet, "/servers/"+unknown, nil)
		nf.ExpectError(t, http.StatusNotFound, "")
		theirs := a.call(t, http.MethodGet, "/servers/"+otherSrv.ID, nil)
		theirs.ExpectError(t, http.StatusNotFound, "")
		if !bytes.Equal(nf.Raw, theirs.Raw) {
			t.Errorf("another account's server must look exactly like a missing one:\n%s\n%s", nf, theirs)
		}
		a.call(t, http.MethodDelete, "/servers/"+otherSrv.ID, nil).ExpectError(t, http.StatusNotFound, "")
		a.call(t, http.MethodPost, "/backups", map[string]string{"serverId": otherSrv.ID}).ExpectError(t, http.StatusNotFound, "")
		a.call(t, http.MethodPost, "/backups", map[string]string{"serverId": unknown}).ExpectError(t, http.StatusNotFound, "")
		a.call(t, http.MethodGet, "/servers/not-a-server-id", nil).ExpectError(t, http.StatusNotFound, "")
		a.call(t, http.MethodPost, "/backups/"+unknown+"/restore", nil).ExpectError(t, http.StatusNotFound, "")
		a.call(t, http.MethodDelete, "/backups/"+unknown, nil).ExpectError(t, http.StatusNotFound, "")
		// Another account's top-up can be neither seen nor paid.
		var tps struct {
			Topups []topupObj `json:"topups"`
		}
		a.call(t, http.MethodGet, "/billing/topups", nil).Expect(t, http.StatusOK).Decode(t, &tps)
		if len(tps.Topups) == 0 {
			t.Fatal("the first agent has no top-up")
		}
		other.call(t, http.MethodGet, "/billing/topups/"+tps.Topups[0].ID, nil).ExpectError(t, http.StatusNotFound, "")
		other.call(t, http.MethodPost, "/sandbox/topups/"+tps.Topups[0].ID+"/pay", nil).ExpectError(t, http.StatusNotFound, "")
		// And the other account's server is untouched.
		if got := other.server(t, otherSrv.ID); got.Status != "PROVISIONING" && got.Status != "ACTIVE" {
			t.Errorf("the other account's server is %s", got.Status)
		}
	})

	t.Run("409", func(t *testing.T) {
		s := a.deploy(t, "twice", micro, "ams")
		j.sawServer(t, a, s)
		a.call(t, http.MethodDelete, "/servers/"+s.ID, nil).Expect(t, http.StatusAccepted)
		a.call(t, http.MethodDelete, "/servers/"+s.ID, nil).ExpectError(t, http.StatusConflict, "")
		j.waitGone(t, a, s.ID)
		a.call(t, http.MethodDelete, "/servers/"+s.ID, nil).ExpectError(t, http.StatusConflict, "")
		for _, email := range []string{a.email, strings.ToUpper(a.email)} {
			j.srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/register",
				Body: map[string]string{"email": email, "password": "another password"}}).ExpectError(t, http.StatusConflict, "")
		}
		// The first registration stands.
		a.login(t)
	})

	t.Run("413", func(t *testing.T) {
		const limit = 64 << 10
		// A request of exactly 64 KiB is read (and refused on its content).
		exact := padJSON(t, `{"label":"bad label!","planId":"vc2-1c-1gb","regionId":"ams"}`, limit)
		a.call(t, http.MethodPost, "/servers", exact).ExpectError(t, http.StatusBadRequest, "")
		over := padJSON(t, `{"label":"big","planId":"vc2-1c-1gb","regionId":"ams"}`, limit+1)
		a.call(t, http.MethodPost, "/servers", over).ExpectError(t, http.StatusRequestEntityTooLarge, "")
		// Without a Content-Length (chunked) too.
		j.srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/servers", Token: a.token, Body: io.Reader(bytes.NewReader(over))}).
			ExpectError(t, http.StatusRequestEntityTooLarge, "")
		j.srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/register", Body: padJSON(t, `{"email":"big@example.com","password":"long enough"}`, 1<<20)}).
			ExpectError(t, http.StatusRequestEntityTooLarge, "")
		// Nothing was deployed or registered.
		for _, s := range a.servers(t) {
			if s.Label == "big" {
				t.Errorf("a 413 request deployed %+v", s)
			}
		}
		j.srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/login",
			Body: map[string]string{"email": "big@example.com", "password": "long enough"}}).ExpectError(t, http.StatusUnauthorized, "")
	})

	t.Run("422", func(t *testing.T) {
		i := j.agent(t, "careful@example.com")
		i.register(t)
		body := map[string]string{"label": "once", "planId": micro, "regionId": "ams"}
		r1 := i.call(t, http.MethodPost, "/servers", body, "Idempotency-Key", "deploy-once-1").Expect(t, http.StatusAccepted)
		s1 := decodeServer(t, r1, "server")
		j.sawServer(t, i, s1)
		r2 := i.call(t, http.MethodPost, "/servers", body, "Idempotency-Key", "deploy-once-1").Expect(t, http.StatusAccepted)
		if s2 := decodeServer(t, r2, "server"); s2.ID != s1.ID || !bytes.Equal(r1.Raw, r2.Raw) {
			t.Errorf("a replay must answer the first answer:\n%s\n%s", r1, r2)
		}
		if r2.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("a replay is marked Idempotent-Replayed: true: %v", r2.Header)
		}
		other := map[string]string{"label": "twice", "planId": micro, "regionId": "ams"}
		i.call(t, http.MethodPost, "/servers", other, "Idempotency-Key", "deploy-once-1").ExpectError(t, http.StatusUnprocessableEntity, "")
		if n := len(i.servers(t)); n != 1 {
			t.Errorf("%d servers after one deploy, one replay and one refusal", n)
		}
		sameMoney(t, "balance after one idempotent deploy", i.billing(t).Balance, sub(t, "10.00", microPH, 1))
		// Keys are scoped to the account: the same key elsewhere is a new deploy.
		r3 := a.call(t, http.MethodPost, "/servers", body, "Idempotency-Key", "deploy-once-1").Expect(t, http.StatusAccepted)
		s3 := decodeServer(t, r3, "server")
		j.sawServer(t, a, s3)
		if s3.ID == s1.ID || r3.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("another account's key replayed: %s", r3)
		}
		a.call(t, http.MethodDelete, "/servers/"+s3.ID, nil).Expect(t, http.StatusAccepted)
	})

	t.Run("30 concurrent deploys", func(t *testing.T) {
		c := j.agent(t, "racer@example.com")
		c.register(t)
		const n = 30
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for k := range n {
			wg.Go(func() {
				r, err := j.srv.Client().Send(apiclient.Request{Method: http.MethodPost, Path: "/servers", Token: c.token,
					Body: map[string]string{"label": fmt.Sprintf("racer-%d", k), "planId": micro, "regionId": "ams"}})
				if err == nil {
					statuses[k] = r.Status
				}
			})
		}
		wg.Wait()
		count := map[int]int{}
		for _, st := range statuses {
			count[st]++
		}
		if count[http.StatusAccepted] != 10 || count[http.StatusForbidden] != n-10 {
			t.Fatalf("30 concurrent deploys against a limit of 10 answered %v, want 10 x 202 and 20 x 403", count)
		}
		list := c.servers(t)
		if len(list) != 10 {
			t.Fatalf("%d servers after 30 concurrent deploys", len(list))
		}
		for _, s := range list {
			j.sawServer(t, c, s)
		}
		sameMoney(t, "balance after 10 accepted concurrent deploys", c.billing(t).Balance, sub(t, "10.00", microPH, 10))
	})

	t.Run("failed deploy refunded", func(t *testing.T) {
		f := j.agent(t, "unlucky@example.com")
		f.register(t)
		s := f.deploy(t, "sandbox-fail-deploy-demo", micro, "ams")
		j.sawServer(t, f, s)
		sameMoney(t, "balance while the doomed deploy runs", f.billing(t).Balance, sub(t, "10.00", microPH, 1))
		s = f.waitFor(t, s.ID, "ERROR")
		if s.IPv4 != nil {
			t.Errorf("a failed server has an address: %+v", s)
		}
		b := f.billing(t)
		if b.Balance != "10.00" && dec(t, b.Balance).Cmp(dec(t, "10.00")) != 0 {
			t.Fatalf("a failed deploy must be refunded: balance %s", b.Balance)
		}
		if dec(t, b.HourlySpend).Sign() != 0 {
			t.Fatalf("a failed server is billed: %+v", b)
		}
	})
}

// padJSON pads a JSON object with spaces to exactly size bytes.
func padJSON(t testing.TB, obj string, size int) []byte {
	t.Helper()
	if len(obj) > size {
		t.Fatalf("cannot pad %d bytes to %d", len(obj), size)
	}
	return append([]byte(obj), bytes.Repeat([]byte(" "), size-len(obj))...)
}

// ---------------------------------------------------------------------------

func (j *journey) billingAcrossTime(t *testing.T) {
	b := j.agent(t, "billed@example.com")
	b.register(t)
	p := j.agent(t, "spender@example.com")
	p.register(t)

	var bs []serverObj
	for _, label := range []string{"billed-1", "billed-2"} {
		s := b.deploy(t, label, micro, "waw")
		j.sawServer(t, b, s)
		bs = append(bs, s)
	}
	r := p.call(t, http.MethodPost, "/servers/bulk", map[string]any{"label": "beast", "count": 10, "planId": beast, "regionId": "fra"}).
		Expect(t, http.StatusAccepted)
	var bulk struct {
		Servers []serverObj `json:"servers"`
	}
	r.Decode(t, &bulk)
	for _, s := range bulk.Servers {
		j.sawServer(t, p, s)
	}
	// Each account has its own sandbox clock: each moves its own.
	for _, s := range bs {
		j.sawServer(t, b, b.waitFor(t, s.ID, "ACTIVE"))
	}
	for _, s := range bulk.Servers {
		p.waitFor(t, s.ID, "ACTIVE")
	}
	spenderIPs := map[string]string{}
	for _, s := range p.servers(t) {
		if s.Status != "ACTIVE" {
			t.Fatalf("spender's server %s is %s", s.ID, s.Status)
		}
		j.sawServer(t, p, s)
		spenderIPs[s.ID] = *s.IPv4
	}

	b0 := b.billing(t)
	sameMoney(t, "balance with two servers in their first hour", b0.Balance, sub(t, "10.00", microPH, 2))
	sameMoney(t, "hourlySpend of two micro servers", b0.HourlySpend, mul(t, microPH, 2))
	p0 := p.billing(t)
	sameMoney(t, "spender's balance after a bulk of 10 Beasts", p0.Balance, sub(t, "10.00", beastPH, 10))

	oldToken, spenderToken := b.token, p.token
	b.advance(t, 3*3600)
	// Tokens expire on the account's sandbox clock: the agent logs in again
	// (call does). Another account's clock, and tokens, did not move.
	j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/billing", Token: oldToken}).ExpectError(t, http.StatusUnauthorized, "token_expired")
	j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/billing", Token: spenderToken}).Expect(t, http.StatusOK)
	sameMoney(t, "spender's balance after another account's clock moved 3 hours", p.billing(t).Balance, dec(t, p0.Balance))
	p.advance(t, 3*3600)

	b1 := b.billing(t)
	sameMoney(t, "balance 3 hours later", b1.Balance, sub(t, b0.Balance, microPH, 3*2))
	sameMoney(t, "hourlySpend 3 hours later", b1.HourlySpend, dec(t, b0.HourlySpend))
	sameMoney(t, "spender's balance 3 hours later", p.billing(t).Balance, sub(t, p0.Balance, beastPH, 3*10))

	// Three more hours: the spender pays hours 4 and 5, cannot pay hour 6,
	// and its servers are suspended then.
	b.advance(t, 3*3600)
	p.advance(t, 3*3600)
	sameMoney(t, "balance 6 hours later", b.billing(t).Balance, sub(t, b0.Balance, microPH, 6*2))
	pb := p.billing(t)
	sameMoney(t, "spender's balance when the money ran out", pb.Balance, sub(t, p0.Balance, beastPH, 5*10))
	if dec(t, pb.HourlySpend).Sign() != 0 {
		t.Errorf("suspended servers are not billed, yet hourlySpend is %s", pb.HourlySpend)
	}
	list := p.servers(t)
	for _, s := range list {
		if s.Status != "SUSPENDED" {
			t.Fatalf("spender's server when the money ran out: %+v", s)
		}
	}

	// 402: destroy one (suspended servers hold a slot) and ask for a Beast
	// the balance (0.16) does not cover.
	p.call(t, http.MethodDelete, "/servers/"+list[0].ID, nil).Expect(t, http.StatusAccepted)
	j.waitGone(t, p, list[0].ID) // DESTROYING no longer holds a slot; gone for good once DESTROYED
	e := p.call(t, http.MethodPost, "/servers", map[string]string{"label": "one-more", "planId": beast, "regionId": "fra"}).
		ExpectError(t, http.StatusPaymentRequired, "")
	p.call(t, http.MethodPost, "/servers/bulk", map[string]any{"label": "more", "count": 1, "planId": beast, "regionId": "fra"}).
		ExpectError(t, http.StatusPaymentRequired, e.Code)
	sameMoney(t, "spender's balance after the 402s", p.billing(t).Balance, sub(t, p0.Balance, beastPH, 5*10))

	// A paid top-up brings the suspended servers back and bills their hour.
	var tp struct {
		Topup topupObj `json:"topup"`
	}
	p.call(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "25.00", "currency": "USDC"}).
		Expect(t, http.StatusCreated).Decode(t, &tp)
	p.call(t, http.MethodPost, "/sandbox/topups/"+tp.Topup.ID+"/pay", nil).Expect(t, http.StatusOK)
	// 0.16 + 25.00 - 9 x 0.164: the 9 remaining servers pay the hour they resume in.
	resumed := new(big.Rat).Add(sub(t, p0.Balance, beastPH, 5*10+9), dec(t, "25.00"))
	sameMoney(t, "spender's balance after the top-up resumed 9 servers", p.billing(t).Balance, resumed)
	for _, s := range p.servers(t) {
		if s.ID == list[0].ID {
			continue
		}
		if s.Status != "ACTIVE" || s.IPv4 == nil || *s.IPv4 != spenderIPs[s.ID] {
			t.Errorf("after the top-up the server must be ACTIVE again on its address %s: %+v", spenderIPs[s.ID], s)
		}
	}
}

// ---------------------------------------------------------------------------

func (j *journey) backupsLifecycle(t *testing.T) {
	k := j.agent(t, "keeper@example.com")
	k.register(t)
	orig := k.deploy(t, "k-box", micro, "sgp")
	j.sawServer(t, k, orig)
	orig = k.waitFor(t, orig.ID, "ACTIVE")
	j.sawServer(t, k, orig)
	balBefore := k.billing(t).Balance

	// Only an ACTIVE server of yours can be backed up.
	tmp := k.deploy(t, "k-tmp", micro, "sgp")
	j.sawServer(t, k, tmp)
	k.call(t, http.MethodPost, "/backups", map[string]string{"serverId": tmp.ID}).ExpectError(t, http.StatusConflict, "")
	k.call(t, http.MethodDelete, "/servers/"+tmp.ID, nil).Expect(t, http.StatusAccepted)
	k.call(t, http.MethodPost, "/backups", map[string]string{"serverId": "not-an-id"}).ExpectError(t, http.StatusBadRequest, "")

	r := k.call(t, http.MethodPost, "/backups", map[string]string{"serverId": orig.ID}).Expect(t, http.StatusAccepted)
	bk := decodeBackup(t, r)
	if bk.Status != "PENDING" || bk.ServerID != orig.ID || bk.Label != "k-box" || bk.Region != "sgp" || bk.Plan != micro {
		t.Fatalf("new backup: %s", r)
	}
	created, err1 := time.Parse(time.RFC3339, bk.CreatedAt)
	expires, err2 := time.Parse(time.RFC3339, bk.ExpiresAt)
	if err1 != nil || err2 != nil || expires.Sub(created) != 7*24*time.Hour {
		t.Fatalf("expiresAt must be createdAt + 7 days: %s", r)
	}
	if list := k.backups(t); len(list) != 1 || list[0].ID != bk.ID || list[0].Status != "PENDING" {
		t.Fatalf("GET /backups after the request: %+v", list)
	}
	// Not restorable while PENDING; not visible to anyone else.
	k.call(t, http.MethodPost, "/backups/"+bk.ID+"/restore", nil).ExpectError(t, http.StatusConflict, "")
	j.agents[0].call(t, http.MethodPost, "/backups/"+bk.ID+"/restore", nil).ExpectError(t, http.StatusNotFound, "")
	j.agents[0].call(t, http.MethodDelete, "/backups/"+bk.ID, nil).ExpectError(t, http.StatusNotFound, "")
	for _, other := range j.agents[0].backups(t) {
		if other.ID == bk.ID {
			t.Fatalf("another account lists the backup")
		}
	}

	k.advance(t, 180)
	if list := k.backups(t); len(list) != 1 || list[0].Status != "AVAILABLE" {
		t.Fatalf("GET /backups 3 minutes later: %+v", list)
	}
	// Backups are free.
	sameMoney(t, "balance across a backup", k.billing(t).Balance, sub(t, balBefore, microPH, 1)) // k-tmp's first hour

	// The backup survives its server.
	k.call(t, http.MethodDelete, "/servers/"+orig.ID, nil).Expect(t, http.StatusAccepted)
	j.waitGone(t, k, orig.ID)
	j.waitGone(t, k, tmp.ID)
	if list := k.backups(t); len(list) != 1 || list[0].Status != "AVAILABLE" {
		t.Fatalf("GET /backups after the server was destroyed: %+v", list)
	}

	// Restore: a deploy with its first hour charged, Idempotency-Key honoured.
	beforeRestore := k.billing(t).Balance
	r = k.call(t, http.MethodPost, "/backups/"+bk.ID+"/restore", nil, "Idempotency-Key", "restore-k-box").Expect(t, http.StatusAccepted)
	restored := decodeServer(t, r, "server")
	j.sawServer(t, k, restored)
	if restored.ID == orig.ID || restored.Status != "PROVISIONING" || restored.Plan != micro || restored.Region != "sgp" || restored.Label != "k-box" {
		t.Fatalf("restore answered %s", r)
	}
	again := k.call(t, http.MethodPost, "/backups/"+bk.ID+"/restore", nil, "Idempotency-Key", "restore-k-box").Expect(t, http.StatusAccepted)
	if decodeServer(t, again, "server").ID != restored.ID || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("a replayed restore must answer the same server: %s", again)
	}
	sameMoney(t, "balance after the restore", k.billing(t).Balance, sub(t, beforeRestore, microPH, 1))
	restored = k.waitFor(t, restored.ID, "ACTIVE")
	j.sawServer(t, k, restored)
	if restored.IPv4 == nil || *restored.IPv4 == *orig.IPv4 {
		t.Fatalf("the restored server must get a new IP: %v vs %v", restored.IPv4, *orig.IPv4)
	}

	// Restore is a deploy: the server limit applies.
	cli := func(args ...string) {
		t.Helper()
		if _, err := j.srv.CLI(t, append(append([]string{"accounts"}, args...), "--data-dir", j.srv.DataDir, "--server", j.srv.URL)...); err != nil {
			t.Fatalf("accounts %v: %v", args, err)
		}
	}
	cli("set-limit", k.email, "1")
	k.call(t, http.MethodPost, "/backups/"+bk.ID+"/restore", nil).ExpectError(t, http.StatusForbidden, "server_limit")
	cli("set-limit", k.email, "10")

	// A backup of a "sandbox-fail-backup" server fails: ERROR, listed, not restorable.
	doomed := k.deploy(t, "sandbox-fail-backup-k", micro, "sgp")
	j.sawServer(t, k, doomed)
	doomed = k.waitFor(t, doomed.ID, "ACTIVE")
	j.sawServer(t, k, doomed)
	failed := decodeBackup(t, k.call(t, http.MethodPost, "/backups", map[string]string{"serverId": doomed.ID}).Expect(t, http.StatusAccepted))
	k.advance(t, 180)
	fb, ok := find(k.backups(t), func(b backupObj) bool { return b.ID == failed.ID })
	if !ok || fb.Status != "ERROR" {
		t.Fatalf("a sandbox-fail-backup backup must end in ERROR: %+v", k.backups(t))
	}
	k.call(t, http.MethodPost, "/backups/"+failed.ID+"/restore", nil).ExpectError(t, http.StatusConflict, "")
	k.call(t, http.MethodDelete, "/backups/"+failed.ID, nil).Expect(t, http.StatusAccepted)
	k.call(t, http.MethodDelete, "/servers/"+doomed.ID, nil).Expect(t, http.StatusAccepted)
	j.waitGone(t, k, doomed.ID)

	// DELETE /backups/:id: EXPIRED at once (no longer restorable), still
	// listed for 7 days; a second delete is 409.
	r = k.call(t, http.MethodPost, "/backups", map[string]string{"serverId": restored.ID}).Expect(t, http.StatusAccepted)
	second := decodeBackup(t, r)
	r = k.call(t, http.MethodDelete, "/backups/"+second.ID, nil).Expect(t, http.StatusAccepted)
	if !bytes.Equal(bytes.TrimSpace(r.Raw), []byte(`{"ok":true}`)) {
		t.Errorf(`DELETE /backups/:id answered %s, want {"ok":true}`, r)
	}
	statuses := func() map[string]string {
		out := map[string]string{}
		for _, b := range k.backups(t) {
			out[b.ID] = b.Status
		}
		return out
	}
	if st := statuses(); st[bk.ID] != "AVAILABLE" || st[second.ID] != "EXPIRED" || st[failed.ID] != "EXPIRED" || len(st) != 3 {
		t.Fatalf("GET /backups after deleting the second: %v", st)
	}
	k.call(t, http.MethodDelete, "/backups/"+second.ID, nil).ExpectError(t, http.StatusConflict, "invalid_state")
	k.call(t, http.MethodPost, "/backups/"+second.ID+"/restore", nil).ExpectError(t, http.StatusConflict, "invalid_state")

	// Seven days later the backup has expired: EXPIRED, no longer
	// restorable; the ones deleted a week ago are gone.
	beforeWeek := k.billing(t).Balance
	k.advance(t, 7*24*3600)
	if st := statuses(); st[bk.ID] != "EXPIRED" || len(st) != 1 {
		t.Fatalf("GET /backups a week later: %v", st)
	}
	k.call(t, http.MethodGet, "/backups/"+second.ID, nil).ExpectError(t, http.StatusNotFound, "not_found")
	k.call(t, http.MethodPost, "/backups/"+bk.ID+"/restore", nil).ExpectError(t, http.StatusConflict, "invalid_state")
	k.call(t, http.MethodDelete, "/backups/"+bk.ID, nil).ExpectError(t, http.StatusConflict, "invalid_state")
	// The restored server was billed every one of the 168 hours.
	sameMoney(t, "balance a week later", k.billing(t).Balance, sub(t, beforeWeek, microPH, 168))
	if s := k.server(t, restored.ID); s.Status != "ACTIVE" {
		t.Fatalf("the restored server is %s a week later", s.Status)
	}
}
