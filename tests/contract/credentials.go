package contract

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// passwordTests: POST /auth/password changes the password and ends every
// token issued before it.
func passwordTests(t *testing.T, h *harness) {
	t.Run("a password change answers a fresh token and ends every token issued before", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		old := u.token
		other := h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email, "password": u.password}).
			want(t, http.StatusOK).str("accessToken")
		r := u.do(t, http.MethodPost, "/auth/password",
			map[string]string{"currentPassword": u.password, "newPassword": "a whole new passphrase"}).want(t, http.StatusOK)
		fresh := r.str("accessToken")
		if fresh == "" || fresh == old || r.str("user.id") != u.id || r.str("tokenType") != "Bearer" {
			t.Fatalf("answer: %s", r)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		for _, tok := range []string{old, other} {
			h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+tok).
				wantError(t, http.StatusUnauthorized, "unauthorized")
			h.do(t, http.MethodGet, "/servers", nil, "Authorization", "Bearer "+tok).
				wantError(t, http.StatusUnauthorized, "unauthorized")
		}
		h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+fresh).want(t, http.StatusOK)
		h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email, "password": u.password}).
			wantError(t, http.StatusUnauthorized, "invalid_credentials")
		again := h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email, "password": "a whole new passphrase"}).
			want(t, http.StatusOK).str("accessToken")
		h.do(t, http.MethodGet, "/billing", nil, "Authorization", "Bearer "+again).want(t, http.StatusOK)

		// A second change ends the tokens of the first.
		h.do(t, http.MethodPost, "/auth/password", map[string]string{"currentPassword": "a whole new passphrase",
			"newPassword": "and yet another one"}, "Authorization", "Bearer "+again).want(t, http.StatusOK)
		for _, tok := range []string{fresh, again} {
			h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+tok).
				wantError(t, http.StatusUnauthorized, "unauthorized")
		}
	})

	t.Run("a refused change names every problem at once and changes nothing", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.do(t, http.MethodPost, "/auth/password", map[string]string{"newPassword": "short"}).
			wantDetail(t, "currentPassword").wantDetail(t, "newPassword")
		for _, bad := range []string{"", "1234567", strings.Repeat("x", 257), "         ", "\t\n \t\n \t\n", "password1", "Qwerty123",
			"iloveyou", "12345678"} {
			u.do(t, http.MethodPost, "/auth/password", map[string]string{"currentPassword": u.password, "newPassword": bad}).
				wantDetail(t, "newPassword")
		}
		u.do(t, http.MethodPost, "/auth/password", map[string]string{"currentPassword": u.password, "newPassword": u.password}).
			wantDetail(t, "newPassword")
		wrong := u.do(t, http.MethodPost, "/auth/password",
			map[string]string{"currentPassword": "not the password", "newPassword": "a whole new passphrase"}).
			wantError(t, http.StatusBadRequest, "wrong_password")
		if _, ok := wrong.get("details.currentPassword"); !ok {
			t.Errorf("a wrong current password does not name currentPassword: %s", wrong)
		}
		u.do(t, http.MethodPost, "/auth/password", map[string]any{"currentPassword": u.password,
			"newPassword": "a whole new passphrase", "email": "x@example.com"}).wantDetail(t, "email")
		u.do(t, http.MethodPost, "/auth/password", nil).wantError(t, http.StatusBadRequest, "")
		// Nothing changed: the token and the password still work.
		u.do(t, http.MethodGet, "/auth/me", nil).want(t, http.StatusOK)
		h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email, "password": u.password}).
			want(t, http.StatusOK)
		h.do(t, http.MethodPost, "/auth/password", map[string]string{"currentPassword": u.password, "newPassword": "x y z w v u"}).
			wantError(t, http.StatusUnauthorized, "unauthorized")
	})

	t.Run("registration follows the same password rules", func(t *testing.T) {
		t.Parallel()
		for _, bad := range []string{"          ", "password123", "Password1!", "sunshine"} {
			h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": h.unique("rules") + "@example.com", "password": bad}).
				wantDetail(t, "password")
		}
	})

	t.Run("simultaneous changes from one token: one new password wins, the old one is gone", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		auth := u.bearer(t)
		rs := fanOut(4, func(i int) *response {
			return h.do(t, http.MethodPost, "/auth/password", map[string]string{"currentPassword": u.password,
				"newPassword": fmt.Sprintf("new passphrase %d", i)}, auth...)
		})
		// The others are told the password changed (409), that the current
		// one is no longer it (400), or, once the first change ended the
		// token they carry, 401.
		if c := statusCounts(rs); c[http.StatusOK] < 1 ||
			c[http.StatusOK]+c[http.StatusConflict]+c[http.StatusBadRequest]+c[http.StatusUnauthorized] != 4 {
			t.Fatalf("answers %v", c)
		}
		h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email, "password": u.password}).
			wantError(t, http.StatusUnauthorized, "invalid_credentials")
		logins := 0
		for i := range 4 {
			if r := h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email,
				"password": fmt.Sprintf("new passphrase %d", i)}); r.Status == http.StatusOK {
				logins++
			}
		}
		if logins != 1 {
			t.Fatalf("%d of the new passwords log in, want exactly one", logins)
		}
	})
}

