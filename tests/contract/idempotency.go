package contract

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// newPublicKey is a fresh ed25519 public key in authorized_keys form.
func newPublicKey(t testing.TB) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk))) + " agent@example"
}

// keyedCall is one request that creates or moves something, sent with an
// Idempotency-Key.
type keyedCall struct {
	name, method, path string
	body               any
	status             int
	key                string
	first              *response
}

func (c *keyedCall) send(t testing.TB, u *user) *response {
	t.Helper()
	return u.do(t, c.method, c.path, c.body, "Idempotency-Key", c.key).want(t, c.status)
}

// wantReplay checks that a retry gets the first answer back, byte for
// byte, with its Location, marked replayed.
func (c *keyedCall) wantReplay(t testing.TB, u *user, when string) {
	t.Helper()
	again := c.send(t, u)
	if again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("%s %s: retry not marked Idempotent-Replayed: %s", when, c.name, again)
	}
	if string(again.Raw) != string(c.first.Raw) {
		t.Errorf("%s %s: the retry's answer differs from the first\n first %s\n again %s", when, c.name, c.first.Raw, again.Raw)
	}
	if loc := c.first.Header.Get("Location"); again.Header.Get("Location") != loc {
		t.Errorf("%s %s: Location %q, first %q", when, c.name, again.Header.Get("Location"), loc)
	}
}

