package security

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/tests/apiclient"
)

// previousToken is an operator token being rotated out.
const previousToken = "0d3c6f9a2e5b8d1c4f7a0e3b6d9c2f5a8e1b4d7c0f3a6e9b2d5c8f1a4e7b0d3c"

// The operator surface on a listener of its own: the public listener knows
// no /admin or /metrics, the operator listener no public route; the
// current and the previous token both work; ten failed attempts a minute
// from one client, whatever forwarding headers it sends, and it gets 429
// even with the right token, each failure logged; a snapshot streams only
// with a token and the log says who took it. The data dir is private.
func TestOperatorSurface(t *testing.T) {
	t.Parallel()
	s := start(t, true, "--admin-token-previous", previousToken)
	pub, admin := s.Client(), s.AdminClient()
	acct := s.register(t)

	for _, path := range []string{"/admin/accounts/" + acct.email, "/admin/topups/review", "/admin/eventstore/snapshot", "/metrics"} {
		pub.Do(t, apiclient.Request{Method: http.MethodGet, Path: path, Token: operatorToken}).ExpectError(t, http.StatusNotFound, "not_found")
	}
	// The operator listener serves nothing else (raw: /llms.txt has no 404
	// in the document, since the public listener always serves it).
	if r, err := http.Get(s.AdminURL + "/llms.txt"); err != nil || r.StatusCode != http.StatusNotFound {
		t.Errorf("GET /llms.txt on the operator listener: %v %v", r.Status, err)
	} else {
		r.Body.Close()
	}
	for _, tok := range []string{operatorToken, previousToken} {
		admin.Do(t, apiclient.Request{Method: http.MethodGet, Path: "/admin/accounts/" + acct.email, Token: tok}).Expect(t, http.StatusOK)
	}
	admin.Do(t, apiclient.Request{Method: http.MethodGet, Path: "/metrics", Token: operatorToken}).Expect(t, http.StatusOK)

	// The guides name the configured base URL (here the sandbox's
	// default, from --addr), not the Host a client sends.
	for _, path := range []string{"/llms.txt", "/docs"} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		req.Host = "evil.example.net"
		req.Header.Set("X-Forwarded-Host", "evil.example.net")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(page), "evil.example.net") || !strings.Contains(string(page), s.URL) {
			t.Errorf("GET %s with Host evil.example.net: %d, names that host or not %s", path, res.StatusCode, s.URL)
		}
	}

	// A snapshot: refused without the token, logged with its taker.
	admin.Do(t, apiclient.Request{Method: http.MethodGet, Path: "/admin/eventstore/snapshot"}).ExpectError(t, http.StatusUnauthorized, "unauthorized")
	snap := admin.Do(t, apiclient.Request{Method: http.MethodGet, Path: "/admin/eventstore/snapshot", Token: previousToken}).Expect(t, http.StatusOK)
	if len(snap.Raw) < 4096 {
		t.Errorf("a snapshot of %d bytes", len(snap.Raw))
	}
	taken := regexp.MustCompile(`msg="event store snapshot taken by an operator" ip=127\.0\.0\.1 at=\S+ operator_token=previous`)
	if n := len(taken.FindAllString(s.Log(), -1)); n != 1 {
		t.Errorf("%d snapshots logged with their taker, want 1", n)
	}

	// Guessing: ten failures (the snapshot without a token was one), then
	// 429 even for the right token.
	before := acct.state(t)
	for i := range 9 {
		admin.Do(t, apiclient.Request{Method: http.MethodPost, Path: "/admin/accounts/" + acct.email + "/suspend",
			Token: operatorToken[:63] + "0", Body: map[string]string{"reason": "guess"}, Header: apiclient.Header(t, spoofs(i)...)}).
			ExpectError(t, http.StatusUnauthorized, "unauthorized")
	}
	limited := admin.Do(t, apiclient.Request{Method: http.MethodPost, Path: "/admin/accounts/" + acct.email + "/suspend",
		Token: operatorToken, Body: map[string]string{"reason": "guess"}, Header: apiclient.Header(t, spoofs(10)...)})
	limited.ExpectError(t, http.StatusTooManyRequests, "rate_limited")
	if limited.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	if n := strings.Count(s.Log(), `msg="operator authentication failed"`); n != 10 {
		t.Errorf("%d failed operator authentications logged, want 10", n)
	}
	acct.unchanged(t, before, "guessed operator tokens")
	if strings.Contains(acct.do(t, http.MethodGet, "/auth/me", nil).Expect(t, http.StatusOK).Str("user.suspended"), "true") {
		t.Error("the account was suspended")
	}

	// The data dir and what serve keeps in it are the owner's alone.
	if info, err := os.Stat(s.DataDir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("data dir: %v %v, want 0700", info.Mode(), err)
	}
	entries, err := os.ReadDir(s.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := os.Stat(filepath.Join(s.DataDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if m := info.Mode().Perm(); m&0o077 != 0 {
			t.Errorf("%s is mode %#o: open to other users", e.Name(), m)
		}
	}
}