// apiKeyTests: POST/GET/DELETE /auth/api-keys, and a key as a bearer
// credential.
func apiKeyTests(t *testing.T, h *harness) {
	create := func(t *testing.T, u *user, name string, headers ...string) *response {
		t.Helper()
		return u.do(t, http.MethodPost, "/auth/api-keys", map[string]string{"name": name}, headers...)
	}
	withKey := func(key string) []string { return []string{"Authorization", "Bearer " + key} }

	t.Run("a key is shown once and works wherever a token does until it is deleted", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		r := create(t, u, "my agent").want(t, http.StatusCreated)
		key, id := r.str("key"), r.str("apiKey.id")
		if !strings.HasPrefix(key, "cvps_") || len(key) != 48 || r.str("apiKey.name") != "my agent" || r.str("apiKey.createdAt") == "" {
			t.Fatalf("answer: %s", r)
		}
		if v, ok := r.get("apiKey.lastUsedAt"); !ok || v != nil {
			t.Errorf("a new key's lastUsedAt is %v, want null", v)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		me := h.do(t, http.MethodGet, "/auth/me", nil, withKey(key)...).want(t, http.StatusOK)
		if me.str("user.id") != u.id {
			t.Fatalf("the key speaks for %s, want %s", me.str("user.id"), u.id)
		}
		srv := h.do(t, http.MethodPost, "/servers", deployBody("by-key", "vc2-1c-1gb"), withKey(key)...).
			want(t, http.StatusAccepted).str("server.id")
		h.do(t, http.MethodGet, "/servers/"+srv, nil, withKey(key)...).want(t, http.StatusOK)
		list := u.do(t, http.MethodGet, "/auth/api-keys", nil).want(t, http.StatusOK)
		if len(list.list("apiKeys")) != 1 || list.str("apiKeys.0.id") != id || list.str("apiKeys.0.name") != "my agent" {
			t.Fatalf("list: %s", list)
		}
		if list.str("apiKeys.0.lastUsedAt") == "" {
			t.Errorf("a used key's lastUsedAt is not set: %s", list)
		}
		if strings.Contains(string(list.Raw), key) || strings.Contains(string(list.Raw), key[5:]) {
			t.Fatalf("the list shows the key: %s", list)
		}
		// Same budget as the account's tokens.
		a := h.do(t, http.MethodGet, "/billing", nil, withKey(key)...).want(t, http.StatusOK)
		b := u.do(t, http.MethodGet, "/billing", nil).want(t, http.StatusOK)
		ra, rb := a.Header.Get("RateLimit-Remaining"), b.Header.Get("RateLimit-Remaining")
		if ra == "" || a.Header.Get("RateLimit-Limit") != b.Header.Get("RateLimit-Limit") || ra == rb {
			t.Errorf("key and token do not share one budget: %s/%s then %s/%s", ra, a.Header.Get("RateLimit-Limit"),
				rb, b.Header.Get("RateLimit-Limit"))
		}

		u.do(t, http.MethodDelete, "/auth/api-keys/"+id, nil).want(t, http.StatusOK)
		h.do(t, http.MethodGet, "/auth/me", nil, withKey(key)...).wantError(t, http.StatusUnauthorized, "unauthorized")
		h.do(t, http.MethodGet, "/servers/"+srv, nil, withKey(key)...).wantError(t, http.StatusUnauthorized, "unauthorized")
		u.do(t, http.MethodDelete, "/auth/api-keys/"+id, nil).wantError(t, http.StatusNotFound, "not_found")
		if n := len(u.do(t, http.MethodGet, "/auth/api-keys", nil).want(t, http.StatusOK).list("apiKeys")); n != 0 {
			t.Errorf("%d keys listed after the delete", n)
		}
		u.do(t, http.MethodGet, "/servers/"+srv, nil).want(t, http.StatusOK) // the token is untouched
	})

	t.Run("a key is its account's alone", func(t *testing.T) {
		t.Parallel()
		u, other := h.register(t), h.register(t)
		r := create(t, u, "mine").want(t, http.StatusCreated)
		other.do(t, http.MethodDelete, "/auth/api-keys/"+r.str("apiKey.id"), nil).wantError(t, http.StatusNotFound, "not_found")
		if n := len(other.do(t, http.MethodGet, "/auth/api-keys", nil).want(t, http.StatusOK).list("apiKeys")); n != 0 {
			t.Errorf("another account lists %d keys", n)
		}
		h.do(t, http.MethodGet, "/auth/me", nil, withKey(r.str("key"))...).want(t, http.StatusOK)
	})

	t.Run("a password change ends the tokens but not the keys", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		key := create(t, u, "survivor").want(t, http.StatusCreated).str("key")
		h.do(t, http.MethodPost, "/auth/password", map[string]string{"currentPassword": u.password, "newPassword": "rotated passphrase"},
			withKey(key)...).want(t, http.StatusOK)
		u.do(t, http.MethodGet, "/auth/me", nil).wantError(t, http.StatusUnauthorized, "unauthorized")
		h.do(t, http.MethodGet, "/auth/me", nil, withKey(key)...).want(t, http.StatusOK)
	})

	t.Run("what is not a live key is a 401", func(t *testing.T) {
		t.Parallel()
		for _, bad := range []string{"cvps_", "cvps_not-a-key", "cvps_" + strings.Repeat("A", 43), "cvps_" + strings.Repeat("A", 44),
			"CVPS_" + strings.Repeat("A", 43), "cvps_" + strings.Repeat("!", 43)} {
			h.do(t, http.MethodGet, "/auth/me", nil, withKey(bad)...).wantError(t, http.StatusUnauthorized, "unauthorized")
		}
	})

	t.Run("a bad request names every problem and creates nothing; ten keys at most", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		create(t, u, "", "Idempotency-Key", strings.Repeat("k", 256)).wantDetail(t, "name").wantDetail(t, "Idempotency-Key")
		for _, name := range []string{"   ", strings.Repeat("n", 65), "tab\there"} {
			create(t, u, name).wantDetail(t, "name")
		}
		u.do(t, http.MethodPost, "/auth/api-keys", map[string]any{"name": "x", "key": "cvps_mine"}).wantDetail(t, "key")
		if n := len(u.do(t, http.MethodGet, "/auth/api-keys", nil).want(t, http.StatusOK).list("apiKeys")); n != 0 {
			t.Fatalf("refused requests created %d keys", n)
		}
		for i := range 10 {
			create(t, u, fmt.Sprintf("key %d", i)).want(t, http.StatusCreated)
		}
		create(t, u, "one too many").wantDetail(t, "name")
	})

	t.Run("with an Idempotency-Key a retry answers the same key, another body is 422", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		first := create(t, u, "retried", "Idempotency-Key", "k-1").want(t, http.StatusCreated)
		rs := fanOut(3, func(int) *response { return create(t, u, "retried", "Idempotency-Key", "k-1") })
		for _, r := range rs {
			r.want(t, http.StatusCreated)
			if r.str("key") != first.str("key") || r.str("apiKey.id") != first.str("apiKey.id") || r.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay: %s %v", r, r.Header)
			}
		}
		create(t, u, "another", "Idempotency-Key", "k-1").wantError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		if n := len(u.do(t, http.MethodGet, "/auth/api-keys", nil).want(t, http.StatusOK).list("apiKeys")); n != 1 {
			t.Fatalf("%d keys after the retries, want 1", n)
		}
		// One key space per account: a deploy's key cannot make an API key.
		u.do(t, http.MethodPost, "/servers", deployBody("idem", "vc2-1c-1gb"), "Idempotency-Key", "deploy-1").want(t, http.StatusAccepted)
		create(t, u, "x", "Idempotency-Key", "deploy-1").wantError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		// A deleted key is not shown again.
		u.do(t, http.MethodDelete, "/auth/api-keys/"+first.str("apiKey.id"), nil).want(t, http.StatusOK)
		create(t, u, "retried", "Idempotency-Key", "k-1").wantError(t, http.StatusConflict, "invalid_state")
	})
}

