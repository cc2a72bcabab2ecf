// Package openapitest checks HTTP exchanges with the API against its OpenAPI
// document (api.OpenAPIDocument, served at /openapi.json) and records which
// documented operations a suite exercised.
//
// Hook it into the one place a suite sends requests:
//
//	var oas = openapitest.New(t)                // once per suite
//	oas.Check(t, req, reqBody, res, resBody)    // after every exchange
//	oas.AssertAllCovered(t)                     // once, after every test ran
//
// Check fails the test (t.Errorf, safe from any goroutine) when:
//   - the response does not match the document for the operation: a status
//     the operation does not list, a missing or malformed documented header,
//     a content type or a body that does not match;
//   - the request does not match the document (body, parameters, bearer
//     token) and yet the server accepted it (any status below 400): either
//     the document is too strict or the server too lenient;
//   - the request matches no documented operation and the answer is not a
//     4xx in the shared Error shape.
//
// A request that breaks the document on purpose (a bad field, no token) is
// fine as long as the answer is one of the operation's documented errors.
// Security requirements accept any bearer token: only the presence of
// "Authorization: Bearer <something>" is checked, the server checks the rest.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/cryptovps/cryptovps/api"
)

func init() {
	// /docs answers text/html, which kin-openapi has no decoder for.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
}

// Validator checks exchanges against one OpenAPI document. It is safe for
// concurrent use by parallel tests.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
	errs   *openapi3.Schema
	ops    []string // "METHOD /path/{param}", sorted

	mu      sync.Mutex
	covered map[string]int
}

// New loads the API's embedded OpenAPI document, failing t if it does not
// load or validate.
func New(t testing.TB) *Validator {
	t.Helper()
	v, err := Load(api.OpenAPIDocument())
	if err != nil {
		t.Fatalf("openapi: %v", err)
	}
	return v
}

// Load builds a Validator from an OpenAPI 3.1 document: it must load, resolve
// its references and pass kin-openapi's validation, examples included.
func Load(data []byte) (*Validator, error) {
	doc, err := LoadDocument(data)
	if err != nil {
		return nil, err
	}
	// Route on paths alone: the document's server URL is relative ("/"), and
	// suites talk to whatever host their server listens on.
	routing := *doc
	routing.Servers = nil
	router, err := gorillamux.NewRouter(&routing)
	if err != nil {
		return nil, fmt.Errorf("build the router: %w", err)
	}
	v := &Validator{doc: doc, router: router, covered: map[string]int{}}
	if ref := doc.Components.Schemas["Error"]; ref != nil {
		v.errs = ref.Value
	} else {
		return nil, errors.New("the document has no components.schemas.Error")
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		for method := range doc.Paths.Value(path).Operations() {
			v.ops = append(v.ops, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(v.ops)
	return v, nil
}

// LoadDocument loads and validates an OpenAPI document with kin-openapi: its
// structure, references, schemas (JSON Schema 2020-12 for OpenAPI 3.1),
// patterns, defaults and examples.
func LoadDocument(data []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load the document: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("the document is OpenAPI %q, want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(loader.Context, openapi3.EnableExamplesValidation(), openapi3.EnableMultiError()); err != nil {
		return nil, fmt.Errorf("the document is invalid: %w", err)
	}
	return doc, nil
}

// Document is the loaded document.
func (v *Validator) Document() *openapi3.T { return v.doc }

// Operations lists every documented operation as "METHOD /path/{param}",
// sorted.
func (v *Validator) Operations() []string { return slices.Clone(v.ops) }

// Uncovered lists the documented operations no Check has exercised yet,
// sorted.
func (v *Validator) Uncovered() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for _, op := range v.ops {
		if v.covered[op] == 0 {
			out = append(out, op)
		}
	}
	return out
}

// AssertAllCovered fails t unless every documented operation was exercised,
// except those named in except ("POST /admin/accounts/{who}/limit"). Call it
// once every test that sends requests has finished (from a t.Cleanup of the
// suite's parent test, which runs after its parallel subtests). With -run or
// -skip only part of the suite runs, so it only logs what was left out.
func (v *Validator) AssertAllCovered(t testing.TB, except ...string) {
	t.Helper()
	report := t.Errorf
	if filtered() {
		report = t.Logf
	}
	for _, e := range except {
		if !slices.Contains(v.ops, e) {
			t.Errorf("openapi: AssertAllCovered: %q is not a documented operation (want one of %s)", e, strings.Join(v.ops, ", "))
		}
	}
	var missing []string
	for _, op := range v.Uncovered() {
		if !slices.Contains(except, op) {
			missing = append(missing, op)
		}
	}
	if len(missing) > 0 {
		report("openapi: %d documented operation(s) no test exercised:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
}

// filtered says whether go test runs only some tests (-run or -skip).
func filtered() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return true
		}
	}
	return false
}

// Check validates one exchange: req as sent with its body reqBody, and resp
// as received with its body respBody (req.Body and resp.Body are not read).
// It reports every mismatch with t.Errorf, so it is safe from any goroutine.
// A nil Validator checks nothing (a helper used outside the suite's Run).
func (v *Validator) Check(t testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	t.Helper()
	if v == nil {
		return
	}
	if req == nil || resp == nil {
		t.Errorf("openapi: Check needs both the request and the response (request %v, response %v)", req != nil, resp != nil)
		return
	}
	if err := v.check(req, reqBody, resp, respBody); err != nil {
		t.Errorf("openapi: %s %s -> %d: %v\n  request body:  %s\n  response body: %s",
			req.Method, req.URL.RequestURI(), resp.StatusCode, err, clip(reqBody), clip(respBody))
	}
}

// CheckExchange is Check returning the mismatch instead of failing a test,
// for helpers without a testing.TB. A nil Validator checks nothing.
func (v *Validator) CheckExchange(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	if v == nil {
		return nil
	}
	if req == nil || resp == nil {
		return errors.New("openapi: CheckExchange needs both the request and the response")
	}
	return v.check(req, reqBody, resp, respBody)
}

func (v *Validator) check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body, r.GetBody = bodyOf(reqBody), func() (io.ReadCloser, error) { return bodyOf(reqBody), nil }
	r.ContentLength = int64(len(reqBody))
	if len(reqBody) > 0 && r.Header.Get("Content-Type") == "" {
		// Like the server, read an untyped body as JSON.
		r.Header.Set("Content-Type", "application/json")
	}

	route, pathParams, err := v.router.FindRoute(r)
	if err != nil {
		return v.checkUnrouted(resp, respBody, err)
	}
	opName := strings.ToUpper(route.Method) + " " + route.Path
	v.mu.Lock()
	v.covered[opName]++
	v.mu.Unlock()

	opts := &openapi3filter.Options{
		MultiError:            true,
		IncludeResponseStatus: true,
		SkipSettingDefaults:   true,
		AuthenticationFunc:    anyBearer,
	}
	opts.WithCustomSchemaErrorFunc(schemaError)
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: pathParams, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(ctx, in)

	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
		Header: resp.Header, Options: opts}
	out.SetBodyBytes(respBody)
	respErr := openapi3filter.ValidateResponse(ctx, out)

	id := route.Operation.OperationID
	switch {
	case reqErr != nil && resp.StatusCode < 400:
		return fmt.Errorf("operation %s: the request does not match the document, yet the server accepted it "+
			"(the document is stricter than the server):\n    %s%s", id, indent(reqErr), alsoResponse(respErr))
	case respErr != nil && reqErr != nil:
		return fmt.Errorf("operation %s: the response does not match the document:\n    %s\n  (the request did not match either, which is fine for an error answer: %s)",
			id, indent(respErr), indent(reqErr))
	case respErr != nil:
		return fmt.Errorf("operation %s: the response does not match the document:\n    %s", id, indent(respErr))
	}
	return nil
}

