package contract

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// clockTests are the tests that move the sandbox clock, each on a stack of
// its own.
func clockTests(t *testing.T, newModel func(t *testing.T, store eventstore.Store) projections.Model) {
	stack := func(t *testing.T, cfg config) *harness { return newHarness(t, newModel, cfg) }

	t.Run("a 202 says where to look and when; ?waitFor= answers when the status is reached, or at the timeout", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{})
		u := h.register(t)
		r := u.do(t, http.MethodPost, "/servers", deployBody("waiter", "vc2-1c-1gb")).want(t, http.StatusAccepted)
		id := r.str("server.id")
		if loc, ra := r.Header.Get("Location"), r.Header.Get("Retry-After"); loc != "/servers/"+id || ra != "60" {
			t.Errorf("202: Location %q Retry-After %q, want /servers/%s and 60", loc, ra, id)
		}
		// Already in a wanted status: at once.
		if st := u.do(t, http.MethodGet, "/servers/"+id+"?waitFor=PROVISIONING,ACTIVE&timeout=60", nil).
			want(t, http.StatusOK).str("server.status"); st != "PROVISIONING" {
			t.Errorf("waitFor a status it has: %s", st)
		}
		// Not reached: the current state when the timeout passes.
		start := time.Now()
		if st := u.do(t, http.MethodGet, "/servers/"+id+"?waitFor=ACTIVE&timeout=1", nil).
			want(t, http.StatusOK).str("server.status"); st != "PROVISIONING" || time.Since(start) < time.Second {
			t.Errorf("waitFor ACTIVE for 1 s: %s after %s", st, time.Since(start))
		}
		// Reached while waiting.
		done := make(chan string, 1)
		go func() {
			done <- u.do(t, http.MethodGet, "/servers/"+id+"?waitFor=ACTIVE,ERROR&timeout=60", nil).str("server.status")
		}()
		u.advance(t, provisionDelay+time.Second)
		if st := <-done; st != "ACTIVE" {
			t.Errorf("waitFor ACTIVE across the provisioning: %s", st)
		}
		b := u.do(t, http.MethodPost, "/backups", map[string]string{"serverId": id}).want(t, http.StatusAccepted)
		if loc := b.Header.Get("Location"); loc != "/backups/"+b.str("backup.id") || b.Header.Get("Retry-After") != "180" {
			t.Errorf("backup 202: Location %q Retry-After %q", loc, b.Header.Get("Retry-After"))
		}
		u.advance(t, backupDelay+time.Second)
		if st := u.do(t, http.MethodGet, b.Header.Get("Location")+"?waitFor=AVAILABLE,ERROR&timeout=60", nil).
			want(t, http.StatusOK).str("backup.status"); st != "AVAILABLE" {
			t.Errorf("backup after the delay: %s", st)
		}
		for _, q := range []string{"?waitFor=RUNNING", "?waitFor=ACTIVE&timeout=0", "?waitFor=ACTIVE&timeout=61", "?timeout=5"} {
			u.do(t, http.MethodGet, "/servers/"+id+q, nil).wantError(t, http.StatusBadRequest, "validation_failed")
		}
	})

	t.Run("an expired token is 401 token_expired after 15 minutes of sandbox time", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{})
		u := h.register(t)
		tok := u.token
		u.advance(t, 14*time.Minute)
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+tok).want(t, http.StatusOK)
		u.advance(t, time.Minute+time.Second)
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+tok).wantError(t, http.StatusUnauthorized, "token_expired")
		h.do(t, http.MethodPost, "/servers", deployBody("late", "vc2-1c-1gb"), "Authorization", "Bearer "+tok).
			wantError(t, http.StatusUnauthorized, "token_expired")
		// Logging in again gives a token that works.
		r := h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email, "password": u.password}).want(t, http.StatusOK)
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+r.str("accessToken")).want(t, http.StatusOK)
	})

	t.Run("a deploy becomes ACTIVE with an IPv4 after the provision delay", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{})
		u := h.register(t)
		r := u.do(t, http.MethodPost, "/servers/bulk", bulkBody("node", 2, "vc2-1c-1gb")).want(t, http.StatusAccepted)
		a, b := r.str("servers.0.id"), r.str("servers.1.id")
		u.advance(t, provisionDelay/2)
		checkServer(t, u.server(t, a), "server", "node-1", "PROVISIONING")
		u.advance(t, provisionDelay/2+time.Second)
		sa, sb := u.server(t, a), u.server(t, b)
		checkServer(t, sa, "server", "node-1", "ACTIVE")
		checkServer(t, sb, "server", "node-2", "ACTIVE")
		if sa.str("server.ipv4") == sb.str("server.ipv4") {
			t.Errorf("two servers share IPv4 %s", sa.str("server.ipv4"))
		}
		l := u.do(t, http.MethodGet, "/servers", nil).want(t, http.StatusOK)
		checkServer(t, l, "servers.0", "node-1", "ACTIVE")
		u.wantBalance(t, "9.972", "0.028")
	})

	t.Run("ERROR, DESTROYING and DESTROYED servers do not count towards the limit", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{})
		u := h.register(t)
		failing := u.deploy(t, "sandbox-fail-deploy-1", "vc2-1c-1gb")
		r := u.do(t, http.MethodPost, "/servers/bulk", bulkBody("ok", 9, "vc2-1c-1gb")).want(t, http.StatusAccepted)
		u.do(t, http.MethodPost, "/servers", deployBody("over", "vc2-1c-1gb")).wantError(t, http.StatusForbidden, "server_limit")
		u.advance(t, provisionDelay+time.Second)
		if st := u.server(t, failing).str("server.status"); st != "ERROR" {
			t.Fatalf("want ERROR, got %s", st)
		}
		u.deploy(t, "replaces-error", "vc2-1c-1gb")
		u.do(t, http.MethodPost, "/servers", deployBody("over", "vc2-1c-1gb")).wantError(t, http.StatusForbidden, "server_limit")
		victim := r.str("servers.0.id")
		u.do(t, http.MethodDelete, "/servers/"+victim, nil).want(t, http.StatusAccepted)
		// The slot is free the moment the server is DESTROYING.
		u.deploy(t, "replaces-destroying", "vc2-1c-1gb")
		u.do(t, http.MethodPost, "/servers", deployBody("over", "vc2-1c-1gb")).wantError(t, http.StatusForbidden, "server_limit")
		u.advance(t, destroyDelay+time.Second)
		if st := u.server(t, victim).str("server.status"); st != "DESTROYED" {
			t.Fatalf("want DESTROYED, got %s", st)
		}
		u.do(t, http.MethodPost, "/servers", deployBody("over", "vc2-1c-1gb")).wantError(t, http.StatusForbidden, "server_limit")
	})

	t.Run("a server says how to get in: sshUser, sshPort and, while ACTIVE, the sandbox's made-up host key fingerprints", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{})
		u := h.register(t)
		r := u.do(t, http.MethodPost, "/servers", deployBody("hk", "vc2-1c-1gb")).want(t, http.StatusAccepted)
		id := r.str("server.id")
		for what, got := range map[string]*response{"202": r, "PROVISIONING": u.server(t, id)} {
			if v, ok := got.get("server.hostKeyFingerprints"); !ok || v != nil {
				t.Errorf("%s: hostKeyFingerprints %v (present %v), want null", what, v, ok)
			}
		}
		u.advance(t, provisionDelay+time.Second)
		got := u.server(t, id)
		want := sandbox.HostKeyFingerprints(id)
		fps := got.list("server.hostKeyFingerprints")
		if got.str("server.sshUser") != "root" || got.num("server.sshPort") != 22 || len(fps) != len(want) {
			t.Fatalf("ACTIVE: %s, want root, 22 and the fingerprints %v", got, want)
		}
		for i, fp := range fps {
			if fp != want[i] || !strings.HasPrefix(want[i], "SHA256:SANDBOXxNOTxREALx") {
				t.Errorf("fingerprint %d: %v, want %s", i, fp, want[i])
			}
		}
		listed := u.do(t, http.MethodGet, "/servers", nil).want(t, http.StatusOK)
		if n := len(listed.list("servers.0.hostKeyFingerprints")); n != len(want) {
			t.Errorf("GET /servers: %d fingerprints, want %d", n, len(want))
		}
		u.do(t, http.MethodDelete, "/servers/"+id, nil).want(t, http.StatusAccepted)
		if v, _ := u.server(t, id).get("server.hostKeyFingerprints"); v != nil {
			t.Errorf("DESTROYING: hostKeyFingerprints %v, want null", v)
		}
	})

	t.Run("an Idempotency-Key is forgotten after 24 hours of real time, whatever the sandbox clock does", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{TokenTTL: 48 * time.Hour})
		u := h.register(t)
		key := uuid.NewString()
		first := u.do(t, http.MethodPost, "/servers", deployBody("daily", "vc2-1c-1gb"), "Idempotency-Key", key).want(t, http.StatusAccepted)
		// A day of sandbox time is no time at all for the key.
		u.advance(t, 25*time.Hour)
		again := u.do(t, http.MethodPost, "/servers", deployBody("daily", "vc2-1c-1gb"), "Idempotency-Key", key).want(t, http.StatusAccepted)
		if again.Header.Get("Idempotent-Replayed") != "true" || string(again.Raw) != string(first.Raw) {
			t.Errorf("after 25 h of sandbox time: want the first answer replayed\n first %s\n again %s", first.Raw, again.Raw)
		}
		h.wall.SetOffset(h.wall.Offset() + 23*time.Hour)
		again = u.do(t, http.MethodPost, "/servers", deployBody("daily", "vc2-1c-1gb"), "Idempotency-Key", key).want(t, http.StatusAccepted)
		if again.Header.Get("Idempotent-Replayed") != "true" || string(again.Raw) != string(first.Raw) {
			t.Errorf("after 23 h of real time: want the first answer replayed, got %s", again)
		}
		h.wall.SetOffset(h.wall.Offset() + time.Hour + time.Second)
		later := u.do(t, http.MethodPost, "/servers", deployBody("daily", "vc2-1c-1gb"), "Idempotency-Key", key).want(t, http.StatusAccepted)
		if later.Header.Get("Idempotent-Replayed") != "" || later.str("server.id") == first.str("server.id") {
			t.Errorf("after 24 h of real time: want a new deploy, got %s", later)
		}
		if n := len(u.serverIDs(t)); n != 2 {
			t.Errorf("want 2 servers, got %d", n)
		}
	})

	t.Run("garbage bodies on every write endpoint are a 4xx, never a 5xx, and change nothing", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{})
		u := h.register(t)
		before := u.snapshot(t)
		deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
		bodies := []string{`{`, `[]`, `"text"`, `123`, `null`, `{"label":{"a":1}}`, `{"count":1e400}`,
			`{"seconds":99999999999999999999}`, `{"seconds":-1}`, `{"seconds":1.5}`, `{"amount":null}`, deep,
			"{\"label\":\"\xff\xfe\"}", `{"email":"a@example.com","password":"password-123"}{"x":1}`}
		paths := []string{"/servers", "/servers/bulk", "/billing/topups", "/backups", "/backups/" + uuid.NewString() + "/restore",
			"/sandbox/clock/advance", "/sandbox/topups/" + uuid.NewString() + "/pay"}
		for _, p := range paths {
			for _, b := range bodies {
				if r := u.do(t, http.MethodPost, p, b); r.Status < 400 || r.Status >= 500 {
					t.Errorf("POST %s %.40q: want a 4xx, got %s", p, b, r)
				}
			}
		}
		for _, p := range []string{"/admin/accounts/" + u.email + "/suspend", "/admin/accounts/" + u.email + "/limit"} {
			for _, b := range bodies {
				if r := h.do(t, http.MethodPost, p, b, "Authorization", "Bearer "+h.cfg.AdminToken); r.Status < 400 || r.Status >= 500 {
					t.Errorf("POST %s %.40q: want a 4xx, got %s", p, b, r)
				}
			}
		}
		for _, b := range bodies[:6] {
			for _, p := range []string{"/auth/register", "/auth/login"} {
				if r := h.do(t, http.MethodPost, p, b); r.Status < 400 || r.Status >= 500 {
					t.Errorf("POST %s %.40q: want a 4xx, got %s", p, b, r)
				}
			}
		}
		if after := u.snapshot(t); !reflect.DeepEqual(before, after) {
			t.Errorf("refused requests changed the account:\n before: %v\n after:  %v", before, after)
		}
		if off, own := h.clock.Offset(), h.clock.AccountOffset(u.id); off != 0 || own != 0 {
			t.Errorf("refused advances moved the sandbox clock by %s, the account's by %s", off, own)
		}
	})

	billingClockTests(t, stack)
	backupClockTests(t, stack)
}

