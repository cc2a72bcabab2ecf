package dashboard

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

func newEcho(sandbox bool) *echo.Echo {
	e := echo.New()
	Register(e, Options{Sandbox: sandbox})
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	return e
}

func get(e *echo.Echo, method, path string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	return rec
}

func TestRootRedirects(t *testing.T) {
	rec := get(newEcho(true), http.MethodGet, "/")
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/app/" {
		t.Fatalf("GET / -> %d Location %q", rec.Code, rec.Header().Get("Location"))
	}
	// Other methods on / are the API's business (a JSON 404 or 405).
	if rec := get(newEcho(true), http.MethodPost, "/"); rec.Code == http.StatusFound {
		t.Fatalf("POST / redirected")
	}
}

func TestServesPageWithStrictHeaders(t *testing.T) {
	for _, path := range []string{"/app", "/app/", "/app/js/main.js", "/app/app.css", "/app/favicon.svg"} {
		rec := get(newEcho(false), http.MethodGet, path)
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s -> %d", path, rec.Code)
		}
		h := rec.Header()
		if csp := h.Get("Content-Security-Policy"); csp != CSP {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"} {
			if h.Get(k) != v {
				t.Errorf("GET %s: %s %q, want %q", path, k, h.Get(k), v)
			}
		}
		if h.Get("ETag") == "" {
			t.Errorf("GET %s: no ETag", path)
		}
	}
	for path, ct := range map[string]string{"/app/": "text/html", "/app/js/main.js": "text/javascript", "/app/app.css": "text/css", "/app/favicon.svg": "image/svg+xml"} {
		if got := get(newEcho(false), http.MethodGet, path).Header().Get("Content-Type"); !strings.HasPrefix(got, ct) {
			t.Errorf("GET %s: Content-Type %q, want %s", path, got, ct)
		}
	}
}

func TestPolicyIsStrict(t *testing.T) {
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "require-trusted-types-for 'script'"} {
		if !strings.Contains(CSP, want) {
			t.Errorf("the CSP lacks %q", want)
		}
	}
	if strings.Contains(CSP, "unsafe") || strings.Contains(CSP, "http") || strings.Contains(CSP, "data:") {
		t.Errorf("the CSP allows too much: %s", CSP)
	}
}

func TestETagRevalidation(t *testing.T) {
	e := newEcho(false)
	tag := get(e, http.MethodGet, "/app/app.css").Header().Get("ETag")
	if rec := get(e, http.MethodGet, "/app/app.css", "If-None-Match", tag); rec.Code != http.StatusNotModified {
		t.Fatalf("If-None-Match -> %d", rec.Code)
	}
}

func TestUnknownAndOtherMethods(t *testing.T) {
	e := newEcho(false)
	if rec := get(e, http.MethodGet, "/app/nope.js"); rec.Code != http.StatusNotFound {
		t.Errorf("GET /app/nope.js -> %d", rec.Code)
	}
	if rec := get(e, http.MethodPost, "/app/"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /app/ -> %d", rec.Code)
	}
	if rec := get(e, http.MethodHead, "/app/"); rec.Code != http.StatusOK {
		t.Errorf("HEAD /app/ -> %d", rec.Code)
	}
	// Everything else reaches the API's routes untouched.
	if rec := get(e, http.MethodGet, "/healthz"); rec.Code != http.StatusOK || rec.Header().Get("Content-Security-Policy") != "" {
		t.Errorf("GET /healthz -> %d with CSP %q", rec.Code, rec.Header().Get("Content-Security-Policy"))
	}
	if rec := get(e, http.MethodGet, "/application"); rec.Code != http.StatusNotFound || rec.Header().Get("Content-Security-Policy") != "" {
		t.Errorf("GET /application went to the dashboard")
	}
	// No route is added: the API's routing table stays the documented API.
	if n := len(e.Routes()); n != 1 {
		t.Errorf("%d routes, want only the test's /healthz", n)
	}
}

func TestSandboxBanner(t *testing.T) {
	sandbox := get(newEcho(true), http.MethodGet, "/app/").Body.String()
	plain := get(newEcho(false), http.MethodGet, "/app/").Body.String()
	if !strings.Contains(sandbox, `id="sandbox-banner"`) || !strings.Contains(sandbox, `content="sandbox"`) {
		t.Error("the sandbox page has no banner or mode")
	}
	if strings.Contains(plain, `id="sandbox-banner"`) || !strings.Contains(plain, `content="production"`) {
		t.Error("the production page has a sandbox banner")
	}
}

var (
	inlineScript  = regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`)
	styleAttr     = regexp.MustCompile(`(?i)\sstyle\s*=`)
	handlerAttr   = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	otherHosts    = regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`)
	markupSinks   = regexp.MustCompile(`\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(`)
	consoleOutput = regexp.MustCompile(`console\.(log|debug|info)\(`)
)

// TestNoInlineCodeOrRemoteResources reads every embedded file: no inline
// script or style or handler attributes, nothing from other hosts, no
// markup sinks, no logging (which could leak the token).
func TestNoInlineCodeOrRemoteResources(t *testing.T) {
	err := fs.WalkDir(static, "static", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, name)
		if err != nil {
			return err
		}
		src := string(b)
		checks := map[string]*regexp.Regexp{"an inline script": inlineScript, "a style attribute": styleAttr, "an event handler attribute": handlerAttr, "a resource of another host": otherHosts}
		if strings.HasSuffix(name, ".js") {
			checks = map[string]*regexp.Regexp{"a markup sink": markupSinks, "console output": consoleOutput}
		}
		for what, re := range checks {
			if m := re.FindString(src); m != "" {
				t.Errorf("%s has %s: %q", name, what, m)
			}
		}
		if strings.HasSuffix(name, ".js") && !strings.HasPrefix(src, "// ") {
			t.Errorf("%s does not start with a comment saying what it is for", name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