// credentialRestartTests: passwords and keys outlive a restart, and a key
// outlives the sandbox clock's expiry of tokens.
func credentialRestartTests(t *testing.T, newModel func(t *testing.T, store eventstore.Store) projections.Model) {
	t.Run("keys and a changed password outlive a restart; keys do not expire", func(t *testing.T) {
		t.Parallel()
		cfg := config{DataDir: t.TempDir(), JWTSecret: randomHex(32), AdminToken: randomHex(32), SecretsKey: randomHex(32)}
		first := newHarness(t, newModel, cfg)
		u := first.register(t)
		key := u.do(t, http.MethodPost, "/auth/api-keys", map[string]string{"name": "long-running"}).want(t, http.StatusCreated).str("key")
		u.do(t, http.MethodPost, "/auth/password", map[string]string{"currentPassword": u.password, "newPassword": "changed before the restart"}).
			want(t, http.StatusOK)
		u.password = "changed before the restart"
		old := u.token
		first.close()

		second := newHarness(t, newModel, cfg)
		u.h = second
		second.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+old).wantError(t, http.StatusUnauthorized, "unauthorized")
		second.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+key).want(t, http.StatusOK)
		r := second.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email, "password": u.password}).want(t, http.StatusOK)
		tok := r.str("accessToken")
		second.do(t, http.MethodPost, "/sandbox/clock/advance", map[string]int64{"seconds": 16 * 60}, "Authorization", "Bearer "+key).
			want(t, http.StatusOK)
		second.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+tok).wantError(t, http.StatusUnauthorized, "token_expired")
		second.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+key).want(t, http.StatusOK)
	})
}