// wantRateHeaders fails unless r carries the RateLimit headers for limit.
func wantRateHeaders(t testing.TB, r *response, limit int) {
	t.Helper()
	if r.Header.Get("RateLimit-Limit") != strconv.Itoa(limit) {
		t.Errorf("RateLimit-Limit: want %d, got %q", limit, r.Header.Get("RateLimit-Limit"))
	}
	if _, err := strconv.Atoi(r.Header.Get("RateLimit-Remaining")); err != nil {
		t.Errorf("RateLimit-Remaining: %q", r.Header.Get("RateLimit-Remaining"))
	}
	if n, err := strconv.Atoi(r.Header.Get("RateLimit-Reset")); err != nil || n < 0 || n > 60 {
		t.Errorf("RateLimit-Reset: %q", r.Header.Get("RateLimit-Reset"))
	}
}

// want429 fails unless r is a 429 telling when to retry.
func want429(t testing.TB, r *response, limit int) {
	t.Helper()
	r.wantError(t, http.StatusTooManyRequests, "rate_limited")
	wantRateHeaders(t, r, limit)
	if r.Header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("RateLimit-Remaining: want 0, got %q", r.Header.Get("RateLimit-Remaining"))
	}
	if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 || n > 60 {
		t.Errorf("Retry-After: want 1..60 seconds, got %q", r.Header.Get("Retry-After"))
	}
}

