package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	wiring "github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/openapitest"
	"github.com/cryptovps/cryptovps/upstream/btcpay"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// pendingRoutes are documented before their route lands. Once one is
// routed, the routes test says to remove it from here.
var pendingRoutes = []string{}

const operatorToken = "operator-secret-for-tests"

// stack is a complete in-process API, wired like `cryptovps serve`.
type stack struct {
	srv    *api.Server
	url    string
	client *http.Client
	pay    sandbox.Payments
}

// Webhooks as a BTCPay store with webhookSecret would send them.
const (
	webhookSecret = "webhook-secret-for-tests"
	webhookStore  = "TestStore"
)

type testWebhooks struct{}

func (testWebhooks) ReadWebhook(r *http.Request) (btcpay.Delivery, error) {
	return btcpay.ReadWebhook(webhookSecret, r)
}
func (testWebhooks) OfStore(d btcpay.Delivery) bool { return d.StoreID == webhookStore }

type stackConfig struct {
	noSandbox    bool
	signupCredit string
	authRate     int
}

var (
	hasherOnce sync.Once
	hasher     *app.Hasher
)

func newStack(t *testing.T, cfg stackConfig) *stack {
	t.Helper()
	hasherOnce.Do(func() { hasher = app.NewHasher(runtime.NumCPU()) })
	if cfg.signupCredit == "" {
		cfg.signupCredit = "10.00"
	}
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatalf("open event store: %v", err)
	}
	signup := domain.MustMoney(cfg.signupCredit)
	apiCfg := api.Config{JWTSecret: []byte("test-secret"), TokenTTL: 15 * time.Minute, AdminToken: operatorToken, Snapshots: store,
		AccountRate: 1_000_000, AuthRate: cfg.authRate, Log: log,
		Guide: api.GuideParams{SignupCredit: signup, ProvisionDelay: time.Minute, BackupDelay: 3 * time.Minute}}
	if apiCfg.AuthRate == 0 {
		apiCfg.AuthRate = 1_000_000
	}
	st, err := wiring.New(context.Background(), wiring.Config{Store: store, Model: memory.New(store), Log: log, Hasher: hasher,
		SandboxCloud: filepath.Join(dir, "sandbox-cloud.json"),
		SandboxCloudOptions: sandbox.CloudOptions{ProvisionDelay: time.Minute, DestroyDelay: 5 * time.Second,
			BackupDelay: 3 * time.Minute},
		NoSandboxAPI: cfg.noSandbox, WorkInterval: 100 * time.Millisecond, Webhooks: testWebhooks{},
		App: app.Config{SignupCredit: signup, ServerLimit: 10}, API: apiCfg})
	if err != nil {
		store.Close()
		t.Fatalf("build the stack: %v", err)
	}
	srv := st.API
	hs := httptest.NewServer(srv)
	stop := st.Start()
	t.Cleanup(func() {
		hs.Close()
		stop()
		if err := errors.Join(st.Close(), store.Close()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	pay, _ := st.Payments.(sandbox.Payments)
	return &stack{srv: srv, url: hs.URL, client: hs.Client(), pay: pay}
}

type answer struct {
	status int
	header http.Header
	raw    []byte
	json   map[string]any
}

func (a answer) str(path string) string {
	var v any = a.json
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

// do sends a request (body: nil, string or JSON-encoded value; headers as
// name, value pairs), checks the exchange against the document when v is
// set, and returns the answer.
func (s *stack) do(t *testing.T, v *openapitest.Validator, method, path string, body any, headers ...string) answer {
	t.Helper()
	var sent []byte
	switch b := body.(type) {
	case nil:
	case string:
		sent = []byte(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		sent = j
	}
	var rd io.Reader
	if sent != nil {
		rd = bytes.NewReader(sent)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if sent != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, path, err)
	}
	if v != nil {
		v.Check(t, req, sent, res, raw)
	}
	a := answer{status: res.StatusCode, header: res.Header, raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(raw, &a.json)
	}
	return a
}

func (a answer) want(t *testing.T, status int, what string) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: want %d, got %d %s", what, status, a.status, a.raw)
	}
	return a
}

func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapitest.LoadDocument(api.OpenAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

type operation struct {
	name   string // "POST /servers"
	method string
	path   string
	op     *openapi3.Operation
}

func operations(doc *openapi3.T) []operation {
	var out []operation
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			out = append(out, operation{name: method + " " + path, method: method, path: path, op: op})
		}
	}
	slices.SortFunc(out, func(a, b operation) int { return strings.Compare(a.name, b.name) })
	return out
}

func hasTag(op *openapi3.Operation, tag string) bool { return slices.Contains(op.Tags, tag) }

