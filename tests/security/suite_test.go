package security

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cryptovps/cryptovps/tests/apiclient"
	"github.com/cryptovps/cryptovps/tests/binary"
)

// The secrets every server of the suite runs with: known, so that the
// token tests can sign with the real one.
const (
	jwtSecret     = "5c0b8e2f7a9d4c1e6b3a0f8d2e7c9b4a1f6e3d0c8b5a2f9e7d4c1b8a5f2e9d6c"
	operatorToken = "b7e4a1d8c5f2e9b6a3d0c7f4e1b8a5d2c9f6e3b0a7d4c1f8e5b2a9d6c3f0e7b4"
	sshKey        = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL7S52dIvTk7Te8YlVUXy2cXHg2jXj2Xch4Ij+BQY0nc security@example.com"
)

// server is one running `cryptovps serve` in the sandbox.
type server struct {
	*binary.Process
	seq atomic.Int64
}

// start runs the binary with the suite's secrets and args; with admin the
// operator API has a listener of its own.
func start(t *testing.T, admin bool, args ...string) *server {
	t.Helper()
	args = append([]string{"--jwt-secret", jwtSecret, "--admin-token", operatorToken, "--rate-limit", "1000000"}, args...)
	return &server{Process: binary.Start(t, binary.Options{Args: args, AdminListener: admin})}
}

// send sends r; an exchange that breaks the OpenAPI document, no answer
// or a 5xx fails t (safe from any goroutine).
func (s *server) send(t testing.TB, r apiclient.Request) *apiclient.Answer {
	t.Helper()
	a := s.Client().Do(t, r)
	if a.Status >= 500 || a.Status == 0 {
		t.Errorf("no answer or a server error: %s", a)
	}
	return a
}

// operator sends r with the operator token, to wherever the operator API
// is served.
func (s *server) operator(t testing.TB, method, path string) *apiclient.Answer {
	t.Helper()
	c := s.Client()
	if s.AdminClient() != nil {
		c = s.AdminClient()
	}
	return c.Do(t, apiclient.Request{Method: method, Path: path, Token: operatorToken})
}

// exists says whether an account with email exists, asking the operator
// API (a 429 or a refused register must have created nothing).
func (s *server) exists(t testing.TB, email string) bool {
	t.Helper()
	a := s.operator(t, http.MethodGet, "/admin/accounts/"+email)
	if a.Status != http.StatusOK && a.Status != http.StatusNotFound {
		t.Fatalf("account lookup: %s", a)
	}
	return a.Status == http.StatusOK
}

// account is a registered customer and its access token.
type account struct {
	s                *server
	email, id, token string
}

func (s *server) email(prefix string) string {
	return fmt.Sprintf("%s%d@example.com", prefix, s.seq.Add(1))
}

// register opens an account (201).
func (s *server) register(t testing.TB) *account {
	t.Helper()
	email := s.email("agent")
	r := s.send(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/register",
		Body: map[string]string{"email": email, "password": "correct horse battery"}}).Expect(t, http.StatusCreated)
	return &account{s: s, email: email, id: r.Str("user.id"), token: r.Str("accessToken")}
}

// do sends a request as a.
func (a *account) do(t testing.TB, method, path string, body any, header ...string) *apiclient.Answer {
	t.Helper()
	return a.s.send(t, apiclient.Request{Method: method, Path: path, Token: a.token, Body: body,
		Header: apiclient.Header(t, header...)})
}

// deploy deploys one server with the suite's key and returns its id.
func (a *account) deploy(t testing.TB) string {
	t.Helper()
	return a.do(t, http.MethodPost, "/servers", map[string]any{"label": "web", "planId": "vc2-1c-1gb", "regionId": "ams",
		"sshKeys": []string{sshKey}}).Expect(t, http.StatusAccepted).Str("server.id")
}

// advance moves the sandbox clock (200).
func (a *account) advance(t testing.TB, seconds int) {
	t.Helper()
	a.do(t, http.MethodPost, "/sandbox/clock/advance", map[string]int{"seconds": seconds}).Expect(t, http.StatusOK)
}

// topup opens a top-up of amount and returns its id.
func (a *account) topup(t testing.TB, amount string) string {
	t.Helper()
	return a.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": amount, "currency": "BTC"}).
		Expect(t, http.StatusCreated).Str("topup.id")
}

// state is everything an account owns, as its owner reads it. GET
// /servers/:id is left out on purpose: showing a root password the first
// time is itself recorded.
type state struct {
	Balance, HourlySpend                                     string
	Ledger, Servers, Backups, Topups, SSHKeys, LimitRequests string
}

func (a *account) state(t testing.TB) state {
	t.Helper()
	b := a.do(t, http.MethodGet, "/billing", nil).Expect(t, http.StatusOK)
	st := state{Balance: b.Str("balance"), HourlySpend: b.Str("hourlySpend")}
	list := func(path, key string) string {
		v, _ := a.do(t, http.MethodGet, path, nil).Expect(t, http.StatusOK).Get(key)
		j, _ := json.Marshal(v)
		return string(j)
	}
	st.Ledger = list("/billing/ledger?limit=100", "transactions")
	st.Servers = list("/servers", "servers")
	st.Backups = list("/backups", "backups")
	st.Topups = list("/billing/topups", "topups")
	st.SSHKeys = list("/ssh-keys", "sshKeys")
	st.LimitRequests = list("/limit-requests", "limitRequests")
	return st
}

// unchanged fails t if a's state is no longer before.
func (a *account) unchanged(t testing.TB, before state, after string) {
	t.Helper()
	if now := a.state(t); now != before {
		t.Errorf("%s changed %s's account:\n before %+v\n after  %+v", after, a.email, before, now)
	}
}

// count is a tally of answers by status, safe for concurrent use.
type count struct {
	mu sync.Mutex
	by map[int]int
}

func (c *count) add(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.by == nil {
		c.by = map[int]int{}
	}
	c.by[status]++
}

// parallel runs fn n times at once, each after all n are ready, and
// tallies the statuses.
func parallel(n int, fn func() *apiclient.Answer) map[int]int {
	var c count
	var ready, wg sync.WaitGroup
	gate := make(chan struct{})
	ready.Add(n)
	for range n {
		wg.Go(func() {
			ready.Done()
			<-gate
			c.add(fn().Status)
		})
	}
	ready.Wait()
	close(gate)
	wg.Wait()
	return c.by
}

func itoa(i int) string { return fmt.Sprint(i) }

// money says whether two decimal amounts are equal, however each is
// written ("0.10", "0.1").
func money(a, b string) bool {
	x, okX := new(big.Rat).SetString(a)
	y, okY := new(big.Rat).SetString(b)
	return okX && okY && x.Cmp(y) == 0
}
