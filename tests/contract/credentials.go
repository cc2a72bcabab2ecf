package contract

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
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
		if c := statusCounts(rs); c[http.StatusOK] < 1 || c[http.StatusOK]+c[http.StatusConflict]+c[http.StatusBadRequest] != 4 {
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