func idempotencyEverywhereTests(t *testing.T, newModel func(t *testing.T, store eventstore.Store) projections.Model) {
	t.Run("every POST that creates or moves something replays its first answer, refuses another body, and survives a restart", func(t *testing.T) {
		t.Parallel()
		cfg := config{DataDir: t.TempDir(), JWTSecret: randomHex(32), AdminToken: randomHex(24), TokenTTL: 48 * time.Hour}
		h := newHarness(t, newModel, cfg)
		u := h.register(t)
		srv, _ := u.activeServer(t, "src", "vc2-1c-1gb")

		calls := []*keyedCall{
			{name: "ssh key", method: http.MethodPost, path: "/ssh-keys", status: http.StatusCreated,
				body: map[string]string{"name": "laptop", "publicKey": newPublicKey(t)}},
			{name: "limit request", method: http.MethodPost, path: "/limit-requests", status: http.StatusCreated,
				body: map[string]any{"serverLimit": 20, "reason": "a fleet of crawlers"}},
			{name: "top-up", method: http.MethodPost, path: "/billing/topups", status: http.StatusCreated,
				body: map[string]string{"amount": "5.00", "currency": "BTC"}},
			{name: "backup", method: http.MethodPost, path: "/backups", status: http.StatusAccepted,
				body: map[string]string{"serverId": srv}},
			{name: "deploy", method: http.MethodPost, path: "/servers", status: http.StatusAccepted,
				body: deployBody("keyed", "vc2-1c-1gb")},
			{name: "bulk", method: http.MethodPost, path: "/servers/bulk", status: http.StatusAccepted,
				body: bulkBody("keyed", 2, "vc2-1c-1gb")},
		}
		for _, c := range calls {
			c.key = uuid.NewString()
			c.first = c.send(t, u)
			if c.first.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("%s: a first answer is marked replayed", c.name)
			}
			c.wantReplay(t, u, "at once:")
		}
		topup := calls[2].first.str("topup.id")
		backup := calls[3].first.str("backup.id")
		pay := &keyedCall{name: "sandbox pay", method: http.MethodPost, path: "/sandbox/topups/" + topup + "/pay",
			status: http.StatusOK, key: uuid.NewString()}
		pay.first = pay.send(t, u)
		pay.wantReplay(t, u, "at once:")
		u.advance(t, backupDelay+time.Second)
		restore := &keyedCall{name: "restore", method: http.MethodPost, path: "/backups/" + backup + "/restore",
			status: http.StatusAccepted, key: uuid.NewString(), body: map[string]any{}}
		restore.first = restore.send(t, u)
		calls = append(calls, pay, restore)

		// Later, with every object moved on (the backup AVAILABLE, the
		// top-up PAID, the servers ACTIVE), a retry still gets the first
		// answer, not the object as it is now.
		u.advance(t, provisionDelay+time.Second)
		for _, c := range calls {
			c.wantReplay(t, u, "later:")
		}
		// The work was done once each.
		if n := len(u.do(t, http.MethodGet, "/ssh-keys", nil).want(t, http.StatusOK).list("sshKeys")); n != 1 {
			t.Errorf("%d stored keys, want 1", n)
		}
		if n := len(u.do(t, http.MethodGet, "/limit-requests", nil).want(t, http.StatusOK).list("limitRequests")); n != 1 {
			t.Errorf("%d limit requests, want 1", n)
		}
		if n := len(u.do(t, http.MethodGet, "/billing/topups", nil).want(t, http.StatusOK).list("topups")); n != 1 {
			t.Errorf("%d top-ups, want 1", n)
		}
		if n := len(u.do(t, http.MethodGet, "/backups", nil).want(t, http.StatusOK).list("backups")); n != 1 {
			t.Errorf("%d backups, want 1", n)
		}
		if n := len(u.serverIDs(t)); n != 5 { // src, keyed, keyed-1, keyed-2, the restore
			t.Errorf("%d servers, want 5", n)
		}
		credits := 0
		ledger := u.do(t, http.MethodGet, "/billing/ledger?limit=100", nil).want(t, http.StatusOK)
		for i := range ledger.list("transactions") {
			if ledger.str("transactions."+itoa(i)+".type") == "topup" {
				credits++
			}
		}
		if credits != 1 {
			t.Errorf("%d top-up credits, want 1", credits)
		}

		// The same key with another body, or on another endpoint, is a 422
		// that says to use a new key, and changes nothing.
		before := u.snapshot(t)
		other := map[string]any{"name": "other", "publicKey": newPublicKey(t)}
		r := u.do(t, http.MethodPost, "/ssh-keys", other, "Idempotency-Key", calls[0].key).
			wantError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		if !strings.Contains(r.str("error"), "new key") {
			t.Errorf("the 422 does not say to use a new key: %s", r)
		}
		u.do(t, http.MethodPost, "/limit-requests", calls[1].body, "Idempotency-Key", calls[0].key).
			wantError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		u.do(t, http.MethodPost, "/backups", map[string]string{"serverId": srv}, "Idempotency-Key", calls[0].key).
			wantError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		u.do(t, http.MethodPost, "/sandbox/topups/"+topup+"/pay", nil, "Idempotency-Key", calls[0].key).
			wantError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		if after := u.snapshot(t); !reflect.DeepEqual(before, after) {
			t.Errorf("a refused key changed the account:\n before %v\n after  %v", before, after)
		}

		// A restart replays the log: the answers are the same bytes.
		h.close()
		second := newHarness(t, newModel, cfg)
		u.h = second
		for _, c := range calls {
			c.wantReplay(t, u, "after a restart:")
		}
		u.do(t, http.MethodPost, "/ssh-keys", other, "Idempotency-Key", calls[0].key).
			wantError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		// A day of real time later every key is free again.
		second.wall.SetOffset(second.wall.Offset() + 24*time.Hour)
		u.do(t, http.MethodPost, "/limit-requests", map[string]any{"serverLimit": 30, "reason": "more"}, "Idempotency-Key", calls[0].key).
			wantError(t, http.StatusConflict, "invalid_state") // one request is pending: the key was free
		r = u.do(t, http.MethodPost, "/ssh-keys", other, "Idempotency-Key", calls[0].key).want(t, http.StatusCreated)
		if r.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("a key older than 24 h was replayed: %s", r)
		}
	})

	t.Run("simultaneous keyed backups, stored keys and payments do their work once", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, newModel, config{})
		u := h.register(t)
		u.bearer(t)
		srv, _ := u.activeServer(t, "src", "vc2-1c-1gb")
		tp := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "5.00", "currency": "BTC"}).want(t, http.StatusCreated)
		pub := newPublicKey(t)
		for _, c := range []struct {
			path string
			body any
			list string
		}{
			{"/backups", map[string]string{"serverId": srv}, "/backups"},
			{"/ssh-keys", map[string]string{"name": "k", "publicKey": pub}, "/ssh-keys"},
			{"/sandbox/topups/" + tp.str("topup.id") + "/pay", nil, ""},
			{"/limit-requests", map[string]any{"serverLimit": 15, "reason": "growth"}, "/limit-requests"},
		} {
			key := uuid.NewString()
			rs := fanOut(8, func(int) *response { return u.do(t, http.MethodPost, c.path, c.body, "Idempotency-Key", key) })
			fresh := 0
			for _, r := range rs {
				if r.Status >= 300 {
					t.Fatalf("%s: %s", c.path, r)
				}
				if r.Header.Get("Idempotent-Replayed") != "true" {
					fresh++
				}
			}
			if fresh != 1 {
				t.Errorf("%s: %d answers not marked replayed, want 1", c.path, fresh)
			}
		}
		for path, key := range map[string]string{"/backups": "backups", "/ssh-keys": "sshKeys", "/limit-requests": "limitRequests"} {
			if n := len(u.do(t, http.MethodGet, path, nil).want(t, http.StatusOK).list(key)); n != 1 {
				t.Errorf("GET %s: %d, want 1", path, n)
			}
		}
		u.wantBalance(t, "14.986", "0.014")
	})

	t.Run("a request with a bad Idempotency-Key and a bad body is one 400 naming everything", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, newModel, config{})
		u := h.register(t)
		bad := strings.Repeat("k", 256)
		for _, c := range []struct {
			path   string
			body   any
			fields []string
		}{
			{"/servers", map[string]string{"label": "", "planId": "nope", "regionId": "ams"}, []string{"label", "planId", "Idempotency-Key"}},
			{"/servers/bulk", map[string]any{"label": "x", "count": 0, "planId": "vc2-1c-1gb", "regionId": "ams"}, []string{"count", "Idempotency-Key"}},
			{"/ssh-keys", map[string]string{"name": strings.Repeat("n", 65), "publicKey": "nope"}, []string{"name", "publicKey", "Idempotency-Key"}},
			{"/limit-requests", map[string]any{"reason": ""}, []string{"serverLimit", "reason", "Idempotency-Key"}},
			{"/billing/topups", map[string]string{"amount": "lots", "currency": "bitcoin!"}, []string{"amount", "currency", "Idempotency-Key"}},
			{"/backups", map[string]string{"serverId": "x"}, []string{"serverId", "Idempotency-Key"}},
			// Unknown fields and values of the wrong type are named with
			// the rest, not in a round of their own.
			{"/servers", map[string]any{"label": "", "planId": "vc2-1c-1gb", "regionId": "ams", "colour": "red"}, []string{"label", "colour", "Idempotency-Key"}},
			{"/servers/bulk", map[string]any{"label": "x!", "count": "ten", "planId": 7, "regionId": "ams"}, []string{"label", "count", "planId", "Idempotency-Key"}},
			{"/ssh-keys", map[string]any{"name": 5, "publicKey": "nope", "extra": true}, []string{"name", "publicKey", "extra", "Idempotency-Key"}},
			{"/limit-requests", map[string]any{"serverLimit": "many", "reason": ""}, []string{"serverLimit", "reason", "Idempotency-Key"}},
			{"/billing/topups", map[string]any{"amount": 5, "currency": "eth"}, []string{"amount", "currency", "Idempotency-Key"}},
		} {
			r := u.do(t, http.MethodPost, c.path, c.body, "Idempotency-Key", bad).want(t, http.StatusBadRequest)
			for _, f := range c.fields {
				if r.str("details."+f) == "" {
					t.Errorf("POST %s: the 400 does not name %s: %s", c.path, f, r)
				}
			}
		}
	})
}
