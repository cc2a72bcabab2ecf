// Package apiclient is the one HTTP client of the suites that talk to the API
// over the network: the contract suite (an in-process server), the
// end-to-end and the multi-process suites (the real binary, started with
// tests/binary). Every request of those suites goes through Client.Send, and
// every exchange is checked there against the OpenAPI document with
// tests/openapitest.
//
// An Answer is what came back: status, headers, the raw body and the body
// decoded as JSON, with the assertions the suites share (Expect, ExpectError,
// ExpectDetail, Decode) and a dotted-path reader of the JSON (Get, Str, List,
// Num).
package apiclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/tests/openapitest"
)

// maxBody bounds how much of an answer is read.
const maxBody = 64 << 20

// Client sends requests to one base URL ("http://127.0.0.1:PORT"). It is safe
// for concurrent use.
type Client struct {
	base string
	oas  *openapitest.Validator
	http *http.Client
}

// New returns a client of the API at base that checks every exchange against
// oas (nil checks nothing). It has connections of its own: CloseIdleConnections
// closes them, and only them.
func New(base string, oas *openapitest.Validator) *Client {
	return &Client{base: strings.TrimRight(base, "/"), oas: oas, http: &http.Client{
		Timeout:   90 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true},
		// An agent sees redirects as they are.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// CloseIdleConnections closes the client's idle keep-alive connections. A
// server shutting down gracefully waits for a connection on which no request
// ever came, so do it before stopping one.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// Base is the base URL the client sends to, for what it cannot send itself
// (a stream read as it comes).
func (c *Client) Base() string { return c.base }

// Request is one HTTP request.
type Request struct {
	Method string
	Path   string // path and query, relative to the base URL
	Token  string // sent as "Authorization: Bearer <Token>" when set
	// Header is sent last: a name in it replaces what the client would
	// send (Content-Type, Accept, Authorization).
	Header http.Header
	// Body is nil (no body), []byte or string (sent as is), io.Reader (sent
	// chunked, without a length) or any other value (sent as JSON). Every
	// body is sent as Content-Type application/json unless Header says
	// otherwise.
	Body any
}

// Header builds a request header from name, value pairs; an odd count fails
// t.
func Header(t testing.TB, pairs ...string) http.Header {
	t.Helper()
	if len(pairs)%2 != 0 {
		t.Errorf("headers must be name, value pairs: %q", pairs)
	}
	if len(pairs) < 2 {
		return nil
	}
	h := http.Header{}
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Add(pairs[i], pairs[i+1])
	}
	return h
}

// Answer is an HTTP answer.
type Answer struct {
	Method, Path string
	Status       int // 0 when no answer came back (see Client.Do)
	Header       http.Header
	Raw          []byte // the body as received
	// JSON is the body decoded as JSON, numbers as json.Number, when the
	// answer is application/json.
	JSON any
}

// ErrorBody is the API's one error shape.
type ErrorBody struct {
	Error   string            `json:"error"`
	Code    string            `json:"code"`
	Details map[string]string `json:"details"`
}

// Send sends r and reads the whole answer. The error is either that no
// answer came back (and the Answer is nil), or that the exchange does not
// match the OpenAPI document or a JSON answer is not JSON (and the Answer is
// what came back).
func (c *Client) Send(r Request) (*Answer, error) {
	var body io.Reader
	var sent []byte // the body as sent, for the OpenAPI check
	length := int64(-1)
	switch b := r.Body.(type) {
	case nil:
	case []byte:
		body, length, sent = bytes.NewReader(b), int64(len(b)), b
	case string:
		body, length, sent = strings.NewReader(b), int64(len(b)), []byte(b)
	case io.Reader:
		data, err := io.ReadAll(b)
		if err != nil {
			return nil, fmt.Errorf("%s %s: read the request body: %w", r.Method, r.Path, err)
		}
		// Wrapped so it has no length and goes out chunked.
		body, sent = struct{ io.Reader }{bytes.NewReader(data)}, data
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode the request body: %w", r.Method, r.Path, err)
		}
		body, length, sent = bytes.NewReader(j), int64(len(j)), j
	}
	req, err := http.NewRequest(r.Method, c.base+r.Path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.Method, r.Path, err)
	}
	if body != nil {
		req.ContentLength = length // -1: chunked
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, vs := range r.Header {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.Method, r.Path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", r.Method, r.Path, err)
	}
	a := &Answer{Method: r.Method, Path: r.Path, Status: res.StatusCode, Header: res.Header, Raw: raw}
	var errs []error
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && r.Method != http.MethodHead {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&a.JSON); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: the answer is not JSON: %v: %s", r.Method, r.Path, err, clip(raw)))
		}
	}
	if err := c.oas.CheckExchange(req, sent, res, raw); err != nil {
		errs = append(errs, fmt.Errorf("openapi: %s %s -> %d: %w\n  request body:  %s\n  response body: %s",
			r.Method, r.Path, res.StatusCode, err, clip(sent), clip(raw)))
	}
	if len(errs) > 0 {
		return a, errors.Join(errs...)
	}
	return a, nil
}