// rotationTests: the JWT secret is rotated without logging anybody out:
// tokens signed with the previous secret keep working while it is given as
// previous, and stop when it no longer is.
func rotationTests(t *testing.T, newModel func(t *testing.T, store eventstore.Store) projections.Model) {
	t.Run("tokens of the previous secret work during a rotation and stop after it", func(t *testing.T) {
		t.Parallel()
		oldSecret, newSecret := randomHex(32), randomHex(32)
		cfg := config{DataDir: t.TempDir(), JWTSecret: oldSecret, AdminToken: randomHex(32), SecretsKey: randomHex(32)}
		first := newHarness(t, newModel, cfg)
		u := first.register(t)
		key := u.do(t, http.MethodPost, "/auth/api-keys", map[string]string{"name": "rotation"}).want(t, http.StatusCreated).str("key")
		old := u.token
		first.close()

		cfg.JWTSecret, cfg.JWTPrevious = newSecret, oldSecret
		during := newHarness(t, newModel, cfg)
		during.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+old).want(t, http.StatusOK)
		fresh := during.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email, "password": u.password}).
			want(t, http.StatusOK).str("accessToken")
		if kidOf(t, fresh) == kidOf(t, old) {
			t.Fatalf("a token issued during the rotation names the old key")
		}
		during.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+fresh).want(t, http.StatusOK)
		during.close()

		cfg.JWTPrevious = ""
		after := newHarness(t, newModel, cfg)
		after.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+old).wantError(t, http.StatusUnauthorized, "unauthorized")
		after.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+fresh).want(t, http.StatusOK)
		// API keys are not tokens: no rotation touches them.
		after.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+key).want(t, http.StatusOK)
	})
}
