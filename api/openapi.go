package api

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// openapiJSON is the OpenAPI 3.1 description of the API: the one source the
// tests check every request and response against, and /docs renders.
//
//go:embed openapi.json
var openapiJSON []byte

//go:embed docs.html
var docsHTML string

// OpenAPIDocument returns a copy of the OpenAPI document served at
// /openapi.json.
func OpenAPIDocument() []byte { return bytes.Clone(openapiJSON) }

// docsPage is docs.html with the document inlined, and docsCSP the policy
// that lets the page run its own script and style and reach nothing but
// this origin.
var docsPage, docsCSP = renderDocs(docsHTML, openapiJSON)

const docsPlaceholder = "<!--OPENAPI-DOCUMENT-->"

func renderDocs(page string, doc []byte) ([]byte, string) {
	// In a <script> element only "</" can end the data early; in JSON "<"
	// appears inside strings only, where \u003c means the same.
	data := strings.ReplaceAll(string(doc), "<", `\u003c`)
	tag := `<script id="openapi-document" type="application/json">` + data + `</script>`
	if !strings.Contains(page, docsPlaceholder) {
		panic("api: docs.html has no " + docsPlaceholder)
	}
	page = strings.Replace(page, docsPlaceholder, tag, 1)
	csp := "default-src 'none'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'" +
		"; script-src " + inlineHashes(page, "<script>", "</script>") +
		"; style-src " + inlineHashes(page, "<style>", "</style>")
	return []byte(page), csp
}

// inlineHashes is the CSP source list allowing exactly the inline elements
// that open with open (attribute-less) in page.
func inlineHashes(page, open, end string) string {
	var out []string
	for rest := page; ; {
		i := strings.Index(rest, open)
		if i < 0 {
			break
		}
		rest = rest[i+len(open):]
		j := strings.Index(rest, end)
		if j < 0 {
			break
		}
		sum := sha256.Sum256([]byte(rest[:j]))
		out = append(out, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		rest = rest[j:]
	}
	if len(out) == 0 {
		return "'none'"
	}
	return strings.Join(out, " ")
}

func (s *Server) openapi(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openapiJSON)
}

// sandboxBanner says on the docs page, before anything else, that nothing
// here is real.
const sandboxBanner = `<p class="mode-banner" role="status">SANDBOX MODE: this deployment simulates the cloud and the payments. ` +
	`Servers and crypto are not real, and each account's clock can be moved (POST /sandbox/clock/advance).</p>`

func (s *Server) docs(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", docsCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	banner := ""
	if s.sandbox != nil {
		banner = sandboxBanner
	}
	page := bytes.Replace(docsPage, []byte("<!--MODE-BANNER-->"), []byte(banner), 1)
	// The configured base URL, never the request's Host header.
	base := `<p class="base-url">Base URL: <code>` + html.EscapeString(s.cfg.BaseURL) + `</code></p>`
	return c.HTMLBlob(http.StatusOK, bytes.Replace(page, []byte("<!--BASE-URL-->"), []byte(base), 1))
}

// Route is one method and path the API serves, the path in Echo's form
// ("/servers/:id").
type Route struct {
	Method string
	Path   string
}

// Routes lists the routes the API serves, sorted by path then method,
// without Echo's internal not-found routes.
func (s *Server) Routes() []Route {
	var out []Route
	for _, r := range s.allRoutes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		out = append(out, Route{Method: r.Method, Path: r.Path})
	}
	slices.SortFunc(out, func(a, b Route) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return slices.Compact(out)
}