func securedBy(doc *openapi3.T, op *openapi3.Operation) []string {
	reqs := doc.Security
	if op.Security != nil {
		reqs = *op.Security
	}
	var out []string
	for _, r := range reqs {
		for name := range r {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIDocument loads the document with kin-openapi, which validates
// OpenAPI 3.1 documents with JSON Schema 2020-12 (type arrays such as
// ["string","null"], const, examples), and checks the conventions every
// operation must follow.
func TestOpenAPIDocument(t *testing.T) {
	doc := loadDoc(t)
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/" {
		t.Errorf("servers must be the one relative URL \"/\" (this deployment), got %v", doc.Servers)
	}
	errRef := "#/components/schemas/Error"
	ids := map[string]string{}
	for _, o := range operations(doc) {
		op := o.op
		t.Run(o.name, func(t *testing.T) {
			if op.OperationID == "" || op.Summary == "" || op.Description == "" || len(op.Tags) != 1 {
				t.Errorf("needs an operationId, a summary, a description and exactly one tag")
			}
			if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("operationId %q also used by %s", op.OperationID, prev)
			}
			ids[op.OperationID] = o.name
			if strings.HasPrefix(o.path, "/sandbox/") != hasTag(op, "sandbox") {
				t.Errorf("exactly the /sandbox/ routes are tagged sandbox")
			}
			if hasTag(op, "sandbox") && !strings.Contains(op.Description, "Sandbox only") {
				t.Errorf("a sandbox operation must say it is sandbox-only")
			}
			if (strings.HasPrefix(o.path, "/admin/") || o.path == "/metrics") != hasTag(op, "operator") {
				t.Errorf("exactly the /admin/ routes and /metrics are tagged operator")
			}
			sec := securedBy(doc, op)
			switch {
			case hasTag(op, "operator"):
				if !slices.Equal(sec, []string{"operatorToken"}) {
					t.Errorf("operator operations need the operatorToken scheme, got %v", sec)
				}
			case hasTag(op, "webhooks"):
				// Called by the payment processor, authenticated by the
				// body's signature.
				if len(sec) != 0 {
					t.Errorf("a webhook needs security [], got %v", sec)
				}
			case o.path == "/healthz" || o.path == "/readyz" || o.path == "/llms.txt" || o.path == "/plans" || o.path == "/regions" ||
				o.path == "/openapi.json" || o.path == "/docs" || o.path == "/docs/custom-requests" ||
				o.path == "/auth/register" || o.path == "/auth/login":
				if len(sec) != 0 {
					t.Errorf("a public operation needs security [], got %v", sec)
				}
			default:
				if !slices.Equal(sec, []string{"bearerAuth"}) {
					t.Errorf("customer operations need the bearerAuth scheme, got %v", sec)
				}
			}
			// Rate limited: every customer route and the two /auth/* routes.
			limited := len(sec) == 1 && sec[0] == "bearerAuth" || o.path == "/auth/register" || o.path == "/auth/login"
			var success int
			for code, ref := range op.Responses.Map() {
				r := ref.Value
				if r.Headers["X-Request-Id"] == nil {
					t.Errorf("%s: every answer carries X-Request-Id", code)
				}
				if code[0] == '2' {
					success++
					for _, h := range []string{"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} {
						if (r.Headers[h] != nil) != limited {
							t.Errorf("%s: header %s documented %v, rate limited %v", code, h, r.Headers[h] != nil, limited)
						}
					}
					continue
				}
				mt := r.Content.Get("application/json")
				if mt == nil || mt.Schema == nil || mt.Schema.Ref != errRef {
					t.Errorf("%s: an error answer must be application/json with the shared %s schema", code, errRef)
				}
				if code == "429" && (r.Headers["Retry-After"] == nil || r.Headers["RateLimit-Reset"] == nil) {
					t.Errorf("429 must document Retry-After and RateLimit-*")
				}
			}
			if success != 1 {
				t.Errorf("want exactly one success answer, got %d", success)
			}
			want := map[string]bool{"500": !isStatic(o.path), "429": limited, "401": len(sec) > 0 || o.path == "/auth/login",
				"503": !isStatic(o.path)}
			if op.RequestBody != nil {
				want["400"], want["413"] = true, true
				for _, mt := range op.RequestBody.Value.Content {
					s := mt.Schema.Value
					// A webhook's body is the processor's, with fields
					// it adds as it likes: only the ones read are named.
					if (s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has) && !hasTag(op, "webhooks") {
						t.Errorf("request body schema %s must set additionalProperties: false", mt.Schema.Ref)
					}
				}
			}
			if strings.Contains(o.path, "{id}") {
				want["404"] = true
			}
			for code, must := range want {
				if must && op.Responses.Value(code) == nil {
					t.Errorf("must document %s", code)
				}
			}
			idem := slices.ContainsFunc(op.Parameters, func(p *openapi3.ParameterRef) bool { return p.Value.Name == "Idempotency-Key" })
			// Every POST of a customer that creates or moves something.
			wantIdem := slices.Contains([]string{"POST /servers", "POST /servers/bulk", "POST /backups/{id}/restore",
				"POST /billing/topups", "POST /backups", "POST /limit-requests", "POST /ssh-keys",
				"POST /sandbox/topups/{id}/pay", "POST /auth/api-keys"}, o.name)
			if idem != wantIdem {
				t.Errorf("Idempotency-Key documented %v, want %v", idem, wantIdem)
			}
			ok := op.Responses.Status(202)
			if ok == nil {
				ok = op.Responses.Status(201)
			}
			if ok == nil {
				ok = op.Responses.Status(200)
			}
			if wantIdem && (op.Responses.Value("422") == nil || ok == nil || ok.Value.Headers["Idempotent-Replayed"] == nil) {
				t.Errorf("an idempotent operation documents 422 and the Idempotent-Replayed header")
			}
		})
	}

	t.Run("error codes", func(t *testing.T) {
		// Every code the API can answer is in the Error schema's enum.
		enum := doc.Components.Schemas["Error"].Value.Properties["code"].Value.Enum
		documented := map[string]bool{}
		for _, c := range enum {
			documented[c.(string)] = true
		}
		re := regexp.MustCompile(`(?:apiError\([^,]+,|Code:)\s*"([a-z_]+)"`)
		files, _ := filepath.Glob("*.go")
		found := map[string]bool{}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range re.FindAllStringSubmatch(string(src), -1) {
				found[m[1]] = true
			}
		}
		if len(found) < 10 {
			t.Fatalf("found only %d error codes in the sources: is the pattern stale?", len(found))
		}
		for code := range found {
			if !documented[code] {
				t.Errorf("the API answers code %q, which the Error schema does not list", code)
			}
		}
	})

	t.Run("enums follow the domain", func(t *testing.T) {
		schemas := doc.Components.Schemas
		enum := func(s *openapi3.Schema) []string {
			var out []string
			for _, v := range s.Enum {
				out = append(out, v.(string))
			}
			slices.Sort(out)
			return out
		}
		sorted := func(s ...string) []string { slices.Sort(s); return s }
		for _, c := range []struct {
			what string
			got  []string
			want []string
		}{
			{"top-up statuses", enum(schemas["Topup"].Value.Properties["status"].Value), sorted(domain.TopupStatusPending,
				domain.TopupStatusProcessing, domain.TopupStatusPaid, domain.TopupStatusExpired, domain.TopupStatusInvalid,
				domain.TopupStatusReview)},
			{"server statuses", enum(schemas["ServerStatus"].Value), sorted(string(domain.StatusProvisioning), string(domain.StatusActive),
				string(domain.StatusSuspended), string(domain.StatusDestroying), string(domain.StatusDestroyed), string(domain.StatusError))},
			{"backup statuses", enum(schemas["Backup"].Value.Properties["status"].Value), sorted(string(domain.BackupPending),
				string(domain.BackupAvailable), string(domain.BackupError), string(domain.BackupExpiredS))},
			{"ledger types", enum(schemas["LedgerTransaction"].Value.Properties["type"].Value), sorted(string(domain.TxSignupCredit),
				string(domain.TxTopup), string(domain.TxCharge), string(domain.TxRefund), string(domain.TxForfeit))},
		} {
			if !slices.Equal(c.got, c.want) {
				t.Errorf("%s: document %v, domain %v", c.what, c.got, c.want)
			}
		}
		if max := schemas["AdvanceRequest"].Value.Properties["seconds"].Value.Max; max == nil || int64(*max) != int64(domain.MaxAdvance/time.Second) {
			t.Errorf("AdvanceRequest.seconds maximum %v, want %d", max, int64(domain.MaxAdvance/time.Second))
		}
	})

	t.Run("served as embedded", func(t *testing.T) {
		s := newStack(t, stackConfig{})
		a := s.do(t, nil, http.MethodGet, "/openapi.json", nil).want(t, http.StatusOK, "GET /openapi.json")
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q", ct)
		}
		if !bytes.Equal(a.raw, api.OpenAPIDocument()) {
			t.Errorf("GET /openapi.json is not the embedded document")
		}
	})
}

