package e2e

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/cryptovps/cryptovps/tests/apiclient"
)

// TestAuthRateLimit: 10 requests a minute per client IP on /auth/*; the 11th
// is 429 with Retry-After and the RateLimit-* headers, and a spoofed
// X-Forwarded-For does not escape it.
func TestAuthRateLimit(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--auth-rate-limit", "10")
	login := apiclient.Request{Method: http.MethodPost, Path: "/auth/login",
		Body: map[string]string{"email": "flood@example.com", "password": "guessing hard"}}
	for i := 1; i <= 10; i++ {
		r := srv.do(t, login)
		r.ExpectError(t, http.StatusUnauthorized, "")
		checkRateHeaders(t, r, 10, 10-i)
	}
	r := srv.do(t, login)
	r.ExpectError(t, http.StatusTooManyRequests, "")
	checkRateHeaders(t, r, 10, 0)
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 60 {
		t.Fatalf("Retry-After %q on the 11th login: %s", r.Header.Get("Retry-After"), r)
	}
	// The whole /auth/* group shares the allowance; a spoofed
	// X-Forwarded-For from an untrusted client changes nothing.
	srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/register",
		Body: map[string]string{"email": "new@example.com", "password": "long enough"}}).ExpectError(t, http.StatusTooManyRequests, "")
	spoofed := login
	spoofed.Header = http.Header{"X-Forwarded-For": {"198.51.100.7"}, "X-Real-Ip": {"198.51.100.8"}}
	srv.do(t, spoofed).ExpectError(t, http.StatusTooManyRequests, "")
	// Everything else still answers.
	srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/healthz"}).Expect(t, http.StatusOK)
	srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/plans"}).Expect(t, http.StatusOK)
}

// TestAccountRateLimit: requests per minute per account, not per client.
func TestAccountRateLimit(t *testing.T) {
	t.Parallel()
	// Set through the environment, which every flag has an equivalent in.
	srv := startServerEnv(t, []string{"CRYPTOVPS_RATE_LIMIT=5"})
	a := newAgent(srv, "busy@example.com")
	a.register(t)
	for i := 1; i <= 5; i++ {
		r := srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/billing", Token: a.token}).Expect(t, http.StatusOK)
		checkRateHeaders(t, r, 5, 5-i)
	}
	r := srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/billing", Token: a.token})
	r.ExpectError(t, http.StatusTooManyRequests, "")
	checkRateHeaders(t, r, 5, 0)
	if retry, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || retry < 1 || retry > 60 {
		t.Fatalf("Retry-After %q: %s", r.Header.Get("Retry-After"), r)
	}
	// Another account from the same client is not affected.
	b := newAgent(srv, "calm@example.com")
	b.register(t)
	srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/billing", Token: b.token}).Expect(t, http.StatusOK)
}

func checkRateHeaders(t testing.TB, r *apiclient.Answer, limit, remaining int) {
	t.Helper()
	if got := r.Header.Get("RateLimit-Limit"); got != strconv.Itoa(limit) {
		t.Fatalf("RateLimit-Limit %q, want %d: %s", got, limit, r)
	}
	if got := r.Header.Get("RateLimit-Remaining"); got != strconv.Itoa(remaining) {
		t.Fatalf("RateLimit-Remaining %q, want %d: %s", got, remaining, r)
	}
	if reset, err := strconv.Atoi(r.Header.Get("RateLimit-Reset")); err != nil || reset < 1 || reset > 60 {
		t.Fatalf("RateLimit-Reset %q: %s", r.Header.Get("RateLimit-Reset"), r)
	}
}
