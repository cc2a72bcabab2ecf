// Package dashboard serves the human dashboard at /app: static files embedded
// in the binary (standard ES modules and hand-written CSS, no build step).
// The dashboard is a client of the public JSON API and nothing else: it has
// no endpoint, session or state of its own on the server.
package dashboard

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/labstack/echo/v4"
)

// Path is where the dashboard lives; "/" redirects there.
const Path = "/app"

// Options is what the dashboard needs to know about the deployment.
type Options struct {
	// Sandbox marks a sandbox deployment: every page then carries the
	// sandbox banner, and the dashboard offers the sandbox controls
	// (simulated payment, clock).
	Sandbox bool
}

//go:embed static
var static embed.FS

// CSP is the Content-Security-Policy of every dashboard response: only this
// origin's own files, no inline script or style, no framing, and Trusted
// Types with no policy, so that assigning a string to innerHTML or a similar
// sink throws instead of parsing markup.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// file is one embedded file ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

// Register serves the dashboard on e. It is a pre-routing middleware rather
// than routes so that the API's routing table stays exactly the documented
// API (the drift tests compare the two): GET and HEAD of /, /app and /app/*
// are answered here, everything else goes on to the API.
func Register(e *echo.Echo, opts Options) {
	files, err := load(opts)
	if err != nil {
		panic("dashboard: " + err.Error())
	}
	e.Pre(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			return serve(c, files, next)
		}
	})
}

func serve(c echo.Context, files map[string]file, next echo.HandlerFunc) error {
	r := c.Request()
	p := r.URL.Path
	if p != "/" && p != Path && !strings.HasPrefix(p, Path+"/") {
		return next(c)
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if p == "/" {
			return next(c)
		}
		c.Response().Header().Set("Allow", "GET, HEAD")
		return c.String(http.StatusMethodNotAllowed, "method not allowed\n")
	}
	h := c.Response().Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if p == "/" {
		return c.Redirect(http.StatusFound, Path+"/")
	}
	name := strings.TrimPrefix(p, Path+"/")
	if p == Path || name == "" {
		name = "index.html"
	}
	f, ok := files[name]
	if !ok {
		return c.String(http.StatusNotFound, "not found\n")
	}
	// Revalidated on every load: a new binary must never run with the
	// previous one's scripts, and a 304 costs next to nothing.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	if match := r.Header.Get("If-None-Match"); match != "" && match == f.etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, f.contentType, f.body)
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".txt":  "text/plain; charset=utf-8",
}

// The page's placeholders, filled at start-up.
const (
	modePlaceholder   = `<meta name="cryptovps-mode" content="production">`
	bannerPlaceholder = `<!--SANDBOX-BANNER-->`
	sandboxBanner     = `<div class="sandbox-banner" role="note" id="sandbox-banner"><strong>Sandbox</strong> ` +
		`<span class="long">Simulated cloud and payments: nothing here is real or costs money.</span>` +
		`<span class="short">Nothing here is real.</span></div>`
)

// load reads every embedded file once. In sandbox mode the page says so in
// its markup, so that the banner is there before any script runs and
// never shifts the layout.
func load(opts Options) (map[string]file, error) {
	root, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	files := map[string]file{}
	err = fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(root, name)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil // not served
		}
		if name == "index.html" {
			body, err = render(body, opts)
			if err != nil {
				return err
			}
		}
		sum := sha256.Sum256(body)
		files[name] = file{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := files["index.html"]; !ok {
		return nil, fs.ErrNotExist
	}
	return files, nil
}

func render(page []byte, opts Options) ([]byte, error) {
	s := string(page)
	if !strings.Contains(s, modePlaceholder) || !strings.Contains(s, bannerPlaceholder) {
		return nil, errPlaceholders
	}
	if opts.Sandbox {
		s = strings.Replace(s, modePlaceholder, `<meta name="cryptovps-mode" content="sandbox">`, 1)
		s = strings.Replace(s, bannerPlaceholder, sandboxBanner, 1)
	}
	return []byte(s), nil
}

var errPlaceholders = errors.New("index.html lacks its mode or banner placeholder")
