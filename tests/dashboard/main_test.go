// Package dashboard drives the human dashboard (api/dashboard) in a real
// headless Chromium against the real binary, the way a person would use it:
// clicks, forms, live updates. Every test fails on a console error, an
// uncaught exception, a failed request or an HTTP error answer it did not
// expect.
//
// Chromium is Debian's `chromium` package (or $CHROMIUM). Without it the
// tests skip with a message, except under CI=true, where they fail.
package dashboard

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/cryptovps/cryptovps/tests/binary"
)

// chromePath is the browser, empty when none was found.
var chromePath string

func TestMain(m *testing.M) {
	chromePath = findChromium()
	os.Exit(binary.Main(m.Run))
}

func findChromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// needBrowser skips (or, in CI, fails) a test when there is no browser.
func needBrowser(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the dashboard browser tests do not run")
	}
	if chromePath == "" {
		msg := "no Chromium found (apt-get install chromium, or set $CHROMIUM): the dashboard browser tests do not run"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// startServer runs `cryptovps serve` in sandbox mode on a fresh data dir
// with the shared launcher; it is stopped when the test ends.
func startServer(t *testing.T, args ...string) *binary.Process {
	t.Helper()
	return binary.Start(t, binary.Options{Name: "dashboard", Args: args})
}

// ---------------------------------------------------------------------------
// The browser.

// browser is one headless Chromium with a fresh profile and one tab, which
// records every problem the page has.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
	allowed  []allowance // HTTP errors the journey expects
	urls     map[network.RequestID]string
	requests int // API requests the page made
}

type allowance struct {
	status int
	path   string // prefix of the URL path
}

// newBrowser starts Chromium with the flags that keep it off the network:
// no first-run, no background networking, no component updates, no sync,
// no QUIC. The tab has the given viewport.
func newBrowser(t *testing.T, width, height int64, mobile bool) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromePath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(int(width), int(height)),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, urls: map[network.RequestID]string{}}
	if err := chromedp.Listen(ctx, b.listen); err != nil {
		t.Fatalf("listen to the browser: %v", err)
	}
	var vp []chromedp.EmulateViewportOption
	if mobile {
		vp = append(vp, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	b.do(chromedp.EmulateViewport(width, height, vp...))
	// The dashboard shows times in UTC; the browser's locale is fixed so
	// that screenshots read the same everywhere.
	return b
}

func (b *browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert || e.Type == runtime.ConsoleAPICalledTypeWarning {
			var args []string
			for _, a := range e.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.problems = append(b.problems, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		b.problems = append(b.problems, fmt.Sprintf("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
	case *log.EventEntryAdded:
		// Network errors are judged by their status below; everything else
		// the browser logs as an error (a CSP violation, a bad resource, a
		// deprecation turned error) is a problem.
		if e.Entry.Level == log.EntryLevelError && e.Entry.Source != log.EntrySourceNetwork {
			b.problems = append(b.problems, fmt.Sprintf("browser log (%s): %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL))
		}
	case *network.EventRequestWillBeSent:
		b.urls[e.RequestID] = e.Request.URL
		if !strings.Contains(e.Request.URL, "/app") {
			b.requests++
		}
	case *network.EventLoadingFailed:
		// A fetch cut short by leaving the page is not a failure.
		if !e.Canceled {
			b.problems = append(b.problems, fmt.Sprintf("request failed: %s: %s %s", b.urls[e.RequestID], e.ErrorText, e.BlockedReason))
		}
	case *network.EventResponseReceived:
		if e.Response.Status >= 400 && !b.isAllowed(int(e.Response.Status), e.Response.URL) {
			b.problems = append(b.problems, fmt.Sprintf("unexpected HTTP %d for %s", e.Response.Status, e.Response.URL))
		}
	}
}

func (b *browser) isAllowed(status int, url string) bool {
	for _, a := range b.allowed {
		if a.status == status && strings.Contains(url, a.path) {
			return true
		}
	}
	return false
}

// allow makes an HTTP error status on a path part of the journey.
func (b *browser) allow(status int, path string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.allowed = append(b.allowed, allowance{status, path})
}

// check fails the test with every problem recorded so far.
func (b *browser) check(step string) {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.problems) > 0 {
		b.t.Fatalf("%s: the page had problems:\n  %s", step, strings.Join(b.problems, "\n  "))
	}
}

// stepTimeout bounds each step: generous for a busy 2-core machine, where
// the sandbox and Chromium share the CPUs with the tests of others.
const stepTimeout = 45 * time.Second

// do runs actions with a deadline and fails the test on an error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\n%s", err, b.problemList())
	}
}

func (b *browser) problemList() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.problems, "\n")
}

// until waits for a JavaScript condition to hold in the page.
func (b *browser) until(what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout))); err != nil {
		dump, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.querySelector('main')?.innerText ?? ''`))
		b.t.Fatalf("waiting for %s: %v\n--- page text:\n%s\n--- problems:\n%s", what, err, dump, b.problemList())
	}
	b.check(what)
}

// eval evaluates JavaScript and returns its value.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// click clicks the element the CSS selector finds, once it is visible.
func (b *browser) click(sel string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// fill replaces an input's value as typing would.
func (b *browser) fill(sel, value string) {
	b.t.Helper()
	b.do(chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), value))
}