// Do is Send for a test: it reports a failure with t.Errorf, so it is safe
// from any goroutine, and always returns an answer (Status 0 when none came
// back).
func (c *Client) Do(t testing.TB, r Request) *Answer {
	t.Helper()
	a, err := c.Send(r)
	if err != nil {
		t.Errorf("%v", err)
	}
	if a == nil {
		a = &Answer{Method: r.Method, Path: r.Path}
	}
	return a
}

func (a *Answer) String() string {
	return fmt.Sprintf("%s %s -> %d %s", a.Method, a.Path, a.Status, clip(a.Raw))
}

// Expect fails the test unless the answer has the status.
func (a *Answer) Expect(t testing.TB, status int) *Answer {
	t.Helper()
	if a.Status != status {
		t.Fatalf("want %d, got %s", status, a)
	}
	return a
}

// ExpectError fails the test unless the answer is the error shape
// {"error":"...","code":"..."} with the status, and the code when code is
// not empty. It returns the error body.
func (a *Answer) ExpectError(t testing.TB, status int, code string) ErrorBody {
	t.Helper()
	a.Expect(t, status)
	if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error answer with Content-Type %q: %s", ct, a)
	}
	var e ErrorBody
	a.Decode(t, &e)
	if e.Error == "" || e.Code == "" {
		t.Fatalf("error answer without error or code: %s", a)
	}
	if code != "" && e.Code != code {
		t.Fatalf("want code %q, got %s", code, a)
	}
	return e
}

// ExpectDetail fails the test unless the answer is a 400 whose details name
// field.
func (a *Answer) ExpectDetail(t testing.TB, field string) {
	t.Helper()
	if e := a.ExpectError(t, http.StatusBadRequest, ""); e.Details[field] == "" {
		t.Errorf("want details naming %q, got %s", field, a)
	}
}

// Decode reads the JSON body into v.
func (a *Answer) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.Raw, v); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
}

// Get returns the value at a dotted path of the JSON body ("server.id",
// "servers.0.label"; "" is the whole body), and whether it exists.
func (a *Answer) Get(path string) (any, bool) {
	v := a.JSON
	if path == "" {
		return v, true
	}
	for _, part := range strings.Split(path, ".") {
		switch cur := v.(type) {
		case map[string]any:
			next, ok := cur[part]
			if !ok {
				return nil, false
			}
			v = next
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(cur) {
				return nil, false
			}
			v = cur[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// Str is the string at path ("" when absent or not a string).
func (a *Answer) Str(path string) string {
	v, _ := a.Get(path)
	s, _ := v.(string)
	return s
}

// List is the array at path (nil when absent).
func (a *Answer) List(path string) []any {
	v, _ := a.Get(path)
	l, _ := v.([]any)
	return l
}

// Num is the integer at path (-1 when absent or not an integer).
func (a *Answer) Num(path string) int {
	v, _ := a.Get(path)
	n, ok := v.(json.Number)
	if !ok {
		return -1
	}
	i, err := n.Int64()
	if err != nil {
		return -1
	}
	return int(i)
}

func clip(b []byte) string {
	const max = 1000
	s := string(bytes.TrimSpace(b))
	if len(s) > max {
		return s[:max] + fmt.Sprintf("… (%d bytes)", len(b))
	}
	return s
}
