package btcpayfake

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The published Greenfield fragments; see spec/ORIGIN.md.
//
//go:embed spec/*.json
var fragments embed.FS

var fragmentFiles = []string{"swagger.template.json", "swagger.template.invoices.json", "swagger.template.webhooks.json"}

// Spec is the merged Greenfield document the fake checks traffic against.
type Spec struct {
	doc    *openapi3.T
	router routers.Router
	// webhooks maps an event type to the schema of its body (x-webhooks).
	webhooks map[string]*openapi3.Schema
}

// MergedDocument merges the three fragments as BTCPay builds its
// swagger.json (paths, components per sub-key and x-webhooks; openapi,
// info, servers and security from the base), stubs the references to
// fragments we do not have, and relaxes additionalProperties: false inside
// allOf (see relax). It returns the JSON document.
func MergedDocument() ([]byte, error) {
	merged := map[string]any{}
	for _, name := range fragmentFiles {
		data, err := fragments.ReadFile("spec/" + name)
		if err != nil {
			return nil, err
		}
		var frag map[string]any
		if err := json.Unmarshal(data, &frag); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for key, v := range frag {
			switch key {
			case "paths", "x-webhooks":
				into(merged, key, v)
			case "components":
				comps, _ := v.(map[string]any)
				for sub, sv := range comps {
					into(sub2(merged, "components"), sub, sv)
				}
			case "tags":
				tags, _ := merged["tags"].([]any)
				more, _ := v.([]any)
				merged["tags"] = append(tags, more...)
			default:
				if _, ok := merged[key]; !ok {
					merged[key] = v
				}
			}
		}
	}
	comps := sub2(merged, "components")
	// References into fragments not copied (README: none sits on what we use).
	params := sub2(comps, "parameters")
	if _, ok := params["PaymentMethodId"]; !ok {
		params["PaymentMethodId"] = map[string]any{"name": "paymentMethodId", "in": "path", "required": true,
			"schema": map[string]any{"$ref": "#/components/schemas/PaymentMethodId"}}
	}
	schemas := sub2(comps, "schemas")
	for _, name := range []string{"PullPaymentData", "PayoutState"} {
		if _, ok := schemas[name]; !ok {
			schemas[name] = map[string]any{"description": "stub: defined in a fragment not copied"}
		}
	}
	relax(merged, schemas)
	return json.Marshal(merged)
}

func sub2(m map[string]any, key string) map[string]any {
	s, ok := m[key].(map[string]any)
	if !ok {
		s = map[string]any{}
		m[key] = s
	}
	return s
}

func into(m map[string]any, key string, v any) {
	src, ok := v.(map[string]any)
	if !ok {
		m[key] = v
		return
	}
	dst := sub2(m, key)
	for k, x := range src {
		dst[k] = x
	}
}

// relax removes additionalProperties: false from the branches of every
// allOf with more than one branch, inline or referenced: under JSON Schema
// each branch sees the whole object, so a closed branch rejects the other
// branches' properties, which BTCPay (whose C# models are one flat class)
// never meant. Schemas used on their own stay closed.
func relax(doc map[string]any, schemas map[string]any) {
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if all, ok := x["allOf"].([]any); ok && len(all) > 1 {
				for _, b := range all {
					br, ok := b.(map[string]any)
					if !ok {
						continue
					}
					if ref, ok := br["$ref"].(string); ok {
						if named, ok := schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any); ok {
							open(named)
						}
						continue
					}
					open(br)
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(doc)
}

func open(s map[string]any) {
	if ap, ok := s["additionalProperties"].(bool); ok && !ap {
		delete(s, "additionalProperties")
	}
}

// LoadSpec loads, checks and indexes the merged document.
func LoadSpec() (*Spec, error) {
	data, err := MergedDocument()
	if err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load the merged Greenfield document: %w", err)
	}
	// Examples are not checked: some upstream examples do not match their schemas.
	if err := doc.Validate(loader.Context, openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("the merged Greenfield document is invalid: %w", err)
	}
	routing := *doc
	routing.Servers = nil
	router, err := gorillamux.NewRouter(&routing)
	if err != nil {
		return nil, fmt.Errorf("route the Greenfield document: %w", err)
	}
	s := &Spec{doc: doc, router: router, webhooks: map[string]*openapi3.Schema{}}
	// x-webhooks: {Type: {post: {requestBody: {content: {application/json: {schema: {$ref}}}}}}}
	var raw struct {
		Webhooks map[string]struct {
			Post struct {
				RequestBody struct {
					Content map[string]struct {
						Schema struct {
							Ref string `json:"$ref"`
						} `json:"schema"`
					} `json:"content"`
				} `json:"requestBody"`
			} `json:"post"`
		} `json:"x-webhooks"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	for typ, hook := range raw.Webhooks {
		ref := hook.Post.RequestBody.Content["application/json"].Schema.Ref
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if !ok {
			continue // inline schemas (PaymentRequest*, Payout*): not ours
		}
		sref := doc.Components.Schemas[name]
		if sref == nil || sref.Value == nil {
			return nil, fmt.Errorf("x-webhooks %s: no schema %s", typ, name)
		}
		s.webhooks[typ] = sref.Value
	}
	return s, nil
}

// ValidateWebhook checks a webhook body against the schema x-webhooks gives
// its type.
func (s *Spec) ValidateWebhook(typ string, body []byte) error {
	schema, ok := s.webhooks[typ]
	if !ok {
		return fmt.Errorf("x-webhooks documents no event %q", typ)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	return schema.VisitJSON(v, openapi3.MultiErrors())
}

// exchange validates a request and the answer to it. A request that breaks
// the document is an error unless the answer refuses it (4xx).
type exchange struct {
	in *openapi3filter.RequestValidationInput
}

var errNoRoute = errors.New("no documented operation")

// checkRequest validates r (whose body is body) against the document, and
// auth checks its credentials. It returns the input needed to check the
// answer, and the request's mismatch, if any.
func (s *Spec) checkRequest(r *http.Request, body []byte, auth openapi3filter.AuthenticationFunc) (*exchange, error) {
	rr := r.Clone(context.Background())
	rr.Body = http.NoBody
	if body != nil {
		rr.Body = readCloser(body)
		rr.GetBody = func() (io.ReadCloser, error) { return readCloser(body), nil }
	}
	route, params, err := s.router.FindRoute(rr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", errNoRoute, r.Method, r.URL.Path, err)
	}
	opts := &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true, SkipSettingDefaults: true,
		AuthenticationFunc: auth}
	in := &openapi3filter.RequestValidationInput{Request: rr, PathParams: params, Route: route, Options: opts}
	return &exchange{in: in}, openapi3filter.ValidateRequest(context.Background(), in)
}

// checkResponse validates an answer to the request of x.
func (x *exchange) checkResponse(status int, header http.Header, body []byte) error {
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: x.in, Status: status, Header: header,
		Options: x.in.Options}
	out.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), out)
}

// operation names the operation of x ("Invoices_GetInvoice").
func (x *exchange) operation() string { return x.in.Route.Operation.OperationID }

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }
