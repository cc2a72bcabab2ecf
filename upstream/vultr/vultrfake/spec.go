package vultrfake

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// specJSON is Vultr's published OpenAPI 3.0 document for API v2, copied
// unchanged from the project's shared specs (/work/shared/specs/
// vultr-openapi.json, itself from vultr/vultr-python-client,
// openapi-client/swagger.json), so the fake needs nothing outside the repo.
//
//go:embed testdata/vultr-openapi.json
var specJSON []byte

// Spec is the embedded Vultr OpenAPI document.
func Spec() []byte { return bytes.Clone(specJSON) }

// validator checks exchanges against the document. It is built once per
// process (loading the 600 KB document takes a while) and is read-only
// afterwards, so servers share it.
type validator struct {
	doc    *openapi3.T
	router routers.Router
}

var loadValidator = sync.OnceValues(func() (*validator, error) {
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(specJSON)
	if err != nil {
		return nil, fmt.Errorf("vultrfake: load the Vultr OpenAPI document: %w", err)
	}
	// Route on paths alone, below /v2 (the document's server is
	// https://api.vultr.com/v2; the fake listens elsewhere).
	routing := *doc
	routing.Servers = nil
	router, err := gorillamux.NewRouter(&routing)
	if err != nil {
		return nil, fmt.Errorf("vultrfake: route the Vultr OpenAPI document: %w", err)
	}
	return &validator{doc: doc, router: router}, nil
})

// globalStatuses are the statuses the document's introduction says any
// call may answer, with a JSON body {"error": "...", "status": n} for the
// 4xx (and, in practice, the 5xx).
var globalStatuses = map[int]bool{400: true, 401: true, 403: true, 404: true, 429: true, 500: true, 502: true, 503: true}

func options() *openapi3filter.Options {
	opts := &openapi3filter.Options{
		MultiError:            true,
		IncludeResponseStatus: true,
		SkipSettingDefaults:   true,
		AuthenticationFunc:    bearerPresent,
	}
	return opts
}

// errNoBearer is a request without "Authorization: Bearer <key>" on an
// operation that needs one: Vultr answers 401.
var errNoBearer = errors.New(`no "Authorization: Bearer <key>" header`)

func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	kind, token, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(kind, "Bearer") || strings.TrimSpace(token) == "" {
		return errNoBearer
	}
	return nil
}

// route finds the documented operation of a request to /v2/...
func (v *validator) route(r *http.Request) (*routers.Route, map[string]string, error) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/v2/")
	if !ok {
		return nil, nil, fmt.Errorf("%s is not below /v2/", r.URL.Path)
	}
	rr := r.Clone(context.Background())
	rr.URL.Path, rr.URL.RawPath = "/"+rest, ""
	rr.URL.Host, rr.URL.Scheme, rr.Host = "", "", ""
	return v.router.FindRoute(rr)
}

// needsAuth says whether the operation asks for the API key (the
// availability of plans in a region does not).
func (v *validator) needsAuth(route *routers.Route) bool {
	if sec := route.Operation.Security; sec != nil {
		return len(*sec) > 0
	}
	return len(v.doc.Security) > 0
}

// checkRequest validates a request (body given separately). authFailed
// says the only problem is a missing credential.
func (v *validator) checkRequest(r *http.Request, body []byte, route *routers.Route, params map[string]string) (in *openapi3filter.RequestValidationInput, authFailed bool, err error) {
	rr := r.Clone(context.Background())
	rr.Body = io.NopCloser(bytes.NewReader(body))
	rr.ContentLength = int64(len(body))
	in = &openapi3filter.RequestValidationInput{Request: rr, PathParams: params, Route: route, Options: options()}
	err = openapi3filter.ValidateRequest(context.Background(), in)
	if err == nil {
		return in, false, nil
	}
	var sec *openapi3filter.SecurityRequirementsError
	if errors.As(err, &sec) && onlySecurity(err) {
		return in, true, nil
	}
	return in, false, err
}

// onlySecurity says whether every finding in err is a security one.
func onlySecurity(err error) bool {
	var me openapi3.MultiError
	if errors.As(err, &me) {
		for _, e := range me {
			var sec *openapi3filter.SecurityRequirementsError
			if !errors.As(e, &sec) {
				return false
			}
		}
	}
	return true
}

// checkResponse validates an answer against the operation, or against the
// introduction's error shape for a status the operation does not list.
func (v *validator) checkResponse(in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	op := in.Route.Operation
	if op.Responses.Status(status) == nil && op.Responses.Default() == nil {
		if !globalStatuses[status] {
			return fmt.Errorf("status %d is neither listed for the operation nor in the document's introduction", status)
		}
		return checkErrorBody(body)
	}
	if status >= 400 && len(body) > 0 {
		if err := checkErrorBody(body); err != nil {
			return err
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: options()}
	out.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), out)
}

// checkErrorBody checks the introduction's error answer: a JSON object with
// an "error" string.
func checkErrorBody(body []byte) error {
	var e struct {
		Error  *string `json:"error"`
		Status int     `json:"status"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		return fmt.Errorf("an error answer is not {\"error\": \"...\"}: %s", body)
	}
	return nil
}
