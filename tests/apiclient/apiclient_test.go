package apiclient_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/tests/apiclient"
	"github.com/cryptovps/cryptovps/tests/openapitest"
)

// document is the API's OpenAPI document, loaded once.
var document = sync.OnceValues(func() (*openapitest.Validator, error) { return openapitest.Load(api.OpenAPIDocument()) })

// seen is what the test server received.
type seen struct {
	header http.Header
	body   []byte
	length int64
}

// serve answers every request with status, contentType and body, and
// records it.
func serve(t *testing.T, status int, contentType, body string) (*apiclient.Client, *seen) {
	t.Helper()
	got := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.header, got.length = r.Header.Clone(), r.ContentLength
		got.body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("X-Request-Id", "request-0001")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	v, err := document()
	if err != nil {
		t.Fatal(err)
	}
	c := apiclient.New(srv.URL, v)
	t.Cleanup(c.CloseIdleConnections)
	return c, got
}

func TestBodiesAndHeaders(t *testing.T) {
	c, got := serve(t, http.StatusOK, "application/json", `{"status":"ok","now":"2026-01-01T00:00:00Z","sandbox":true}`)
	for _, tc := range []struct {
		name   string
		body   any
		want   string
		length int64
	}{
		{"none", nil, "", 0},
		{"string", `{"a":1}`, `{"a":1}`, 7},
		{"bytes", []byte(`[1]`), `[1]`, 3},
		{"reader, chunked", io.Reader(strings.NewReader(`{"b":2}`)), `{"b":2}`, -1},
		{"value as JSON", map[string]int{"c": 3}, `{"c":3}`, 7},
	} {
		// GET /healthz with a body: the document has nothing to say
		// against it, and the answer matches.
		a, err := c.Send(apiclient.Request{Method: http.MethodGet, Path: "/healthz", Token: "tok", Body: tc.body,
			Header: apiclient.Header(t, "X-Extra", "1")})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if string(got.body) != tc.want || got.length != tc.length {
			t.Errorf("%s: sent %q (length %d), want %q (length %d)", tc.name, got.body, got.length, tc.want, tc.length)
		}
		if ct := got.header.Get("Content-Type"); (tc.body != nil) != (ct == "application/json") {
			t.Errorf("%s: Content-Type %q", tc.name, ct)
		}
		if got.header.Get("Authorization") != "Bearer tok" || got.header.Get("X-Extra") != "1" ||
			got.header.Get("Accept") != "application/json" {
			t.Errorf("%s: headers %v", tc.name, got.header)
		}
		if a.Expect(t, http.StatusOK).Str("status") != "ok" {
			t.Errorf("%s: answer %s, JSON %v", tc.name, a, a.JSON)
		}
	}
	// The request's own header replaces the client's.
	c.Send(apiclient.Request{Method: http.MethodGet, Path: "/healthz", Token: "tok",
		Header: http.Header{"Authorization": {"Basic eA=="}}})
	if got.header.Get("Authorization") != "Basic eA==" {
		t.Errorf("Authorization %q, want the request's own", got.header.Get("Authorization"))
	}
}

func TestAnswerOutsideTheDocument(t *testing.T) {
	// /healthz answers JSON: an HTML 200 breaks the document.
	c, _ := serve(t, http.StatusOK, "text/html", "<p>ok</p>")
	a, err := c.Send(apiclient.Request{Method: http.MethodGet, Path: "/healthz"})
	if err == nil || a == nil || a.Status != http.StatusOK || !strings.Contains(err.Error(), "openapi") {
		t.Fatalf("want an OpenAPI mismatch with the answer, got %v, %v", a, err)
	}
}

func TestNoAnswer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	a, err := apiclient.New(srv.URL, nil).Send(apiclient.Request{Method: http.MethodGet, Path: "/healthz"})
	if err == nil || a != nil {
		t.Fatalf("want no answer and an error, got %v, %v", a, err)
	}
}

func TestErrorAnswer(t *testing.T) {
	c, _ := serve(t, http.StatusBadRequest, "application/json",
		`{"error":"bad","code":"validation_failed","details":{"limit":"too big"}}`)
	a := c.Do(t, apiclient.Request{Method: http.MethodGet, Path: "/billing/ledger?limit=100000", Token: "tok"})
	e := a.ExpectError(t, http.StatusBadRequest, "validation_failed")
	if e.Details["limit"] != "too big" || a.Str("details.limit") != "too big" || a.Num("details.limit") != -1 {
		t.Errorf("error body %+v, JSON %v", e, a.JSON)
	}
	a.ExpectDetail(t, "limit")
	if !bytes.Contains(a.Raw, []byte("validation_failed")) {
		t.Errorf("raw %s", a.Raw)
	}
}

func TestJSONPath(t *testing.T) {
	a := &apiclient.Answer{JSON: map[string]any{"servers": []any{map[string]any{"id": "s1"}}}}
	if a.Str("servers.0.id") != "s1" || len(a.List("servers")) != 1 {
		t.Errorf("path reads of %v", a.JSON)
	}
	if _, ok := a.Get("servers.1.id"); ok {
		t.Errorf("servers.1.id exists")
	}
}