// badLogin is an /auth request that costs no password hash.
const badLogin = `{"email":`

func rateLimitTests(t *testing.T, newModel func(t *testing.T, store eventstore.Store) projections.Model) {
	t.Run("the 101st request in a minute from one account is 429 with Retry-After and RateLimit headers", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, newModel, config{AccountRate: 100})
		u, other := h.register(t), h.register(t)
		for i := range 100 {
			r := u.do(t, http.MethodGet, "/billing", nil)
			if r.Status != http.StatusOK {
				t.Fatalf("request %d: %s", i+1, r)
			}
			wantRateHeaders(t, r, 100)
			if got := r.Header.Get("RateLimit-Remaining"); got != strconv.Itoa(99-i) {
				t.Fatalf("request %d: RateLimit-Remaining %q, want %d", i+1, got, 99-i)
			}
		}
		want429(t, u.do(t, http.MethodGet, "/billing", nil), 100)
		want429(t, u.do(t, http.MethodPost, "/servers", deployBody("x", "vc2-1c-1gb")), 100)
		// The limit is per account.
		other.do(t, http.MethodGet, "/billing", nil).want(t, http.StatusOK)
	})

	t.Run("the 11th /auth request in a minute from one IP is 429", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, newModel, config{AuthRate: 10})
		for i := range 10 {
			r := h.do(t, http.MethodPost, "/auth/login", badLogin)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("request %d: %s", i+1, r)
			}
			wantRateHeaders(t, r, 10)
		}
		want429(t, h.do(t, http.MethodPost, "/auth/login", badLogin), 10)
		want429(t, h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": "late@example.com", "password": "password-123"}), 10)
		// Other routes are not limited by it.
		h.do(t, http.MethodGet, "/plans", nil).want(t, http.StatusOK)
	})

	t.Run("without trusted proxies a spoofed X-Forwarded-For does not escape the /auth limit", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, newModel, config{AuthRate: 10})
		for i := range 10 {
			h.do(t, http.MethodPost, "/auth/login", badLogin, "X-Forwarded-For", "203.0.113."+strconv.Itoa(i+1)).
				want(t, http.StatusBadRequest)
		}
		want429(t, h.do(t, http.MethodPost, "/auth/login", badLogin, "X-Forwarded-For", "203.0.113.99"), 10)
		want429(t, h.do(t, http.MethodPost, "/auth/login", badLogin, "X-Real-IP", "203.0.113.98"), 10)
	})

	t.Run("behind a trusted proxy X-Forwarded-For tells clients apart", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, newModel, config{AuthRate: 10, TrustedProxies: []string{"127.0.0.1/32"}})
		for range 10 {
			h.do(t, http.MethodPost, "/auth/login", badLogin, "X-Forwarded-For", "203.0.113.7").want(t, http.StatusBadRequest)
		}
		want429(t, h.do(t, http.MethodPost, "/auth/login", badLogin, "X-Forwarded-For", "203.0.113.7"), 10)
		// A spoofed first hop is not believed: the client is the address the
		// trusted proxy saw.
		want429(t, h.do(t, http.MethodPost, "/auth/login", badLogin, "X-Forwarded-For", "198.51.100.1, 203.0.113.7"), 10)
		h.do(t, http.MethodPost, "/auth/login", badLogin, "X-Forwarded-For", "203.0.113.8").want(t, http.StatusBadRequest)
		h.do(t, http.MethodPost, "/auth/login", badLogin).want(t, http.StatusBadRequest)
	})
}