func isStatic(path string) bool {
	// /metrics too: a collector that fails leaves its metrics out, never
	// the whole answer.
	return slices.Contains([]string{"/healthz", "/llms.txt", "/plans", "/regions", "/openapi.json", "/docs", "/docs/custom-requests", "/metrics"}, path)
}

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// TestRoutesAreDocumented checks that every route the server registers is
// documented and every documented operation is routed.
func TestRoutesAreDocumented(t *testing.T) {
	doc := loadDoc(t)
	documented := map[string]bool{}
	for _, o := range operations(doc) {
		documented[o.name] = true
	}
	s := newStack(t, stackConfig{})
	routed := map[string]bool{}
	for _, r := range s.srv.Routes() {
		name := r.Method + " " + echoParam.ReplaceAllString(r.Path, "{$1}")
		routed[name] = true
		if !documented[name] {
			t.Errorf("%s is routed but not in api/openapi.json", name)
		}
	}
	if len(routed) < 20 {
		t.Fatalf("only %d routes: %v", len(routed), routed)
	}
	for name := range documented {
		switch {
		case routed[name] && slices.Contains(pendingRoutes, name):
			t.Errorf("%s is routed now: remove it from pendingRoutes in api/openapi_test.go", name)
		case !routed[name] && !slices.Contains(pendingRoutes, name):
			t.Errorf("%s is documented but not routed", name)
		}
	}
	// Without sandbox mode the sandbox routes are gone; the rest stays.
	plain := newStack(t, stackConfig{noSandbox: true})
	for _, r := range plain.srv.Routes() {
		if strings.HasPrefix(r.Path, "/sandbox/") {
			t.Errorf("%s %s routed outside sandbox mode", r.Method, r.Path)
		}
	}
}

// endpointMention is a "METHOD /path" in prose; the path ends at a space,
// a quote or punctuation that cannot be part of it.
var endpointMention = regexp.MustCompile(`\b(GET|POST|PUT|PATCH|DELETE) (/[A-Za-z0-9_./:<>{}-]*)`)

// template turns "/servers/:id", "/servers/<id>" and "/servers/{id}" into
// "/servers/{}".
func template(path string) string {
	path = strings.TrimRight(path, ".:")
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "<") || strings.HasPrefix(p, "{") {
			parts[i] = "{}"
		}
	}
	return strings.Join(parts, "/")
}

func mentions(guide string) map[string]bool {
	out := map[string]bool{}
	for _, m := range endpointMention.FindAllStringSubmatch(guide, -1) {
		out[m[1]+" "+template(m[2])] = true
	}
	return out
}

// TestLLMSTxtMatchesDocument checks that /llms.txt names only documented
// endpoints, and every documented endpoint but the operator's.
func TestLLMSTxtMatchesDocument(t *testing.T) {
	doc := loadDoc(t)
	documented := map[string]operation{}
	for _, o := range operations(doc) {
		documented[o.method+" "+template(o.path)] = o
	}
	for _, sandboxMode := range []bool{true, false} {
		t.Run(fmt.Sprintf("sandbox=%v", sandboxMode), func(t *testing.T) {
			s := newStack(t, stackConfig{noSandbox: !sandboxMode})
			a := s.do(t, nil, http.MethodGet, "/llms.txt", nil).want(t, http.StatusOK, "GET /llms.txt")
			if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q", ct)
			}
			// Durations read as people write them, never in Go's syntax.
			if bad := regexp.MustCompile(`\b\d+(h\d+m|m\d+s|h0m0s)`).FindString(string(a.raw)); bad != "" {
				t.Errorf("/llms.txt says a duration as %q", bad)
			}
			if sandboxMode && (!strings.Contains(string(a.raw), "~60 s") || !strings.Contains(string(a.raw), "3 min after the request")) {
				t.Errorf("/llms.txt does not say the sandbox delays as ~60 s and 3 min")
			}
			if !strings.Contains(string(a.raw), "expire after 15 min") {
				t.Errorf("/llms.txt does not say the token lifetime as 15 min")
			}
			named := mentions(string(a.raw))
			for name := range named {
				if _, ok := documented[name]; !ok {
					t.Errorf("/llms.txt names %s, which api/openapi.json does not document", name)
				}
			}
			for name, o := range documented {
				switch {
				case hasTag(o.op, "operator"), hasTag(o.op, "webhooks"):
					if named[name] {
						t.Errorf("/llms.txt names the operator endpoint %s", name)
					}
				case hasTag(o.op, "sandbox") && !sandboxMode:
					if named[name] {
						t.Errorf("/llms.txt names the sandbox endpoint %s outside sandbox mode", name)
					}
				case !named[name]:
					t.Errorf("/llms.txt does not name %s (%s)", o.name, o.op.Summary)
				}
			}
		})
	}
}

