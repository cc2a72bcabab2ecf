package security

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/cryptovps/cryptovps/tests/apiclient"
)

// spoofs are the headers a client might hope a server takes its address
// from, each set to a fresh address per attempt.
func spoofs(i int) []string {
	v4, v6 := fmt.Sprintf("198.51.100.%d", i+1), fmt.Sprintf("2001:db8:%x::1", i+1)
	return []string{
		"X-Forwarded-For", v4 + ", " + v6,
		"X-Real-IP", v4,
		"Forwarded", "for=" + v4 + ";proto=https, for=\"[" + v6 + "]\"",
		"True-Client-IP", v4,
		"CF-Connecting-IP", v4,
		"X-Client-IP", v6,
		"X-Cluster-Client-IP", v4,
		"Fastly-Client-IP", v4,
	}
}

// registerAs is a registration sent with extra headers; it returns the
// status and the email it tried.
func (s *server) registerAs(t *testing.T, header ...string) (int, string) {
	t.Helper()
	email := s.email("spoof")
	a := s.send(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/register",
		Body: map[string]string{"email": email, "password": "correct horse battery"}, Header: apiclient.Header(t, header...)})
	return a.Status, email
}

// expectLimited sends 8 registrations with header(i): the first allowed
// pass, every later one is a 429 that created no account.
func (s *server) expectLimited(t *testing.T, allowed int, header func(i int) []string) {
	t.Helper()
	for i := range 8 {
		code, email := s.registerAs(t, header(i)...)
		switch {
		case i < allowed && code != http.StatusCreated:
			t.Errorf("registration %d: %d, want 201", i, code)
		case i >= allowed && code != http.StatusTooManyRequests:
			t.Errorf("registration %d with new forwarding headers: %d, want 429", i, code)
		case i >= allowed && s.exists(t, email):
			t.Errorf("a 429 registration created %s", email)
		}
	}
}

// Without --trusted-proxies no header moves a client to another per-IP
// bucket: the limit (3 a minute here) holds however the headers change.
func TestForwardingHeadersDoNotDodgeTheIPLimit(t *testing.T) {
	t.Parallel()
	s := start(t, false, "--auth-rate-limit", "3")
	s.expectLimited(t, 3, spoofs)
	// Logins count against the same bucket.
	a := s.send(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/login", Header: apiclient.Header(t, spoofs(99)...),
		Body: map[string]string{"email": "nobody@example.com", "password": "correct horse battery"}})
	a.ExpectError(t, http.StatusTooManyRequests, "rate_limited")
	if a.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// Behind a trusted proxy the client is the proxy's last hop, never what
// the client itself wrote further left; other headers are not read at
// all; an IPv6 client is limited per /64, so the addresses of one
// subscriber share one allowance while another /64 has its own.
func TestTrustedProxyHeadersNameOneClient(t *testing.T) {
	t.Parallel()
	s := start(t, false, "--auth-rate-limit", "3", "--trusted-proxies", "127.0.0.1/32")
	t.Run("spoofed left of the proxy's hop", func(t *testing.T) {
		s.expectLimited(t, 3, func(i int) []string {
			h := spoofs(i)
			h[1] += ", 203.0.113.9" // the hop the proxy appends: the real client
			return h
		})
	})
	t.Run("IPv6 per /64", func(t *testing.T) {
		s.expectLimited(t, 3, func(i int) []string {
			return []string{"X-Forwarded-For", fmt.Sprintf("2001:db8:aa:1:%x::%x", i*7919, i+1)}
		})
		if code, _ := s.registerAs(t, "X-Forwarded-For", "2001:db8:aa:2::1"); code != http.StatusCreated {
			t.Errorf("another /64: %d, want 201 (its own allowance)", code)
		}
	})
	t.Run("the proxy itself", func(t *testing.T) {
		s.expectLimited(t, 3, func(i int) []string { return spoofs(i)[2:] })
	})
}