func adminTests(t *testing.T, h *harness) {
	t.Run("a limit request is listed, decided by an operator, and an approval raises the limit", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		r := u.do(t, http.MethodPost, "/limit-requests", map[string]any{"serverLimit": 30, "reason": "render farm"}).
			want(t, http.StatusCreated)
		id := r.str("limitRequest.id")
		if r.str("limitRequest.status") != "PENDING" || r.num("limitRequest.serverLimit") != 30 {
			t.Fatalf("new request: %s", r)
		}
		u.do(t, http.MethodPost, "/limit-requests", map[string]any{"serverLimit": 40, "reason": "more"}).
			wantError(t, http.StatusConflict, "invalid_state")
		u.do(t, http.MethodPost, "/limit-requests", map[string]any{"serverLimit": 10, "reason": ""}).
			wantError(t, http.StatusBadRequest, "validation_failed").wantDetail(t, "serverLimit").wantDetail(t, "reason")
		pending := h.admin(t, http.MethodGet, "/admin/limit-requests", nil).want(t, http.StatusOK)
		found := false
		for _, p := range pending.list("pending") {
			if m, _ := p.(map[string]any); m["email"] == u.email {
				found = true
			}
		}
		if !found {
			t.Fatalf("the operator does not see the pending request: %s", pending)
		}
		h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/limit-requests/"+id+"/approve", map[string]string{"note": "ok"}).
			want(t, http.StatusOK)
		l := u.do(t, http.MethodGet, "/limit-requests", nil).want(t, http.StatusOK)
		if l.str("limitRequests.0.status") != "APPROVED" || l.str("limitRequests.0.note") != "ok" {
			t.Errorf("after approval: %s", l)
		}
		if n := u.do(t, http.MethodGet, "/auth/me", nil).want(t, http.StatusOK).num("user.serverLimit"); n != 30 {
			t.Errorf("limit after approval %d, want 30", n)
		}
		h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/limit-requests/"+id+"/deny", map[string]string{"note": "no"}).
			wantError(t, http.StatusConflict, "invalid_state")
	})

	t.Run("an operator can download a consistent snapshot of the event store; a customer cannot", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		r := h.admin(t, http.MethodGet, "/admin/eventstore/snapshot", nil).want(t, http.StatusOK)
		if len(r.Raw) < 4096 {
			t.Errorf("snapshot of %d bytes: not a store file", len(r.Raw))
		}
		u.do(t, http.MethodGet, "/admin/eventstore/snapshot", nil).wantError(t, http.StatusUnauthorized, "unauthorized")
	})

	t.Run("a suspended account gets 403 account_suspended on mutations and 200 on reads; unsuspend restores it", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		id := u.deploy(t, "held", "vc2-1c-1gb")
		topup := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "5.00", "currency": "BTC"}).
			want(t, http.StatusCreated).str("topup.id")
		r := h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/suspend", map[string]string{"reason": "abuse report #1"}).
			want(t, http.StatusOK)
		if v, _ := r.get("account.suspended"); v != true {
			t.Errorf("want suspended, got %s", r)
		}
		for _, m := range []struct {
			method, path string
			body         any
		}{
			{http.MethodPost, "/servers", deployBody("nope", "vc2-1c-1gb")},
			{http.MethodPost, "/servers/bulk", bulkBody("nope", 2, "vc2-1c-1gb")},
			{http.MethodDelete, "/servers/" + id, nil},
			{http.MethodPost, "/billing/topups", map[string]string{"amount": "5.00", "currency": "BTC"}},
			{http.MethodPost, "/backups", map[string]string{"serverId": id}},
			{http.MethodPost, "/backups/" + uuid.NewString() + "/restore", nil},
			{http.MethodDelete, "/backups/" + uuid.NewString(), nil},
		} {
			u.do(t, m.method, m.path, m.body).wantError(t, http.StatusForbidden, "account_suspended")
		}
		for _, path := range []string{"/auth/me", "/billing", "/servers", "/servers/" + id, "/backups", "/billing/topups", "/billing/topups/" + topup} {
			u.do(t, http.MethodGet, path, nil).want(t, http.StatusOK)
		}
		if v, _ := u.do(t, http.MethodGet, "/auth/me", nil).get("user.suspended"); v != true {
			t.Errorf("GET /auth/me does not say suspended")
		}
		if st := u.server(t, id).str("server.status"); st != "PROVISIONING" {
			t.Errorf("the refused DELETE changed the server: %s", st)
		}
		if n := len(u.serverIDs(t)); n != 1 {
			t.Errorf("refused deploys created servers: %d", n)
		}
		// Suspending twice is a conflict, not a second event.
		h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/suspend", map[string]string{"reason": "again"}).
			wantError(t, http.StatusConflict, "")

		h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/unsuspend", map[string]string{"reason": "resolved"}).
			want(t, http.StatusOK)
		u.deploy(t, "free-again", "vc2-1c-1gb")
		u.do(t, http.MethodDelete, "/servers/"+id, nil).want(t, http.StatusAccepted)
	})

	t.Run("the admin API refuses a customer token and a wrong operator token with 401", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		path := "/admin/accounts/" + u.email + "/suspend"
		body := map[string]string{"reason": "self-service"}
		u.do(t, http.MethodPost, path, body).wantError(t, http.StatusUnauthorized, "unauthorized")
		h.do(t, http.MethodPost, path, body).wantError(t, http.StatusUnauthorized, "unauthorized")
		h.do(t, http.MethodPost, path, body, "Authorization", "Bearer "+h.cfg.AdminToken+"x").wantError(t, http.StatusUnauthorized, "unauthorized")
		h.do(t, http.MethodPost, path, body, "Authorization", "Bearer "+h.cfg.JWTSecret).wantError(t, http.StatusUnauthorized, "unauthorized")
		u.do(t, http.MethodGet, "/admin/accounts/"+u.email, nil).wantError(t, http.StatusUnauthorized, "unauthorized")
		if v, _ := u.do(t, http.MethodGet, "/auth/me", nil).get("user.suspended"); v != false {
			t.Errorf("a refused admin call suspended the account")
		}
		h.admin(t, http.MethodPost, "/admin/accounts/"+h.unique("nobody")+"@example.com/suspend", body).
			wantError(t, http.StatusNotFound, "not_found")
		h.admin(t, http.MethodPost, path, map[string]string{}).wantDetail(t, "reason")
	})

	t.Run("set-limit moves the 403 boundary", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		r := h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/limit", map[string]int{"limit": 2}).want(t, http.StatusOK)
		if r.num("account.serverLimit") != 2 {
			t.Errorf("want serverLimit 2, got %s", r)
		}
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("two", 2, "vc2-1c-1gb")).want(t, http.StatusAccepted)
		u.do(t, http.MethodPost, "/servers", deployBody("three", "vc2-1c-1gb")).wantError(t, http.StatusForbidden, "server_limit")
		h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/limit", map[string]int{"limit": 12}).want(t, http.StatusOK)
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("ten", 10, "vc2-1c-1gb")).want(t, http.StatusAccepted)
		u.do(t, http.MethodPost, "/servers", deployBody("thirteen", "vc2-1c-1gb")).wantError(t, http.StatusForbidden, "server_limit")
		if me := u.do(t, http.MethodGet, "/auth/me", nil); me.num("user.serverLimit") != 12 {
			t.Errorf("GET /auth/me: want serverLimit 12, got %s", me)
		}
		h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/limit", map[string]int{"limit": -1}).wantDetail(t, "limit")
		h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/limit", map[string]any{}).wantDetail(t, "limit")
	})
}