// TestCatalogAgrees checks that /plans, /regions, /llms.txt and the
// document's examples all show the catalog the service deploys from.
func TestCatalogAgrees(t *testing.T) {
	s := newStack(t, stackConfig{})
	cat := domain.DefaultCatalog()
	var planIDs, regionIDs []string
	for _, p := range cat.Plans {
		planIDs = append(planIDs, p.ID)
	}
	for _, r := range cat.Regions {
		regionIDs = append(regionIDs, r.ID)
	}
	ids := func(list any) []string {
		var out []string
		items, _ := list.([]any)
		for _, it := range items {
			m, _ := it.(map[string]any)
			id, _ := m["id"].(string)
			out = append(out, id)
		}
		return out
	}
	plans := s.do(t, nil, http.MethodGet, "/plans", nil).want(t, http.StatusOK, "GET /plans")
	regions := s.do(t, nil, http.MethodGet, "/regions", nil).want(t, http.StatusOK, "GET /regions")
	if got := ids(plans.json["plans"]); !slices.Equal(got, planIDs) {
		t.Errorf("GET /plans ids %v, catalog %v", got, planIDs)
	}
	if got := ids(regions.json["regions"]); !slices.Equal(got, regionIDs) {
		t.Errorf("GET /regions ids %v, catalog %v", got, regionIDs)
	}

	guide := string(s.do(t, nil, http.MethodGet, "/llms.txt", nil).want(t, http.StatusOK, "GET /llms.txt").raw)
	line := func(prefix string) string {
		for _, l := range strings.Split(guide, "\n") {
			if strings.HasPrefix(l, prefix) {
				return strings.TrimSpace(strings.TrimPrefix(l, prefix))
			}
		}
		t.Fatalf("/llms.txt has no %q line", prefix)
		return ""
	}
	var guidePlans []string
	for _, p := range strings.Split(line("plans:"), " · ") {
		guidePlans = append(guidePlans, strings.Fields(p)[0])
	}
	if !slices.Equal(guidePlans, planIDs) {
		t.Errorf("/llms.txt plans %v, catalog %v", guidePlans, planIDs)
	}
	if got := strings.Fields(line("regions:")); !slices.Equal(got, regionIDs) {
		t.Errorf("/llms.txt regions %v, catalog %v", got, regionIDs)
	}
	// Prices in /llms.txt are the ones /plans answers.
	for _, p := range plans.json["plans"].([]any) {
		m := p.(map[string]any)
		want := fmt.Sprintf("%s %s (", m["id"], m["name"])
		if !strings.Contains(guide, want) || !strings.Contains(guide, "$"+m["monthlyPrice"].(string)+"/mo, $"+m["hourlyPrice"].(string)+"/h") {
			t.Errorf("/llms.txt does not print plan %v as /plans does", m)
		}
	}

	// The document's examples of /plans and /regions are the real answers.
	doc := loadDoc(t)
	for path, got := range map[string][]byte{"/plans": plans.raw, "/regions": regions.raw} {
		mt := doc.Paths.Value(path).Get.Responses.Status(200).Value.Content.Get("application/json")
		var want, have any
		b, _ := json.Marshal(mt.Example)
		_ = json.Unmarshal(b, &want)
		_ = json.Unmarshal(got, &have)
		if !reflect.DeepEqual(want, have) {
			t.Errorf("the example of GET %s in api/openapi.json is not what the server answers:\n doc: %s\n got: %s", path, b, got)
		}
	}
	// Plan and region ids in request examples exist.
	for _, name := range []string{"DeployRequest", "BulkDeployRequest"} {
		ex, _ := doc.Components.Schemas[name].Value.Example.(map[string]any)
		if p, _ := ex["planId"].(string); !slices.Contains(planIDs, p) {
			t.Errorf("%s example plan %q is not in the catalog", name, p)
		}
		if r, _ := ex["regionId"].(string); !slices.Contains(regionIDs, r) {
			t.Errorf("%s example region %q is not in the catalog", name, r)
		}
	}
}

var externalURL = regexp.MustCompile(`(?i)\bhttps?://|(?:src|href|action)\s*=\s*["']?//|@import|url\(`)

