package contract

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/app/work"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltcreds"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltkeys"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/tests/apiclient"
	"github.com/cryptovps/cryptovps/upstream/btcpay"
	"github.com/cryptovps/cryptovps/upstream/btcpay/btcpayfake"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// Sandbox delays of every stack: short enough to reason about, driven only by
// POST /sandbox/clock/advance.
const (
	provisionDelay = 60 * time.Second
	destroyDelay   = 5 * time.Second
	backupDelay    = 3 * time.Minute
)

// config is what a test may change about its stack. The zero value is the
// product's sandbox defaults, except rate limits, which are high so that
// tests sharing a stack do not throttle each other.
type config struct {
	// SignupCredit is credited to new accounts ("10.00" when empty).
	SignupCredit string
	// ServerLimit is a new account's limit (10 when zero).
	ServerLimit int
	// AccountRate and AuthRate are requests per minute (1e6 when zero).
	AccountRate, AuthRate int
	// TrustedProxies are CIDRs allowed to set X-Forwarded-For.
	TrustedProxies []string
	// NoSandbox builds the API without the sandbox clock: /sandbox/* is gone.
	NoSandbox bool
	// TokenTTL is the access token lifetime (15 min when zero).
	TokenTTL time.Duration
	// DataDir is where the event store and the sandbox cloud live (a fresh
	// t.TempDir() when empty); reopening a DataDir is a restart.
	DataDir string
	// JWTSecret, AdminToken and SecretsKey (64 hex digits: it wraps the
	// data keys of keys.db in DataDir and keys the login index) are random
	// when empty; a restart gives the same ones.
	JWTSecret, AdminToken, SecretsKey string
	// JWTPrevious is a secret still accepted during a rotation.
	JWTPrevious string
	// BTCPay, when set, is the fake BTCPay store the stack takes payments
	// through (--payments btcpay), with its webhook at /webhooks/btcpay.
	BTCPay *btcpayfake.Server
}

// sharedHasher bounds argon2 work across every stack of the suite to the
// number of CPUs, like one process would, and pays the dummy hash once.
var (
	hasherOnce   sync.Once
	sharedHasher *app.Hasher
)

