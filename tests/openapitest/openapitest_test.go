package openapitest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/tests/openapitest"
)

// TestValidatorCatchesDrift checks that the validator fails exchanges that
// do not match the document.
func TestValidatorCatchesDrift(t *testing.T) {
	v := openapitest.New(t)
	req := func(method, path, body string, headers ...string) *http.Request {
		r := httptest.NewRequest(method, "http://127.0.0.1:1"+path, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		return r
	}
	resp := func(status int, body string, headers ...string) *http.Response {
		h := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"5b38fb25-5aba-4012-8702-bb584c21e6b4"},
			"Ratelimit-Limit": {"100"}, "Ratelimit-Remaining": {"99"}, "Ratelimit-Reset": {"60"}}
		for i := 0; i+1 < len(headers); i += 2 {
			if headers[i+1] == "" {
				h.Del(headers[i])
				continue
			}
			h.Set(headers[i], headers[i+1])
		}
		return &http.Response{StatusCode: status, Header: h}
	}
	auth := []string{"Authorization", "Bearer x"}
	billing := `{"balance":"9.986","hourlySpend":"0.014","hoursLeft":713,"suspendsAt":"2026-12-03T13:00:00Z"}`
	for _, c := range []struct {
		name    string
		req     *http.Request
		reqBody string
		resp    *http.Response
		body    string
		bad     bool
	}{
		{"a good answer", req("GET", "/billing", "", auth...), "", resp(200, billing), billing, false},
		{"an extra field", req("GET", "/billing", "", auth...), "", resp(200, `{"balance":"1.00","hourlySpend":"0","x":1}`), `{"balance":"1.00","hourlySpend":"0","x":1}`, true},
		{"money as a number", req("GET", "/billing", "", auth...), "", resp(200, `{"balance":1,"hourlySpend":"0"}`), `{"balance":1,"hourlySpend":"0"}`, true},
		{"an undocumented status", req("GET", "/billing", "", auth...), "", resp(418, `{"error":"x","code":"internal"}`), `{"error":"x","code":"internal"}`, true},
		{"a missing rate-limit header", req("GET", "/billing", "", auth...), "", resp(200, billing, "Ratelimit-Remaining", ""), billing, true},
		{"an unknown error code", req("GET", "/billing", "", auth...), "", resp(503, `{"error":"x","code":"nope"}`), `{"error":"x","code":"nope"}`, true},
		{"a documented error", req("GET", "/billing", ""), "", resp(401, `{"error":"x","code":"unauthorized"}`), `{"error":"x","code":"unauthorized"}`, false},
		{"no token, yet 200", req("GET", "/billing", ""), "", resp(200, billing), billing, true},
		{"a bad request refused", req("POST", "/billing/topups", "x", auth...), `{"amount":5}`, resp(400, `{"error":"x","code":"validation_failed","details":{"amount":"must be a string"}}`),
			`{"error":"x","code":"validation_failed","details":{"amount":"must be a string"}}`, false},
		{"a bad request accepted", req("POST", "/billing/topups", "x", auth...), `{"amount":"5.00","currency":"BTC","extra":1}`,
			resp(201, `{"topup":{"id":"e32c9153-7746-4da3-b334-2fdf528d7ea2","status":"PENDING","amount":"5.00","currency":"BTC","payAddress":"a","createdAt":"2026-11-28T21:08:56Z","paidAt":null}}`),
			`{"topup":{"id":"e32c9153-7746-4da3-b334-2fdf528d7ea2","status":"PENDING","amount":"5.00","currency":"BTC","payAddress":"a","createdAt":"2026-11-28T21:08:56Z","paidAt":null}}`, true},
		{"null ipv4 is fine", req("GET", "/servers/779e63ab-185f-4ad7-96fe-0c514c990812", "", auth...), "",
			resp(200, `{"server":{"id":"779e63ab-185f-4ad7-96fe-0c514c990812","label":"a","status":"PROVISIONING","region":"ams","plan":"p","ipv4":null,"hourlyPrice":"0.014","createdAt":"2026-11-28T21:08:56Z","error":null,"sshUser":"root","sshPort":22,"hostKeyFingerprints":null,"rootPassword":null}}`),
			`{"server":{"id":"779e63ab-185f-4ad7-96fe-0c514c990812","label":"a","status":"PROVISIONING","region":"ams","plan":"p","ipv4":null,"hourlyPrice":"0.014","createdAt":"2026-11-28T21:08:56Z","error":null,"sshUser":"root","sshPort":22,"hostKeyFingerprints":null,"rootPassword":null}}`, false},
		{"an unknown status", req("GET", "/servers/779e63ab-185f-4ad7-96fe-0c514c990812", "", auth...), "",
			resp(200, `{"server":{"id":"779e63ab-185f-4ad7-96fe-0c514c990812","label":"a","status":"RUNNING","region":"ams","plan":"p","ipv4":null,"hourlyPrice":"0.014","createdAt":"2026-11-28T21:08:56Z","error":null,"sshUser":"root","sshPort":22,"hostKeyFingerprints":null,"rootPassword":null}}`),
			`{"server":{"id":"779e63ab-185f-4ad7-96fe-0c514c990812","label":"a","status":"RUNNING","region":"ams","plan":"p","ipv4":null,"hourlyPrice":"0.014","createdAt":"2026-11-28T21:08:56Z","error":null,"sshUser":"root","sshPort":22,"hostKeyFingerprints":null,"rootPassword":null}}`, true},
		{"an unrouted 404", req("GET", "/nope", "", auth...), "", resp(404, `{"error":"not found","code":"not_found"}`), `{"error":"not found","code":"not_found"}`, false},
		{"an unrouted 200", req("GET", "/nope", "", auth...), "", resp(200, `{}`), `{}`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var reqBody []byte
			if c.reqBody != "" {
				reqBody = []byte(c.reqBody)
			}
			err := v.CheckExchange(c.req, reqBody, c.resp, []byte(c.body))
			if (err != nil) != c.bad {
				t.Errorf("mismatch found: %v, want %v (%v)", err != nil, c.bad, err)
			}
			if err != nil {
				t.Logf("%v", err)
			}
		})
	}
	if got := v.PathTemplate("GET", "/servers/779e63ab-185f-4ad7-96fe-0c514c990812"); got != "GET /servers/{id}" {
		t.Errorf("PathTemplate = %q", got)
	}
	if un := v.Uncovered(); len(un) == 0 || slices.Contains(un, "GET /billing") {
		t.Errorf("Uncovered after checking GET /billing: %v", un)
	}
	var ft fakeT
	v.AssertAllCovered(&ft)
	if !strings.Contains(ft.said, "no test exercised") || !strings.Contains(ft.said, "GET /plans") {
		t.Errorf("AssertAllCovered said nothing of the operations left: %q", ft.said)
	}
	ft = fakeT{}
	v.AssertAllCovered(&ft, "GET /nope")
	if !ft.failed || !strings.Contains(ft.said, "not a documented operation") {
		t.Errorf("AssertAllCovered took an unknown exception: %q", ft.said)
	}
}

// fakeT records what AssertAllCovered reports: with -run it logs instead
// of failing.
type fakeT struct {
	testing.TB
	failed bool
	said   string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.failed = true
	f.said += fmt.Sprintf(format, args...)
}
func (f *fakeT) Logf(format string, args ...any) { f.said += fmt.Sprintf(format, args...) }
