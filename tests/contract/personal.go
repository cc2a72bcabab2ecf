package contract

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// personalTests: one rule for emails everywhere, and forgetting an account.
func personalTests(t *testing.T, h *harness) {
	t.Run("an email is normalised once: trimmed, NFKC, lower-cased; login takes any form of it", func(t *testing.T) {
		t.Parallel()
		local := h.unique("wide")
		// Full-width letters and at sign, upper case, spaces around.
		wide := "  " + toFullWidth(strings.ToUpper(local)) + "＠Ｅｘａｍｐｌｅ．ＣＯＭ "
		r := h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": wide, "password": "password-123"}).
			want(t, http.StatusCreated)
		plain := local + "@example.com"
		if r.str("user.email") != plain {
			t.Fatalf("registered %q as %q, want %q", wide, r.str("user.email"), plain)
		}
		h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": strings.ToUpper(plain), "password": "password-123"}).
			want(t, http.StatusOK)
		h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": plain, "password": "password-123"}).
			wantError(t, http.StatusConflict, "email_taken")
	})

	t.Run("control, invisible and bidirectional characters and non-ASCII addresses are a 400 naming email", func(t *testing.T) {
		t.Parallel()
		for email, problem := range map[string]string{
			h.unique("rlo") + "\u202e@example.com":      domain.EmailProblemControl,
			h.unique("zw") + "\u200b@example.com":       domain.EmailProblemControl,
			h.unique("nul") + "\x00@example.com":        domain.EmailProblemControl,
			h.unique("cyr") + "а@example.com":           domain.EmailProblemNotPlain,
			"Agent <" + h.unique("x") + "@example.com>": domain.EmailProblemInvalid,
		} {
			r := h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": email, "password": "password-123"})
			r.wantError(t, http.StatusBadRequest, "validation_failed")
			if got := r.str("details.email"); got != problem {
				t.Errorf("%q: details.email %q, want %q", email, got, problem)
			}
			// Login answers as for any unknown account.
			h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": email, "password": "password-123"}).
				wantError(t, http.StatusUnauthorized, "invalid_credentials")
		}
	})

	t.Run("account ids are random, not derived from the email", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		id := uuid.MustParse(u.id)
		if id.Version() != 4 || u.id == app.LegacyAccountID(u.email) {
			t.Fatalf("account id %s (version %d) for %s", u.id, id.Version(), u.email)
		}
	})

	t.Run("an operator finds an account by an email holding a slash", func(t *testing.T) {
		t.Parallel()
		email := "a/" + h.unique("b") + "@example.com"
		r := h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": email, "password": "password-123"}).
			want(t, http.StatusCreated)
		got := h.admin(t, http.MethodGet, "/admin/accounts/"+url.PathEscape(email), nil).want(t, http.StatusOK)
		if got.str("account.id") != r.str("user.id") || got.str("account.email") != email {
			t.Fatalf("operator view of %s: %s", email, got)
		}
	})

	t.Run("forget: refused with live servers or money left, then the account is gone for good", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.do(t, http.MethodDelete, "/auth/me", nil).wantError(t, http.StatusConflict, "account_has_balance")
		srv := u.deploy(t, "doomed", "vc2-1c-1gb")
		u.do(t, http.MethodDelete, "/auth/me?forfeitBalance=true", nil).wantError(t, http.StatusConflict, "account_has_servers")
		u.do(t, http.MethodDelete, "/auth/me?forfeitBalance=yes", nil).wantError(t, http.StatusBadRequest, "validation_failed")
		u.do(t, http.MethodDelete, "/servers/"+srv, nil).want(t, http.StatusAccepted)
		balance, _ := u.billing(t)

		r := u.do(t, http.MethodDelete, "/auth/me?forfeitBalance=true", nil).want(t, http.StatusOK)
		if !isTrue(r, "forgotten") || r.str("id") != u.id || r.str("forfeitedBalance") != balance {
			t.Fatalf("forget answered %s, want the account and %s forfeited", r, balance)
		}
		// Its token no longer works, nor does its password.
		u.do(t, http.MethodGet, "/auth/me", nil).wantError(t, http.StatusUnauthorized, "unauthorized")
		u.do(t, http.MethodGet, "/billing", nil).wantError(t, http.StatusUnauthorized, "unauthorized")
		h.do(t, http.MethodPost, "/auth/login", map[string]string{"email": u.email, "password": u.password}).
			wantError(t, http.StatusUnauthorized, "invalid_credentials")
		// The operator sees it by id only, without its email.
		h.admin(t, http.MethodGet, "/admin/accounts/"+u.email, nil).wantError(t, http.StatusNotFound, "not_found")
		a := h.admin(t, http.MethodGet, "/admin/accounts/"+u.id, nil).want(t, http.StatusOK)
		if a.str("account.email") != domain.ForgottenEmail || !isTrue(a, "account.forgotten") || a.str("account.balance") != "0.00" {
			t.Fatalf("operator view of a forgotten account: %s", a)
		}
		h.admin(t, http.MethodPost, "/admin/accounts/"+u.id+"/limit", map[string]int{"limit": 3}).
			wantError(t, http.StatusConflict, "account_forgotten")
		// The email is free again: a new account.
		again := h.do(t, http.MethodPost, "/auth/register", map[string]string{"email": u.email, "password": "another-password"}).
			want(t, http.StatusCreated)
		if again.str("user.id") == u.id || again.str("user.email") != u.email || again.str("user.balance") != "10.00" {
			t.Fatalf("registering a forgotten email again: %s", again)
		}
	})

	t.Run("an account on hold cannot forget itself; an operator can forget it", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		h.admin(t, http.MethodPost, "/admin/accounts/"+u.id+"/suspend", map[string]string{"reason": "abuse"}).want(t, http.StatusOK)
		u.do(t, http.MethodDelete, "/auth/me?forfeitBalance=true", nil).wantError(t, http.StatusForbidden, "account_suspended")
		h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/forget", map[string]bool{}).
			wantError(t, http.StatusConflict, "account_has_balance")
		r := h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/forget", map[string]bool{"forfeitBalance": true}).want(t, http.StatusOK)
		if r.str("account.email") != domain.ForgottenEmail || !isTrue(r, "account.forgotten") {
			t.Fatalf("operator forget answered %s", r)
		}
		// Again: nothing more to do, the same answer.
		h.admin(t, http.MethodPost, "/admin/accounts/"+u.id+"/forget", nil).want(t, http.StatusOK)
		u.do(t, http.MethodGet, "/auth/me", nil).wantError(t, http.StatusUnauthorized, "unauthorized")
	})

	t.Run("the event stream of a forgotten account ends", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		events := u.stream(t, "")
		u.do(t, http.MethodDelete, "/auth/me?forfeitBalance=true", nil).want(t, http.StatusOK)
		deadline := time.After(20 * time.Second)
		for {
			select {
			case _, open := <-events:
				if !open {
					return
				}
			case <-deadline:
				t.Fatal("the stream of a forgotten account still runs 20 s after")
			}
		}
	})

	t.Run("simultaneous forgets of one account: one 200, the token refused to the rest", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		rs := fanOut(4, func(int) *response { return u.do(t, http.MethodDelete, "/auth/me?forfeitBalance=true", nil) })
		counts := statusCounts(rs)
		if counts[http.StatusOK] != 1 || counts[http.StatusOK]+counts[http.StatusUnauthorized]+counts[http.StatusConflict] != 4 {
			t.Fatalf("want one 200, the others 401 or 409, got %v", counts)
		}
	})
}