// snapshot reads everything an account can see, for comparison.
func (u *user) snapshot(t testing.TB, serverIDs ...string) map[string]any {
	t.Helper()
	out := map[string]any{}
	paths := []string{"/auth/me", "/billing", "/servers", "/backups", "/billing/topups"}
	for _, id := range serverIDs {
		paths = append(paths, "/servers/"+id)
	}
	for _, p := range paths {
		out[p] = u.do(t, http.MethodGet, p, nil).want(t, http.StatusOK).JSON
	}
	return out
}

func restartTests(t *testing.T, newModel func(t *testing.T, store eventstore.Store) projections.Model) {
	t.Run("a stack reopened on the same data dir shows the same accounts, servers, balances and backups", func(t *testing.T) {
		t.Parallel()
		cfg := config{DataDir: t.TempDir(), JWTSecret: randomHex(32), AdminToken: randomHex(24), SecretsKey: randomHex(32), TokenTTL: time.Hour}
		first := newHarness(t, newModel, cfg)
		a, b := first.register(t), first.register(t)
		kept, ip := a.activeServer(t, "kept", "vc2-2c-4gb")
		gone := a.deploy(t, "gone", "vc2-1c-1gb")
		failed := a.deploy(t, "sandbox-fail-deploy-r", "vc2-1c-1gb")
		a.do(t, http.MethodDelete, "/servers/"+gone, nil).want(t, http.StatusAccepted)
		a.do(t, http.MethodPost, "/backups", map[string]string{"serverId": kept}).want(t, http.StatusAccepted)
		a.advance(t, backupDelay)
		a.topUp(t, "12.34")
		a.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "3.00", "currency": "LTC"}).want(t, http.StatusCreated)
		b.deploy(t, "b-1", "vc2-1c-1gb")
		h1 := first.admin(t, http.MethodPost, "/admin/accounts/"+b.email+"/suspend", map[string]string{"reason": "test"}).want(t, http.StatusOK)
		if st := a.server(t, failed).str("server.status"); st != "ERROR" {
			t.Fatalf("want ERROR, got %s", st)
		}
		beforeA, beforeB := a.snapshot(t, kept, gone, failed), b.snapshot(t)
		now := first.do(t, http.MethodGet, "/healthz", nil).str("now")
		first.close()

		second := newHarness(t, newModel, cfg)
		a.h, b.h = second, second
		if afterA := a.snapshot(t, kept, gone, failed); !reflect.DeepEqual(beforeA, afterA) {
			t.Errorf("account a differs after restart:\n before: %v\n after:  %v", beforeA, afterA)
		}
		if afterB := b.snapshot(t); !reflect.DeepEqual(beforeB, afterB) {
			t.Errorf("account b differs after restart:\n before: %v\n after:  %v", beforeB, afterB)
		}
		// Same operator state, same password, sandbox time not moved back.
		if r := second.admin(t, http.MethodGet, "/admin/accounts/"+b.email, nil).want(t, http.StatusOK); !reflect.DeepEqual(r.JSON, h1.JSON) {
			t.Errorf("admin view differs: %s vs %s", r.Raw, h1.Raw)
		}
		second.do(t, http.MethodPost, "/auth/login", map[string]string{"email": a.email, "password": a.password}).want(t, http.StatusOK)
		second.do(t, http.MethodPost, "/auth/register", map[string]string{"email": a.email, "password": a.password}).
			wantError(t, http.StatusConflict, "email_taken")
		if later := second.do(t, http.MethodGet, "/healthz", nil).str("now"); later < now {
			t.Errorf("sandbox time went back from %s to %s", now, later)
		}
		// The world goes on: a new server gets an address never used before.
		_, ip2 := a.activeServer(t, "after-restart", "vc2-1c-1gb")
		if ip2 == ip {
			t.Errorf("a new server reuses %s", ip)
		}
		b.do(t, http.MethodPost, "/servers", deployBody("still-held", "vc2-1c-1gb")).wantError(t, http.StatusForbidden, "account_suspended")
	})
}

func noSandboxTests(t *testing.T, newModel func(t *testing.T, store eventstore.Store) projections.Model) {
	t.Run("without the sandbox clock /sandbox/* is 404", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, newModel, config{NoSandbox: true})
		u := h.register(t)
		id := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "5.00", "currency": "BTC"}).
			want(t, http.StatusCreated).str("topup.id")
		u.do(t, http.MethodPost, "/sandbox/clock/advance", map[string]int{"seconds": 60}).wantError(t, http.StatusNotFound, "not_found")
		u.do(t, http.MethodPost, "/sandbox/topups/"+id+"/pay", nil).wantError(t, http.StatusNotFound, "not_found")
		if st := u.do(t, http.MethodGet, "/billing/topups/"+id, nil).want(t, http.StatusOK).str("topup.status"); st != "PENDING" {
			t.Errorf("want PENDING, got %s", st)
		}
		u.wantBalance(t, "10.00", "0.00")
		r := h.do(t, http.MethodGet, "/llms.txt", nil).want(t, http.StatusOK)
		if strings.Contains(string(r.Raw), "/sandbox/") {
			t.Errorf("/llms.txt documents /sandbox/* outside sandbox mode")
		}
	})
}
