package e2e

import (
	"encoding/json"
	"math/big"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/tests/apiclient"
)

// agent is a client that follows the guide literally: it keeps its
// credentials, sends its bearer token everywhere, and on a 401 logs in
// again and retries the request once.
type agent struct {
	srv      *server
	email    string
	password string
	token    string
	id       string
}

type userObj struct {
	ID          string `json:"id"`
	Email       string `json:"email"`
	Balance     string `json:"balance"`
	ServerLimit int    `json:"serverLimit"`
	Suspended   bool   `json:"suspended"`
	CreatedAt   string `json:"createdAt"`
}

type serverObj struct {
	ID          string   `json:"id"`
	Label       string   `json:"label"`
	Status      string   `json:"status"`
	Region      string   `json:"region"`
	Plan        string   `json:"plan"`
	IPv4        *string  `json:"ipv4"`
	HourlyPrice string   `json:"hourlyPrice"`
	CreatedAt   string   `json:"createdAt"`
	SSHKeys     []string `json:"sshKeys"`
	SSHUser     string   `json:"sshUser"`
	SSHPort     int      `json:"sshPort"`
	// HostKeyFingerprints are null until ACTIVE (and with a cloud that
	// does not tell them).
	HostKeyFingerprints []string `json:"hostKeyFingerprints"`
}

type backupObj struct {
	ID        string `json:"id"`
	ServerID  string `json:"serverId"`
	Label     string `json:"label"`
	Status    string `json:"status"`
	Region    string `json:"region"`
	Plan      string `json:"plan"`
	CreatedAt string `json:"createdAt"`
	ExpiresAt string `json:"expiresAt"`
}

type topupObj struct {
	ID         string  `json:"id"`
	Status     string  `json:"status"`
	Amount     string  `json:"amount"`
	Currency   string  `json:"currency"`
	PayAddress string  `json:"payAddress"`
	CreatedAt  string  `json:"createdAt"`
	PaidAt     *string `json:"paidAt"`
}

type billingObj struct {
	Balance     string `json:"balance"`
	HourlySpend string `json:"hourlySpend"`
}

var serverKeys = []string{"id", "label", "status", "region", "plan", "ipv4", "hourlyPrice", "createdAt", "sshUser", "sshPort", "hostKeyFingerprints"}
var backupKeys = []string{"id", "serverId", "label", "status", "region", "plan", "createdAt", "expiresAt"}

func newAgent(srv *server, email string) *agent {
	return &agent{srv: srv, email: email, password: "correct horse " + email}
}

// register opens the account: 201 with a token and the user.
func (a *agent) register(t testing.TB) userObj {
	t.Helper()
	r := a.srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/register",
		Body: map[string]string{"email": a.email, "password": a.password}}).Expect(t, http.StatusCreated)
	return a.takeAuth(t, r)
}

// login gets a fresh token: 200 with a token and the user.
func (a *agent) login(t testing.TB) userObj {
	t.Helper()
	r := a.srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/login",
		Body: map[string]string{"email": a.email, "password": a.password}}).Expect(t, http.StatusOK)
	return a.takeAuth(t, r)
}

func (a *agent) takeAuth(t testing.TB, r *apiclient.Answer) userObj {
	t.Helper()
	var out struct {
		AccessToken string          `json:"accessToken"`
		User        json.RawMessage `json:"user"`
	}
	r.Decode(t, &out)
	if out.AccessToken == "" {
		t.Fatalf("no accessToken: %s", r)
	}
	requireKeys(t, "user", out.User, "id", "email", "balance")
	var u userObj
	if err := json.Unmarshal(out.User, &u); err != nil {
		t.Fatal(err)
	}
	if u.Email != a.email {
		t.Fatalf("user email %q, want %q", u.Email, a.email)
	}
	if a.id != "" && u.ID != a.id {
		t.Fatalf("user id changed from %s to %s", a.id, u.ID)
	}
	a.token, a.id = out.AccessToken, u.ID
	return u
}

// call is an authenticated request; on a 401 the agent logs in again and
// retries once, as the guide tells it to.
func (a *agent) call(t testing.TB, method, path string, body any, header ...string) *apiclient.Answer {
	t.Helper()
	req := apiclient.Request{Method: method, Path: path, Body: body, Token: a.token, Header: apiclient.Header(t, header...)}
	r := a.srv.do(t, req)
	if r.Status == http.StatusUnauthorized {
		a.login(t)
		req.Token = a.token
		r = a.srv.do(t, req)
	}
	return r
}

func (a *agent) billing(t testing.TB) billingObj {
	t.Helper()
	var b billingObj
	a.call(t, http.MethodGet, "/billing", nil).Expect(t, http.StatusOK).Decode(t, &b)
	isMoney(t, "balance", b.Balance)
	isMoney(t, "hourlySpend", b.HourlySpend)
	return b
}

func (a *agent) me(t testing.TB) userObj {
	t.Helper()
	var out struct {
		User userObj `json:"user"`
	}
	a.call(t, http.MethodGet, "/auth/me", nil).Expect(t, http.StatusOK).Decode(t, &out)
	return out.User
}

// deploy asks for one server and checks the 202 answer.
func (a *agent) deploy(t testing.TB, label, plan, region string) serverObj {
	t.Helper()
	r := a.call(t, http.MethodPost, "/servers", map[string]string{"label": label, "planId": plan, "regionId": region}).
		Expect(t, http.StatusAccepted)
	s := decodeServer(t, r, "server")
	if s.Status != "PROVISIONING" || s.IPv4 != nil || s.Label != label || s.Plan != plan || s.Region != region {
		t.Fatalf("a fresh deploy must be PROVISIONING without ipv4 and as asked: %s", r)
	}
	return s
}