// forgetRestartTests: forgetting survives a restart, and the key store is
// the one beside the log.
func forgetRestartTests(t *testing.T, newModel func(t *testing.T, store eventstore.Store) projections.Model) {
	t.Run("a forgotten account stays forgotten after a restart, and the others keep their emails", func(t *testing.T) {
		t.Parallel()
		cfg := config{DataDir: t.TempDir(), JWTSecret: randomHex(32), AdminToken: randomHex(24), SecretsKey: randomHex(32), TokenTTL: time.Hour}
		first := newHarness(t, newModel, cfg)
		gone, kept := first.register(t), first.register(t)
		gone.do(t, http.MethodDelete, "/auth/me?forfeitBalance=true", nil).want(t, http.StatusOK)
		first.close()

		second := newHarness(t, newModel, cfg)
		gone.h, kept.h = second, second
		if r := kept.do(t, http.MethodGet, "/auth/me", nil).want(t, http.StatusOK); r.str("user.email") != kept.email {
			t.Fatalf("after a restart: %s", r)
		}
		gone.do(t, http.MethodGet, "/auth/me", nil).wantError(t, http.StatusUnauthorized, "unauthorized")
		if r := second.admin(t, http.MethodGet, "/admin/accounts/"+gone.id, nil).want(t, http.StatusOK); r.str("account.email") != domain.ForgottenEmail {
			t.Fatalf("after a restart the forgotten account shows %s", r)
		}
		second.do(t, http.MethodPost, "/auth/login", map[string]string{"email": gone.email, "password": gone.password}).
			wantError(t, http.StatusUnauthorized, "invalid_credentials")
	})
}

// toFullWidth writes ASCII letters and digits in their full-width forms,
// which NFKC maps back.
func toFullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > ' ' && r < 0x7f {
			r += 0xFEE0
		}
		b.WriteRune(r)
	}
	return b.String()
}

// isTrue reports whether the answer holds true at path.
func isTrue(r *response, path string) bool {
	v, ok := r.get(path)
	return ok && v == true
}