func hasher() *app.Hasher {
	hasherOnce.Do(func() {
		sharedHasher = app.NewHasher(runtime.NumCPU())
		// Every parallel test registers and logs in through these few slots,
		// and argon2 under -race on a loaded machine takes far longer than
		// in production: the production 3 s bound then answered a spurious
		// 503 to a registration race (seen once in a CI loop at load 18).
		sharedHasher.MaxWait = 2 * time.Minute
	})
	return sharedHasher
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// harness is one complete in-process CryptoVPS, wired like serveWith: bbolt
// event store, sandbox clock and cloud, the read model under test with its
// projector, the application service with its background loop, and the
// Echo API behind a real HTTP listener.
type harness struct {
	cfg    config
	client *apiclient.Client
	clock  *sandbox.Clock
	// wall is the stack's real time (what ages Idempotency-Keys): wall
	// time until a test moves it.
	wall *sandbox.Clock
	logs *logBuffer
	// api is the handler itself, for benchmarks that skip the network.
	api http.Handler
	// work is the stack's background worker, for tests that drive it.
	work *work.Worker

	closeOnce sync.Once
	closeFn   func()

	seq atomic.Int64 // for unique emails and labels
}

// logBuffer keeps the service's log for a failing test.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 1<<20 {
		l.buf.Reset()
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newHarness starts a stack for t and its subtests; it is stopped when t
// ends (or earlier by close).
// newHarness builds a stack for a test or a benchmark. newModel is only ever
// called with the t it is given, so a *testing.T suite's factory receives a
// *testing.T.
func newHarness(t testing.TB, newModel func(t *testing.T, store eventstore.Store) projections.Model, cfg config) *harness {
	return newHarnessTB(t, func(tb testing.TB, store eventstore.Store) projections.Model { return newModel(tb.(*testing.T), store) }, cfg)
}

func newHarnessTB(t testing.TB, newModel func(t testing.TB, store eventstore.Store) projections.Model, cfg config) *harness {
	t.Helper()
	if cfg.SignupCredit == "" {
		cfg.SignupCredit = "10.00"
	}
	if cfg.ServerLimit == 0 {
		cfg.ServerLimit = 10
	}
	if cfg.AccountRate == 0 {
		cfg.AccountRate = 1_000_000
	}
	if cfg.AuthRate == 0 {
		cfg.AuthRate = 1_000_000
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 15 * time.Minute
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.JWTSecret == "" {
		cfg.JWTSecret = randomHex(32)
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = randomHex(24)
	}
	if cfg.SecretsKey == "" {
		cfg.SecretsKey = randomHex(32)
	}
	var proxies []*net.IPNet
	for _, c := range cfg.TrustedProxies {
		_, n, err := net.ParseCIDR(c)
		if err != nil {
			t.Fatalf("trusted proxy %q: %v", c, err)
		}
		proxies = append(proxies, n)
	}
	signup, err := domain.ParseMoney(cfg.SignupCredit)
	if err != nil {
		t.Fatalf("signup credit: %v", err)
	}

	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()

	store, err := bbolt.Open(filepath.Join(cfg.DataDir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatalf("open event store: %v", err)
	}
	// The key store as serve keeps it: keys.db beside the log; and the
	// credential store, credentials.db.
	keys, err := boltkeys.Open(filepath.Join(cfg.DataDir, "keys.db"), boltkeys.Options{})
	if err != nil {
		store.Close()
		t.Fatalf("open the key store: %v", err)
	}
	creds, err := boltcreds.Open(filepath.Join(cfg.DataDir, "credentials.db"))
	if err != nil {
		store.Close()
		keys.Close()
		t.Fatalf("open credential store: %v", err)
	}
	secret, _ := hex.DecodeString(cfg.SecretsKey)
	personal, err := app.NewPersonal(keys, secret)
	if err != nil {
		t.Fatalf("personal data: %v", err)
	}
	var payments stack.Config
	if cfg.BTCPay != nil {
		o := cfg.BTCPay.Options()
		client, err := btcpay.New(btcpay.Config{URL: cfg.BTCPay.URL(), APIKey: o.APIKey, StoreID: o.StoreID,
			WebhookSecret: o.WebhookSecret, Timeout: 5 * time.Second, Retries: -1}, log)
		if err != nil {
			t.Fatalf("btcpay client: %v", err)
		}
		// Outside the full sandbox the clock cannot be moved through the
		// API; the tests move this one themselves (the reconcile loop's
		// intervals).
		payments = stack.Config{Mode: domain.Mode{Cloud: domain.UpstreamSandbox, Payments: domain.UpstreamBTCPay},
			Payments: client, Webhooks: client, Clock: sandbox.NewClock(time.Now, 0)}
	}
	wall := sandbox.NewClock(time.Now, 0)
	st, err := stack.New(ctx, stack.Config{Store: store, Model: newModel(t, store), Credentials: creds, Log: log, Hasher: hasher(),
		Personal: personal, Wall: wall,
		Mode: payments.Mode, Payments: payments.Payments, Webhooks: payments.Webhooks, Clock: payments.Clock,
		SandboxCloud: filepath.Join(cfg.DataDir, "sandbox-cloud.json"),
		SandboxCloudOptions: sandbox.CloudOptions{ProvisionDelay: provisionDelay, DestroyDelay: destroyDelay,
			BackupDelay: backupDelay},
		NoSandboxAPI: cfg.NoSandbox, WorkInterval: 250 * time.Millisecond,
		App: app.Config{SignupCredit: signup, ServerLimit: cfg.ServerLimit},
		API: api.Config{JWTSecret: []byte(cfg.JWTSecret), JWTPreviousSecrets: [][]byte{[]byte(cfg.JWTPrevious)},
			TokenTTL: cfg.TokenTTL, AdminToken: cfg.AdminToken,
			Snapshots: store, TrustedProxies: proxies, AccountRate: cfg.AccountRate, AuthRate: cfg.AuthRate,
			Guide: api.GuideParams{SignupCredit: signup, ProvisionDelay: provisionDelay, BackupDelay: backupDelay}},
	})
	if err != nil {
		store.Close()
		keys.Close()
		creds.Close()
		t.Fatalf("build the stack: %v", err)
	}
	srv := httptest.NewServer(st.API)
	stop := st.Start()
	clock, handler := st.SandboxClock, st.API
	if c, ok := payments.Clock.(*sandbox.Clock); ok {
		clock = c
	}

	h := &harness{cfg: cfg, client: apiclient.New(srv.URL, oas), clock: clock, wall: wall, logs: logs, api: handler, work: st.Worker}
	h.closeFn = func() {
		h.client.CloseIdleConnections()
		srv.Close()
		stop()
		if err := errors.Join(st.Close(), store.Close(), keys.Close(), creds.Close()); err != nil {
			t.Errorf("close event store: %v", err)
		}
	}
	t.Cleanup(func() {
		h.close()
		if t.Failed() {
			if s := h.logs.String(); s != "" {
				t.Logf("service log (warnings and errors):\n%s", s)
			}
		}
	})
	return h
}

// close stops the stack: the HTTP server, then the background work, then
// the store, so the data dir can be opened again.
func (h *harness) close() { h.closeOnce.Do(h.closeFn) }

// response is an HTTP answer (apiclient.Answer: status, headers, raw body,
// and the body decoded as JSON when it is JSON), in the suite's words.
type response struct{ apiclient.Answer }

// do sends one request to the API and returns the answer. EVERY request of
// the suite goes through here, and through apiclient, which checks each
// exchange against the OpenAPI document. body is nil (no body), a string or
// []byte (sent as is), an io.Reader (sent chunked, without a length), or
// anything else (sent as JSON). headers are name, value pairs. Failures are
// reported with t.Errorf (safe from any goroutine); no answer gives Status 0.
func (h *harness) do(t testing.TB, method, path string, body any, headers ...string) *response {
	t.Helper()
	a := h.client.Do(t, apiclient.Request{Method: method, Path: path, Body: body, Header: apiclient.Header(t, headers...)})
	return &response{*a}
}

// get returns the value at a dotted path of the JSON body ("server.id",
// "servers.0.label"), and whether it exists.
func (r *response) get(path string) (any, bool) { return r.Get(path) }

// str is the string at path ("" when absent or not a string).
func (r *response) str(path string) string { return r.Str(path) }

// list is the array at path (nil when absent).
func (r *response) list(path string) []any { return r.List(path) }

// num is the number at path (-1 when absent).
func (r *response) num(path string) int { return r.Num(path) }

// want fails the test unless the answer has the status.
func (r *response) want(t testing.TB, status int) *response {
	t.Helper()
	r.Expect(t, status)
	return r
}

// wantError fails the test unless the answer is the error shape
// {"error":"...","code":code} with the status.
func (r *response) wantError(t testing.TB, status int, code string) *response {
	t.Helper()
	r.ExpectError(t, status, code)
	return r
}

// wantDetail fails the test unless a 400 names field in "details".
func (r *response) wantDetail(t testing.TB, field string) *response {
	t.Helper()
	r.ExpectDetail(t, field)
	return r
}

// user is a registered account and its access token.
type user struct {
	h               *harness
	email, password string
	id              string

	mu      sync.Mutex
	token   string
	expires time.Time // on the sandbox clock
}

// unique makes a name no other test of the stack uses.
func (h *harness) unique(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, h.seq.Add(1))
}

// register opens a fresh account (201) and returns it.
func (h *harness) register(t testing.TB) *user {
	t.Helper()
	u := &user{h: h, email: h.unique("agent") + "@example.com", password: "correct horse battery"}
	r := h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": u.email, "password": u.password})
	r.want(t, http.StatusCreated)
	u.id = r.str("user.id")
	u.setToken(t, r)
	return u
}

func (u *user) setToken(t testing.TB, r *response) {
	t.Helper()
	tok := r.str("accessToken")
	if tok == "" {
		t.Fatalf("no access token in %s", r)
	}
	u.token = tok
	// Renew a minute early, on the account's sandbox clock the API expires
	// its tokens by.
	u.expires = u.now().Add(u.h.cfg.TokenTTL - time.Minute)
}

// bearer is the Authorization header of the user, logging in again when
// sandbox time has moved past the token's life (as the guide tells agents
// to).
func (u *user) bearer(t testing.TB) []string {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.now().Before(u.expires) {
		r := u.h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email, "password": u.password})
		if r.Status != http.StatusOK {
			t.Errorf("re-login: %s", r)
		} else {
			u.setToken(t, r)
		}
	}
	return []string{"Authorization", "Bearer " + u.token}
}