func decodeServer(t testing.TB, r *apiclient.Answer, key string) serverObj {
	t.Helper()
	return decodeObj[serverObj](t, r, key, serverKeys)
}

// decodeObj decodes the object at key of the answer, which must have every
// one of keys.
func decodeObj[T any](t testing.TB, r *apiclient.Answer, key string, keys []string) T {
	t.Helper()
	var out map[string]json.RawMessage
	r.Decode(t, &out)
	raw, ok := out[key]
	if !ok {
		t.Fatalf("no %q in %s", key, r)
	}
	requireKeys(t, key, raw, keys...)
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// decodeList decodes the list at key of the answer to GET /key: a list,
// possibly empty, whose objects have every one of keys.
func decodeList[T any](t testing.TB, r *apiclient.Answer, key string, keys []string) []T {
	t.Helper()
	var out map[string]json.RawMessage
	r.Decode(t, &out)
	var raws []json.RawMessage
	if err := json.Unmarshal(out[key], &raws); err != nil || raws == nil {
		t.Fatalf("GET /%s must answer a (possibly empty) list: %s", key, r)
	}
	list := make([]T, len(raws))
	for i, raw := range raws {
		requireKeys(t, key+"[]", raw, keys...)
		if err := json.Unmarshal(raw, &list[i]); err != nil {
			t.Fatal(err)
		}
	}
	return list
}

func (a *agent) server(t testing.TB, id string) serverObj {
	t.Helper()
	return decodeServer(t, a.call(t, http.MethodGet, "/servers/"+id, nil).Expect(t, http.StatusOK), "server")
}

func (a *agent) servers(t testing.TB) []serverObj {
	t.Helper()
	return decodeList[serverObj](t, a.call(t, http.MethodGet, "/servers", nil).Expect(t, http.StatusOK), "servers", serverKeys)
}

func (a *agent) backups(t testing.TB) []backupObj {
	t.Helper()
	return decodeList[backupObj](t, a.call(t, http.MethodGet, "/backups", nil).Expect(t, http.StatusOK), "backups", backupKeys)
}

func decodeBackup(t testing.TB, r *apiclient.Answer) backupObj {
	t.Helper()
	return decodeObj[backupObj](t, r, "backup", backupKeys)
}

// advance moves the sandbox clock and returns the new sandbox time.
func (a *agent) advance(t testing.TB, seconds int64) time.Time {
	t.Helper()
	r := a.call(t, http.MethodPost, "/sandbox/clock/advance", map[string]int64{"seconds": seconds}).Expect(t, http.StatusOK)
	var out struct {
		Now string `json:"now"`
	}
	r.Decode(t, &out)
	now, err := time.Parse(time.RFC3339, out.Now)
	if err != nil {
		t.Fatalf("advance answered a bad time: %s", r)
	}
	return now
}

// waitFor polls GET /servers/:id like the guide says, moving the sandbox
// clock a minute instead of sleeping between polls, until the status is
// want.
func (a *agent) waitFor(t testing.TB, id, want string) serverObj {
	t.Helper()
	var s serverObj
	for range 6 {
		s = a.server(t, id)
		if s.Status == want {
			return s
		}
		switch s.Status {
		case "PROVISIONING", "DESTROYING":
			a.advance(t, 60)
		default:
			t.Fatalf("server %s is %s while waiting for %s", id, s.Status, want)
		}
	}
	t.Fatalf("server %s still %s after 6 polls, want %s", id, s.Status, want)
	return s
}

func find[T any](list []T, match func(T) bool) (T, bool) {
	for _, v := range list {
		if match(v) {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// ---------------------------------------------------------------------------
// Money is compared as exact decimals, never as floats.

var (
	moneyPattern   = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.[0-9]+)?$`)
	decimalPattern = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
)

func isMoney(t testing.TB, what, s string) {
	t.Helper()
	if !moneyPattern.MatchString(s) {
		t.Fatalf("%s %q is not a plain non-negative decimal string", what, s)
	}
}

func dec(t testing.TB, s string) *big.Rat {
	t.Helper()
	if !decimalPattern.MatchString(s) {
		t.Fatalf("%q is not a decimal string", s)
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("%q is not a decimal", s)
	}
	return r
}

// sameMoney fails unless got equals want as decimals.
func sameMoney(t testing.TB, what, got string, want *big.Rat) {
	t.Helper()
	if dec(t, got).Cmp(want) != 0 {
		t.Fatalf("%s is %s, want %s", what, got, want.FloatString(3))
	}
}

// sub is a - price x times, exactly.
func sub(t testing.TB, a string, price string, times int) *big.Rat {
	t.Helper()
	p := new(big.Rat).Mul(dec(t, price), big.NewRat(int64(times), 1))
	return new(big.Rat).Sub(dec(t, a), p)
}

func mul(t testing.TB, price string, times int) *big.Rat {
	t.Helper()
	return new(big.Rat).Mul(dec(t, price), big.NewRat(int64(times), 1))
}

func add(t testing.TB, a, b string) *big.Rat {
	t.Helper()
	return new(big.Rat).Add(dec(t, a), dec(t, b))
}
