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

// relax fixes additionalProperties: false inside allOf. Under JSON Schema
// each allOf branch sees the whole object, so a closed branch rejects the
// other branches' properties, which BTCPay (whose C# models are flat
// classes) never meant. Flattening keeps what was meant: in every allOf with
// more than one branch, the branches are opened (a referenced schema is
// replaced by an open copy, "<Name>Open", so its direct uses stay closed),
// and if any branch was closed the allOf itself is closed over the union of
// its branches' properties. Unknown fields stay errors.
func relax(doc map[string]any, schemas map[string]any) {
	const ref = "#/components/schemas/"
	var props func(m map[string]any, into map[string]any)
	closedMemo := map[string]bool{}
	var closed func(m map[string]any) bool
	resolve := func(m map[string]any) (map[string]any, string) {
		if r, ok := m["$ref"].(string); ok {
			name := strings.TrimPrefix(r, ref)
			named, _ := schemas[name].(map[string]any)
			return named, name
		}
		return m, ""
	}
	multi := func(m map[string]any) []any {
		all, _ := m["allOf"].([]any)
		if len(all) < 2 {
			return nil
		}
		return all
	}
	closed = func(m map[string]any) bool {
		m, name := resolve(m)
		if m == nil {
			return false
		}
		if v, ok := closedMemo[name]; ok && name != "" {
			return v
		}
		c := false
		if ap, ok := m["additionalProperties"].(bool); ok && !ap {
			c = true
		}
		for _, b := range multi(m) {
			if br, ok := b.(map[string]any); ok && closed(br) {
				c = true
			}
		}
		if name != "" {
			closedMemo[name] = c
		}
		return c
	}
	props = func(m map[string]any, into map[string]any) {
		m, _ = resolve(m)
		if m == nil {
			return
		}
		if p, ok := m["properties"].(map[string]any); ok {
			for k := range p {
				into[k] = true
			}
		}
		for _, b := range multi(m) {
			if br, ok := b.(map[string]any); ok {
				props(br, into)
			}
		}
	}
	// Decide on the original schemas before changing anything.
	for name := range schemas {
		closed(map[string]any{"$ref": ref + name})
	}
	const done = "x-cryptovps-relaxed"
	var fix func(site map[string]any, closeIt bool)
	openVariant := func(name string) string {
		open := name + "Open"
		if _, ok := schemas[open]; ok {
			return open
		}
		orig, _ := schemas[name].(map[string]any)
		cp := deepCopy(orig).(map[string]any)
		if ap, ok := cp["additionalProperties"].(bool); ok && !ap {
			delete(cp, "additionalProperties")
		}
		delete(cp, done)
		schemas[open] = cp
		if multi(cp) != nil {
			fix(cp, false)
		}
		return open
	}
	fix = func(site map[string]any, closeIt bool) {
		all := multi(site)
		names := map[string]any{}
		props(site, names)
		anyClosed := false
		for i, b := range all {
			br, ok := b.(map[string]any)
			if !ok {
				continue
			}
			if closed(br) {
				anyClosed = true
			}
			if r, ok := br["$ref"].(string); ok {
				if name := strings.TrimPrefix(r, ref); closedMemo[name] {
					all[i] = map[string]any{"$ref": ref + openVariant(name)}
				}
				continue
			}
			if ap, ok := br["additionalProperties"].(bool); ok && !ap {
				delete(br, "additionalProperties")
			}
			if multi(br) != nil {
				fix(br, false)
				delete(br, "additionalProperties")
			}
			br[done] = true
		}
		site[done] = true
		if anyClosed && closeIt {
			p, _ := site["properties"].(map[string]any)
			if p == nil {
				p = map[string]any{}
			}
			for n := range names {
				if _, ok := p[n]; !ok {
					p[n] = map[string]any{}
				}
			}
			site["properties"], site["additionalProperties"] = p, false
		}
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if multi(x) != nil && x[done] == nil {
				fix(x, true)
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

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, y := range x {
			m[k] = deepCopy(y)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, y := range x {
			s[i] = deepCopy(y)
		}
		return s
	}
	return v
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