// TestDocsPage checks that /docs is a self-contained HTML page carrying the
// document, allowed to run its own script and reach nothing but its origin.
func TestDocsPage(t *testing.T) {
	s := newStack(t, stackConfig{})
	a := s.do(t, nil, http.MethodGet, "/docs", nil).want(t, http.StatusOK, "GET /docs")
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want text/html", ct)
	}
	page := string(a.raw)
	// The one URL the page prints is the configured base URL, as text.
	base := `<p class="base-url">Base URL: <code>http://localhost:8080</code></p>`
	if !strings.Contains(page, base) {
		t.Errorf("/docs does not print the base URL")
	}
	if m := externalURL.FindAllString(strings.Replace(page, base, "", 1), -1); len(m) > 0 {
		t.Errorf("/docs references other hosts or external resources: %q", m)
	}
	for _, banned := range []string{"<link", "<iframe", "<img", "<object", "<embed", " src="} {
		if strings.Contains(page, banned) {
			t.Errorf("/docs contains %q: the page must be self-contained", banned)
		}
	}
	// The document is inlined, whole.
	const open = `<script id="openapi-document" type="application/json">`
	i := strings.Index(page, open)
	j := strings.Index(page[i+len(open):], "</script>")
	if i < 0 || j < 0 {
		t.Fatalf("/docs does not inline the document")
	}
	var inlined, embedded any
	if err := json.Unmarshal([]byte(page[i+len(open):i+len(open)+j]), &inlined); err != nil {
		t.Fatalf("inlined document: %v", err)
	}
	_ = json.Unmarshal(api.OpenAPIDocument(), &embedded)
	if !reflect.DeepEqual(inlined, embedded) {
		t.Errorf("the document inlined in /docs is not api/openapi.json")
	}
	// The policy blocks every other host and allows exactly the page's own
	// script and style.
	csp := a.header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "connect-src 'self'", "form-action 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	for _, tag := range []string{"script", "style"} {
		body := page[strings.Index(page, "<"+tag+">")+len(tag)+2:]
		body = body[:strings.Index(body, "</"+tag+">")]
		sum := sha256.Sum256([]byte(body))
		if h := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(csp, tag+"-src "+h) {
			t.Errorf("Content-Security-Policy %q does not allow the page's %s (%s)", csp, tag, h)
		}
	}
	// Every operation has an id the page can link to.
	for _, o := range operations(loadDoc(t)) {
		if !strings.Contains(page, `"operationId": "`+o.op.OperationID+`"`) {
			t.Errorf("/docs lacks operation %s", o.name)
		}
	}
}