// now is the user's account's time: its own sandbox clock.
func (u *user) now() time.Time { return u.h.clock.NowFor(u.id) }

// do is h.do as this user.
func (u *user) do(t testing.TB, method, path string, body any, headers ...string) *response {
	t.Helper()
	return u.h.do(t, method, path, body, append(u.bearer(t), headers...)...)
}

// admin is h.do with the operator token.
func (h *harness) admin(t testing.TB, method, path string, body any) *response {
	t.Helper()
	return h.do(t, method, path, body, "Authorization", "Bearer "+h.cfg.AdminToken)
}

// advance moves u's account's own sandbox clock forward and returns once
// everything of the account due by then has happened.
func (u *user) advance(t testing.TB, d time.Duration) {
	t.Helper()
	u.do(t, http.MethodPost, "/sandbox/clock/advance", map[string]int64{"seconds": int64(d / time.Second)}).
		want(t, http.StatusOK)
}

// deploy asks for one server and returns the 202's server id.
func (u *user) deploy(t testing.TB, label, plan string) string {
	t.Helper()
	r := u.do(t, http.MethodPost, "/servers", map[string]string{"label": label, "planId": plan, "regionId": "ams"})
	r.want(t, http.StatusAccepted)
	return r.str("server.id")
}

// server is GET /servers/:id (200).
func (u *user) server(t testing.TB, id string) *response {
	t.Helper()
	return u.do(t, http.MethodGet, "/servers/"+id, nil).want(t, http.StatusOK)
}