// checkUnrouted accepts the answer to a request no operation documents if it
// is a 4xx error in the shared Error shape.
func (v *Validator) checkUnrouted(resp *http.Response, body []byte, routeErr error) error {
	if resp.StatusCode < 400 || resp.StatusCode > 499 {
		return fmt.Errorf("no documented operation (%v), yet the answer is %d", routeErr, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("no documented operation (%v): the error answer is %q, not application/json", routeErr, ct)
	}
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return fmt.Errorf("no documented operation (%v): the error answer is not JSON: %v", routeErr, err)
	}
	if err := v.errs.VisitJSON(value, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("no documented operation (%v): the error answer is not an Error: %v", routeErr, err)
	}
	return nil
}

// anyBearer accepts any bearer token: the server checks tokens, the
// document only says one must be sent.
func anyBearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	scheme := in.SecurityScheme
	if scheme == nil || scheme.Type != "http" || !strings.EqualFold(scheme.Scheme, "bearer") {
		return fmt.Errorf("security scheme %q: only http bearer schemes are supported", in.SecuritySchemeName)
	}
	kind, token, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(kind, "Bearer") || strings.TrimSpace(token) == "" {
		return fmt.Errorf("security scheme %q: no \"Authorization: Bearer <token>\" header", in.SecuritySchemeName)
	}
	return nil
}

// jsonSchemaLine is one finding of the JSON Schema 2020-12 validator
// kin-openapi uses for OpenAPI 3.1: "- at '/server/status': value must be
// one of ...".
var jsonSchemaLine = regexp.MustCompile(`^\s*- at '([^']*)': (.*)$`)

// schemaError says where in the value a schema check failed, and why.
func schemaError(err *openapi3.SchemaError) string {
	var found []string
	for _, line := range strings.Split(err.Reason, "\n") {
		if m := jsonSchemaLine.FindStringSubmatch(line); m != nil {
			at := m[1]
			if at == "" {
				at = "/"
			}
			found = append(found, "at "+at+": "+m[2])
		}
	}
	if len(found) > 0 {
		return strings.Join(found, "; ")
	}
	return "at /" + strings.Join(err.JSONPointer(), "/") + ": " + err.Reason
}

func bodyOf(b []byte) io.ReadCloser {
	if b == nil {
		return http.NoBody
	}
	return io.NopCloser(bytes.NewReader(b))
}

func alsoResponse(err error) string {
	if err == nil {
		return ""
	}
	return "\n  and the response does not match either:\n    " + indent(err)
}

func indent(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "\n    ")
}

func clip(b []byte) string {
	const max = 2000
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty)"
	}
	if len(s) > max {
		return s[:max] + fmt.Sprintf("… (%d bytes)", len(b))
	}
	return s
}

// PathTemplate maps a concrete request path to its documented operation
// ("GET /servers/{id}"), or "" when no operation matches.
func (v *Validator) PathTemplate(method, path string) string {
	r := &http.Request{Method: method, URL: &url.URL{Path: path}, Header: http.Header{}}
	route, _, err := v.router.FindRoute(r)
	if err != nil {
		return ""
	}
	return strings.ToUpper(route.Method) + " " + route.Path
}