// TestEveryOperationMatchesDocument drives every documented operation against
// a real stack, through its success and its error answers, and checks each
// exchange with the validator; then that no operation was left out.
func TestEveryOperationMatchesDocument(t *testing.T) {
	v := openapitest.New(t)
	s := newStack(t, stackConfig{signupCredit: "1.00", authRate: 16})
	do := func(method, path string, body any, headers ...string) answer {
		t.Helper()
		return s.do(t, v, method, path, body, headers...)
	}
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	admin := bearer(operatorToken)

	do("GET", "/healthz", nil).want(t, 200, "health")
	do("GET", "/readyz", nil).want(t, 200, "ready")
	do("GET", "/llms.txt", nil).want(t, 200, "llms.txt")
	do("GET", "/plans", nil).want(t, 200, "plans")
	do("GET", "/regions", nil).want(t, 200, "regions")
	do("GET", "/openapi.json", nil).want(t, 200, "openapi.json")
	do("GET", "/docs", nil).want(t, 200, "docs")
	do("GET", "/docs/custom-requests", nil).want(t, 200, "custom requests page")

	creds := map[string]string{"email": "agent@example.com", "password": "correct horse battery"}
	do("POST", "/auth/register", creds).want(t, 201, "register")
	do("POST", "/auth/register", creds).want(t, 409, "register twice")
	do("POST", "/auth/register", map[string]any{"email": "x", "password": "short"}).want(t, 400, "register invalid")
	do("POST", "/auth/register", `{"email":`).want(t, 400, "register malformed")
	do("POST", "/auth/register", map[string]any{"email": "b@example.com", "password": "correct horse battery", "name": "x"}).want(t, 400, "unknown field")
	tok := do("POST", "/auth/login", creds).want(t, 200, "login").str("accessToken")
	do("POST", "/auth/login", map[string]string{"email": "agent@example.com", "password": "wrong password"}).want(t, 401, "bad login")
	me := bearer(tok)

	do("GET", "/auth/me", nil, me...).want(t, 200, "me")
	do("GET", "/auth/me", nil).want(t, 401, "me without token")
	do("GET", "/auth/me", nil, "Authorization", "Bearer not-a-token").want(t, 401, "me with a bad token")
	do("GET", "/billing", nil, me...).want(t, 200, "billing")

	// With a 1.00 signup credit, 7 servers of 0.164/h are not covered.
	do("POST", "/servers/bulk", map[string]any{"label": "big", "count": 7, "planId": "vc2-6c-16gb", "regionId": "ams"}, me...).
		want(t, 402, "bulk without money")

	topup := do("POST", "/billing/topups", map[string]string{"amount": "25.00", "currency": "BTC"}, me...).want(t, 201, "topup").str("topup.id")
	do("POST", "/billing/topups", map[string]string{"amount": "0.5", "currency": "DOGE"}, me...).want(t, 400, "bad topup")
	do("GET", "/billing/topups", nil, me...).want(t, 200, "topups")
	do("GET", "/billing/topups/"+topup, nil, me...).want(t, 200, "topup")
	do("GET", "/billing/topups/00000000-0000-0000-0000-000000000000", nil, me...).want(t, 404, "unknown topup")
	do("POST", "/sandbox/topups/"+topup+"/pay", nil, me...).want(t, 200, "pay")
	do("POST", "/sandbox/topups/"+topup+"/pay", nil, me...).want(t, 409, "pay twice")
	topupBody := map[string]string{"amount": "5.00", "currency": "BTC"}
	idem := append(me, "Idempotency-Key", "topup-1")
	again := do("POST", "/billing/topups", topupBody, idem...).want(t, 201, "topup with a key")
	if r := do("POST", "/billing/topups", topupBody, idem...).want(t, 201, "topup replay"); r.str("topup.id") != again.str("topup.id") ||
		r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("top-up replay: %s %v", r.raw, r.header)
	}
	do("POST", "/billing/topups", map[string]string{"amount": "6.00"}, idem...).want(t, 422, "topup key reused")

	// A top-up whose invoice is marked settled by hand waits for the
	// operator; the webhook is what tells (signed, or refused).
	held := do("POST", "/billing/topups", map[string]string{"amount": "7.00"}, me...).want(t, 201, "topup, any method")
	hook := func(a answer) string {
		ref := a.str("topup.invoiceId")
		if _, err := s.pay.Mark(context.Background(), ref, domain.InvoiceSettled); err != nil {
			t.Fatalf("mark %s: %v", ref, err)
		}
		return `{"deliveryId":"d-` + ref + `","type":"InvoiceSettled","invoiceId":"` + ref + `","storeId":"` + webhookStore + `"}`
	}
	body := hook(held)
	do("POST", "/webhooks/btcpay", body, "BTCPay-Sig", "sha256=00").want(t, 401, "webhook badly signed")
	do("POST", "/webhooks/btcpay", body).want(t, 401, "webhook unsigned")
	do("POST", "/webhooks/btcpay", `{"type":"InvoiceSettled"}`, "BTCPay-Sig", btcpay.Sign(webhookSecret, []byte(`{"type":"InvoiceSettled"}`))).
		want(t, 400, "webhook without a delivery id")
	do("POST", "/webhooks/btcpay", body, "BTCPay-Sig", btcpay.Sign(webhookSecret, []byte(body))).want(t, 200, "webhook")
	if st := do("GET", "/billing/topups/"+held.str("topup.id"), nil, me...).want(t, 200, "held topup").str("topup.status"); st != "REVIEW" {
		t.Errorf("a top-up marked settled by hand is %s, want REVIEW", st)
	}
	do("GET", "/admin/topups/review", nil, admin...).want(t, 200, "operator review")
	do("GET", "/admin/topups/review", nil, me...).want(t, 401, "review with a customer token")
	credit := "/admin/topups/" + held.str("topup.id") + "/credit"
	do("POST", credit, map[string]string{}, admin...).want(t, 400, "credit without a reason")
	do("POST", credit, map[string]string{"reason": "checked the wallet (ticket 7)"}, admin...).want(t, 200, "credit")
	do("POST", credit, map[string]string{"reason": "again"}, admin...).want(t, 409, "credit twice")
	do("POST", "/admin/topups/00000000-0000-0000-0000-000000000000/credit", map[string]string{"reason": "x"}, admin...).
		want(t, 404, "credit unknown")
	dismissed := do("POST", "/billing/topups", map[string]string{"amount": "8.00"}, me...).want(t, 201, "topup to dismiss")
	body = hook(dismissed)
	do("POST", "/webhooks/btcpay", body, "BTCPay-Sig", btcpay.Sign(webhookSecret, []byte(body))).want(t, 200, "webhook")
	dismiss := "/admin/topups/" + dismissed.str("topup.id") + "/dismiss"
	do("POST", dismiss, map[string]string{"reason": "not ours to credit"}, admin...).want(t, 200, "dismiss")
	do("POST", dismiss, map[string]string{"reason": "again"}, admin...).want(t, 409, "dismiss twice")
	do("POST", dismiss, map[string]string{}, admin...).want(t, 400, "dismiss without a reason")

	pub := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL7S52dIvTk7Te8YlVUXy2cXHg2jXj2Xch4Ij+BQY0nc agent@example.com"
	key := do("POST", "/ssh-keys", map[string]string{"name": "laptop", "publicKey": pub}, me...).want(t, 201, "store key").str("sshKey.id")
	do("POST", "/ssh-keys", map[string]string{"name": "again", "publicKey": pub}, me...).want(t, 409, "store a key twice")
	do("POST", "/ssh-keys", map[string]string{"name": "", "publicKey": "ssh-rsa nope"}, me...).want(t, 400, "bad key")
	do("GET", "/ssh-keys", nil, me...).want(t, 200, "keys")
	do("DELETE", "/ssh-keys/"+key, nil, me...).want(t, 200, "delete key")
	do("DELETE", "/ssh-keys/"+key, nil, me...).want(t, 404, "delete key twice")

	deploy := map[string]any{"label": "my-bot", "planId": "vc2-1c-1gb", "regionId": "ams",
		"sshKeys": []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL7S52dIvTk7Te8YlVUXy2cXHg2jXj2Xch4Ij+BQY0nc agent@example.com"}}
	first := do("POST", "/servers", deploy, append(me, "Idempotency-Key", "deploy-1")...).want(t, 202, "deploy")
	server := first.str("server.id")
	replay := do("POST", "/servers", deploy, append(me, "Idempotency-Key", "deploy-1")...).want(t, 202, "replay")
	if replay.header.Get("Idempotent-Replayed") != "true" || replay.str("server.id") != server {
		t.Errorf("replay: %s %v", replay.raw, replay.header)
	}
	do("POST", "/servers", map[string]any{"label": "other", "planId": "vc2-1c-1gb", "regionId": "ams"},
		append(me, "Idempotency-Key", "deploy-1")...).want(t, 422, "key reused")
	do("POST", "/servers", map[string]any{"label": "bad label!", "planId": "nope", "regionId": ""}, me...).want(t, 400, "bad deploy")
	do("POST", "/servers", strings.Repeat(" ", 70<<10), me...).want(t, 413, "huge body")
	do("POST", "/servers/bulk", map[string]any{"label": "fleet", "count": 2, "planId": "vc2-1c-1gb", "regionId": "fra"},
		append(me, "Idempotency-Key", "fleet-1")...).want(t, 202, "bulk")
	do("POST", "/servers/bulk", map[string]any{"label": "fleet", "count": 11, "planId": "vc2-1c-1gb", "regionId": "fra"}, me...).
		want(t, 400, "bulk too big")
	do("GET", "/servers", nil, me...).want(t, 200, "servers")
	do("GET", "/servers/"+server, nil, me...).want(t, 200, "server")
	do("GET", "/servers/not-a-uuid", nil, me...).want(t, 404, "bad server id")
	do("GET", "/servers/"+server+"?waitFor=ACTIVE&timeout=61", nil, me...).want(t, 400, "bad timeout")
	do("POST", "/sandbox/clock/advance", map[string]int{"seconds": 60}, me...).want(t, 200, "advance")
	do("POST", "/sandbox/clock/advance", map[string]int{"seconds": 0}, me...).want(t, 400, "bad advance")
	if off := do("GET", "/sandbox/clock", nil, me...).want(t, 200, "clock").raw; !strings.Contains(string(off), `"offsetSeconds":60`) {
		t.Errorf("the account's clock after a move of 60 s: %s", off)
	}
	if st := do("GET", "/servers/"+server, nil, me...).want(t, 200, "server").str("server.status"); st != "ACTIVE" {
		t.Errorf("server %s after the provision delay", st)
	}

	backup := do("POST", "/backups", map[string]string{"serverId": server}, me...).want(t, 202, "backup").str("backup.id")
	do("POST", "/backups", map[string]string{"serverId": "00000000-0000-0000-0000-000000000000"}, me...).want(t, 404, "backup unknown server")
	do("POST", "/backups", map[string]string{"serverId": "xyz"}, me...).want(t, 400, "backup bad server id")
	do("POST", "/backups/"+backup+"/restore", nil, me...).want(t, 409, "restore pending")
	do("POST", "/sandbox/clock/advance", map[string]int{"seconds": 180}, me...).want(t, 200, "advance")
	do("GET", "/backups", nil, me...).want(t, 200, "backups")
	do("GET", "/events", nil, append(me, "Last-Event-ID", "not-an-id")...).want(t, 400, "events bad Last-Event-ID")
	if st := do("GET", "/backups/"+backup+"?waitFor=AVAILABLE,ERROR&timeout=5", nil, me...).want(t, 200, "backup").str("backup.status"); st != "AVAILABLE" {
		t.Errorf("backup %s after the backup delay", st)
	}
	do("GET", "/backups/"+backup+"?waitFor=SOON", nil, me...).want(t, 400, "bad waitFor")
	do("POST", "/backups/"+backup+"/restore", map[string]any{}, append(me, "Idempotency-Key", "restore-1")...).want(t, 202, "restore")
	do("POST", "/backups/"+backup+"/restore", map[string]any{"x": 1}, me...).want(t, 400, "restore with a field")
	do("DELETE", "/servers/"+server, nil, me...).want(t, 202, "destroy")
	do("DELETE", "/servers/"+server, nil, me...).want(t, 409, "destroy twice")
	do("DELETE", "/backups/"+backup, nil, me...).want(t, 202, "delete backup")
	do("DELETE", "/backups/"+backup, nil, me...).want(t, 409, "delete backup twice")

	if slices.Contains(s.srv.Routes(), api.Route{Method: "GET", Path: "/billing/ledger"}) {
		do("GET", "/billing/ledger", nil, me...).want(t, 200, "ledger")
		do("GET", "/billing/ledger?limit=2", nil, me...).want(t, 200, "ledger page")
		do("GET", "/billing/ledger?limit=0", nil, me...).want(t, 400, "ledger bad limit")
	}

	who := "/admin/accounts/agent@example.com"
	do("GET", who, nil, admin...).want(t, 200, "operator show")
	do("GET", who, nil, me...).want(t, 401, "operator show with a customer token")
	do("GET", "/admin/accounts/nobody@example.com", nil, admin...).want(t, 404, "operator show unknown")
	do("GET", "/admin/eventstore/snapshot", nil, admin...).want(t, 200, "operator store snapshot")
	do("GET", "/metrics", nil, admin...).want(t, 200, "operator metrics")
	do("GET", "/metrics", nil, me...).want(t, 401, "metrics with a customer token")
	do("GET", "/admin/eventstore/snapshot", nil, me...).want(t, 401, "store snapshot with a customer token")
	do("POST", "/admin/sandbox/clock/advance", map[string]int{"seconds": 1}, admin...).want(t, 200, "operator clock move")
	do("POST", "/admin/sandbox/clock/advance", map[string]int{"seconds": 1}, me...).want(t, 401, "operator clock move with a customer token")
	do("POST", "/admin/sandbox/clock/advance", map[string]int{"seconds": -5}, admin...).want(t, 400, "bad operator clock move")
	do("POST", who+"/suspend", map[string]string{"reason": "abuse report #12"}, admin...).want(t, 200, "suspend")
	do("POST", who+"/suspend", map[string]string{"reason": "again"}, admin...).want(t, 409, "suspend twice")
	do("POST", "/servers", map[string]any{"label": "x", "planId": "vc2-1c-1gb", "regionId": "ams"}, me...).want(t, 403, "deploy suspended")
	do("POST", who+"/unsuspend", map[string]string{"reason": "resolved"}, admin...).want(t, 200, "unsuspend")
	do("POST", who+"/limit", map[string]int{"limit": 25}, admin...).want(t, 200, "limit")
	do("POST", who+"/limit", map[string]int{"limit": -1}, admin...).want(t, 400, "bad limit")

	raise := do("POST", "/limit-requests", map[string]any{"serverLimit": 40, "reason": "a crawler fleet"}, me...).
		want(t, 201, "limit request").str("limitRequest.id")
	do("POST", "/limit-requests", map[string]any{"serverLimit": 50, "reason": "more"}, me...).want(t, 409, "second pending request")
	do("POST", "/limit-requests", map[string]any{"serverLimit": 5, "reason": ""}, me...).want(t, 400, "bad limit request")
	do("GET", "/limit-requests", nil, me...).want(t, 200, "limit requests")
	do("GET", "/admin/limit-requests", nil, admin...).want(t, 200, "pending limit requests")
	do("POST", who+"/limit-requests/"+raise+"/approve", map[string]string{"note": "fine"}, admin...).want(t, 200, "approve")
	do("POST", who+"/limit-requests/"+raise+"/deny", nil, admin...).want(t, 409, "deny a decided request")

	// Forgetting, on an account of its own: refused while it holds money,
	// then given up; its token and its email stop working.
	gone := map[string]string{"email": "forget-me@example.com", "password": "correct horse battery"}
	reg := do("POST", "/auth/register", gone).want(t, 201, "register to forget")
	goneID, goneTok := reg.str("user.id"), bearer(reg.str("accessToken"))
	do("DELETE", "/auth/me?forfeitBalance=maybe", nil, goneTok...).want(t, 400, "forget, bad forfeitBalance")
	do("DELETE", "/auth/me", nil, goneTok...).want(t, 409, "forget with money left")
	do("POST", "/admin/accounts/forget-me@example.com/forget", map[string]bool{}, admin...).want(t, 409, "operator forget with money left")
	do("DELETE", "/auth/me?forfeitBalance=true", nil, goneTok...).want(t, 200, "forget")
	do("DELETE", "/auth/me", nil, goneTok...).want(t, 401, "forget twice")
	do("POST", "/auth/login", gone).want(t, 401, "login after forget")
	if r := do("POST", "/admin/accounts/"+goneID+"/forget", nil, admin...).want(t, 200, "operator forget again"); r.str("account.email") != "forgotten" {
		t.Errorf("a forgotten account shows its email as %q", r.str("account.email"))
	}
	do("POST", "/admin/accounts/"+goneID+"/suspend", map[string]string{"reason": "x"}, admin...).want(t, 409, "suspend a forgotten account")

	// API keys: a bearer credential until deleted.
	apiKey := do("POST", "/auth/api-keys", map[string]string{"name": "tour"}, me...).want(t, 201, "create an API key")
	withKey := bearer(apiKey.str("key"))
	do("GET", "/auth/me", nil, withKey...).want(t, 200, "me with an API key")
	keyIdem := append(append([]string{}, me...), "Idempotency-Key", "key-1")
	kept := do("POST", "/auth/api-keys", map[string]string{"name": "retried"}, keyIdem...).want(t, 201, "an API key with an Idempotency-Key")
	if r := do("POST", "/auth/api-keys", map[string]string{"name": "retried"}, keyIdem...).want(t, 201, "API key replay"); r.str("key") != kept.str("key") ||
		r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("API key replay: %s %v", r.raw, r.header)
	}
	do("POST", "/auth/api-keys", map[string]string{"name": "other"}, keyIdem...).want(t, 422, "API key, Idempotency-Key reused")
	do("POST", "/auth/api-keys", map[string]string{"name": ""}, me...).want(t, 400, "an API key without a name")
	do("GET", "/auth/api-keys", nil, withKey...).want(t, 200, "list API keys")
	do("DELETE", "/auth/api-keys/"+apiKey.str("apiKey.id"), nil, me...).want(t, 200, "delete an API key")
	do("DELETE", "/auth/api-keys/"+apiKey.str("apiKey.id"), nil, me...).want(t, 404, "delete it again")
	do("GET", "/auth/me", nil, withKey...).want(t, 401, "a deleted API key")

	// A password change ends every token issued before it.
	change := map[string]string{"currentPassword": "correct horse battery", "newPassword": "another fine passphrase"}
	do("POST", "/auth/password", map[string]string{"currentPassword": "wrong password", "newPassword": "another fine passphrase"}, me...).
		want(t, 400, "password change, wrong current password")
	do("POST", "/auth/password", map[string]string{"newPassword": "password1"}, me...).want(t, 400, "password change, weak")
	do("POST", "/auth/password", change).want(t, 401, "password change without a token")
	fresh := do("POST", "/auth/password", change, me...).want(t, 200, "password change").str("accessToken")
	do("GET", "/billing", nil, me...).want(t, 401, "a token from before the change")
	me = bearer(fresh)
	creds["password"] = change["newPassword"]
	do("GET", "/auth/api-keys", nil, bearer(kept.str("key"))...).want(t, 200, "an API key after a password change")

	do("GET", "/no/such/route", nil, me...).want(t, 404, "unknown route")
	do("PUT", "/servers", nil, me...)

	// Tokens expire on the sandbox clock.
	do("POST", "/sandbox/clock/advance", map[string]int{"seconds": 16 * 60}, me...).want(t, 200, "advance")
	do("GET", "/billing", nil, me...).want(t, 401, "expired token")
	// The auth rate limit (16 per minute here) ends in a 429.
	var limited bool
	for range 15 {
		if do("POST", "/auth/login", creds).status == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Errorf("no 429 from /auth/login")
	}

	var except []string
	for _, p := range pendingRoutes {
		if !slices.ContainsFunc(s.srv.Routes(), func(r api.Route) bool {
			return r.Method+" "+echoParam.ReplaceAllString(r.Path, "{$1}") == p
		}) {
			except = append(except, p)
		}
	}
	// This test covers everything by itself, with -run too.
	for _, op := range v.Uncovered() {
		if !slices.Contains(except, op) {
			t.Errorf("the tour does not exercise %s", op)
		}
	}
}

// /docs says, first thing, that a sandbox is a sandbox, and says nothing of
// the kind where the clock cannot be moved.
func TestDocsPageSaysSandbox(t *testing.T) {
	t.Parallel()
	for _, sandbox := range []bool{true, false} {
		s := newStack(t, stackConfig{noSandbox: !sandbox})
		page := string(s.do(t, nil, http.MethodGet, "/docs", nil).want(t, http.StatusOK, "GET /docs").raw)
		if got := strings.Contains(page, "SANDBOX MODE"); got != sandbox {
			t.Errorf("sandbox %v: the page says SANDBOX MODE: %v", sandbox, got)
		}
		if strings.Contains(page, "<!--MODE-BANNER-->") {
			t.Error("the banner placeholder was left in the page")
		}
	}
}