// billing is GET /billing: balance and hourly spend.
func (u *user) billing(t testing.TB) (balance, hourlySpend string) {
	t.Helper()
	r := u.do(t, http.MethodGet, "/billing", nil).want(t, http.StatusOK)
	return r.str("balance"), r.str("hourlySpend")
}

// wantBalance checks GET /billing exactly, as strings.
func (u *user) wantBalance(t testing.TB, balance, hourlySpend string) {
	t.Helper()
	b, s := u.billing(t)
	if b != balance || s != hourlySpend {
		t.Errorf("GET /billing: want balance %q hourlySpend %q, got %q %q", balance, hourlySpend, b, s)
	}
}

// serverIDs lists GET /servers ids, in order.
func (u *user) serverIDs(t testing.TB) []string {
	t.Helper()
	r := u.do(t, http.MethodGet, "/servers", nil).want(t, http.StatusOK)
	var ids []string
	for i := range r.list("servers") {
		ids = append(ids, r.str(fmt.Sprintf("servers.%d.id", i)))
	}
	return ids
}

// topUp creates a top-up of amount and pays it through the sandbox.
func (u *user) topUp(t testing.TB, amount string) {
	t.Helper()
	r := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": amount, "currency": "BTC"}).
		want(t, http.StatusCreated)
	u.do(t, http.MethodPost, "/sandbox/topups/"+r.str("topup.id")+"/pay", nil).want(t, http.StatusOK)
}

func itoa(i int) string { return strconv.Itoa(i) }
