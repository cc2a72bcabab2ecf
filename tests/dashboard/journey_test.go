package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/cryptovps/cryptovps/tests/binary"
)

// screenshotDir is where `make screenshots` wants the PNGs; empty means
// none are taken.
func screenshotDir() string { return os.Getenv("DASHBOARD_SCREENSHOTS") }

// shot saves the viewport as name.png when screenshots are asked for,
// scrolled to the top or to the element selector `at` finds.
func (b *browser) shot(name string, at ...string) {
	b.t.Helper()
	dir := screenshotDir()
	if dir == "" {
		return
	}
	// Screenshots show a settled page: no focus ring from the last click,
	// no notice about to fade.
	scroll := `window.scrollTo(0, 0)`
	if len(at) > 0 {
		scroll = `document.querySelector(` + js(at[0]) + `).scrollIntoView({block: 'start'})`
	}
	eval[bool](b, `(document.activeElement?.blur(), document.querySelectorAll('.notice').forEach(n => n.remove()), `+scroll+`, true)`)
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// rowStatus is an expression: the data-status of the table row whose main
// cell reads label, or null.
func rowStatus(label string) string {
	return fmt.Sprintf(`([...document.querySelectorAll('main tbody tr')].find(r => r.querySelector('.cell-main')?.textContent === %s)?.dataset.status ?? null)`, js(label))
}

func rowCount(label string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('main tbody tr')].filter(r => r.querySelector('.cell-main')?.textContent === %s).length`, js(label))
}

func heading(text string) string {
	return fmt.Sprintf(`document.querySelector('main h1')?.textContent === %s`, js(text))
}

func (b *browser) nav(label string) {
	b.t.Helper()
	b.click(fmt.Sprintf(`#nav a[href="#/%s"]`, label))
}

// accessibleNames checks that every visible control has a name a screen
// reader can say: its label, aria-label, text or title.
func (b *browser) accessibleNames(page string) {
	b.t.Helper()
	bad := eval[[]string](b, `[...document.querySelectorAll('button, a[href], input, select, textarea, [role=img]')]
		.filter(el => el.getClientRects().length > 0 || (el.type === 'radio' && el.closest('label')))
		.filter(el => !((el.labels && el.labels.length && [...el.labels].some(l => l.textContent.trim())) ||
			el.getAttribute('aria-label')?.trim() || el.getAttribute('aria-labelledby') || el.textContent.trim() || el.title))
		.map(el => el.outerHTML.slice(0, 120))`)
	if len(bad) > 0 {
		b.t.Errorf("%s: controls without an accessible name:\n  %s", page, strings.Join(bad, "\n  "))
	}
}

// noOverflow checks that nothing makes the page scroll sideways.
func (b *browser) noOverflow(page string) {
	b.t.Helper()
	if w := eval[float64](b, `document.documentElement.scrollWidth - window.innerWidth`); w > 0 {
		b.t.Errorf("%s: the page is %vpx wider than the viewport", page, w)
	}
}

var sshLine = regexp.MustCompile(`^ssh root@198\.1[89]\.\d{1,3}\.\d{1,3}$`)

// TestJourney is the whole journey of a person, in a desktop-sized window:
// register, top up (sandbox payment), deploy one and a bulk, watch ACTIVE,
// back up, restore, hit the server limit, destroy, delete the backup, read
// the ledger, and come back after the session expired.
func TestJourney(t *testing.T) {
	needBrowser(t)
	start := time.Now()
	srv := startServer(t, "--server-limit", "4")
	b := newBrowser(t, 1280, 800, false)
	const email, password = "person@example.com", "correct horse battery"

	// / leads to the dashboard, which asks a stranger to log in.
	b.do(chromedp.Navigate(srv.URL + "/"))
	b.until("the login page", `location.pathname === '/app/' && !!document.querySelector('#email')`)
	if got := eval[string](b, `document.querySelector('meta[name="cryptovps-mode"]').content`); got != "sandbox" {
		t.Fatalf("mode meta %q, want sandbox", got)
	}
	b.until("the sandbox banner", `getComputedStyle(document.querySelector('#sandbox-banner')).display !== 'none' && /Sandbox/i.test(document.querySelector('#sandbox-banner').textContent)`)
	b.accessibleNames("login")
	b.shot("desktop-login")

	// Register.
	b.click(`a[href="#/register"]`)
	b.until("the register form", heading("Create your account"))
	b.fill("#email", email)
	b.fill("#password", password)
	b.click(`button[type="submit"]`)
	b.until("the overview", heading("Overview"))
	b.until("the signup credit", `document.querySelector('section[aria-label="Balance"] .value')?.textContent === '$10.00'`)
	if eval[bool](b, `location.href.includes('ey') || document.cookie !== ''`) {
		t.Fatal("the token leaked into the URL or a cookie")
	}

	// Top up 25 USD in BTC, pay it with the sandbox button, and watch the
	// status turn PAID by itself.
	b.nav("topup")
	b.until("the top-up page", heading("Top up"))
	b.fill("#amount", "25.00")
	b.do(chromedp.SetValue(chromedp.CSS("#currency"), "BTC"))
	b.click(`form[aria-labelledby="topup-new"] button[type="submit"]`)
	b.until("the payment details", `!document.querySelector('#payment').hidden && !!document.querySelector('#payment svg.qr path.qr-dark')`)
	b.until("a PENDING top-up", `document.querySelector('#payment .badge')?.textContent === 'PENDING'`)
	address := eval[string](b, `document.querySelector('#pay-address').textContent`)
	if address == "" {
		t.Fatal("no payment address shown")
	}
	b.accessibleNames("top-up")
	b.shot("desktop-topup")
	b.click(`#payment button.primary`)
	b.until("the top-up PAID", `document.querySelector('#payment .badge')?.textContent === 'PAID'`)
	b.nav("overview")
	b.until("the credited balance", `document.querySelector('section[aria-label="Balance"] .value')?.textContent === '$35.00'`)

	// Deploy one server.
	b.nav("deploy")
	b.until("the deploy form", `!!document.querySelector('.plans input[type=radio]')`)
	b.do(chromedp.SetValue(chromedp.CSS("#region"), "ams"))
	b.fill("#label", "web-1")
	b.until("the price summary", `/Charged now: \$0\.\d+/.test(document.querySelector('.summary .total').textContent)`)
	b.accessibleNames("deploy")
	b.shot("desktop-deploy")
	b.click(`form[aria-label="Deploy servers"] button[type="submit"]`)
	b.until("the servers page", heading("Servers"))
	b.until("web-1 PROVISIONING", rowStatus("web-1")+` === 'PROVISIONING'`)

	// A bulk of two.
	b.nav("deploy")
	b.until("the deploy form", `!!document.querySelector('.plans input[type=radio]')`)
	b.fill("#label", "fleet")
	b.fill("#count", "2")
	b.until("the bulk button", `document.querySelector('form[aria-label="Deploy servers"] button[type="submit"]').textContent === 'Deploy 2 servers'`)
	b.click(`form[aria-label="Deploy servers"] button[type="submit"]`)
	b.until("the bulk PROVISIONING", rowStatus("fleet-1")+` === 'PROVISIONING' && `+rowStatus("fleet-2")+` === 'PROVISIONING'`)

	// Move the sandbox clock with the banner's control: the servers turn
	// ACTIVE on screen, with an address and an ssh line, and nothing on the
	// page moves (layout shifts are measured, input or not).
	eval[bool](b, `(window.shifts = [], new PerformanceObserver(l => window.shifts.push(...l.getEntries().map(e => e.value))).observe({type: 'layout-shift'}), true)`)
	b.click(`#sandbox-banner button[aria-label^="Move the sandbox clock forward by one minute"]`)
	b.until("web-1 ACTIVE", rowStatus("web-1")+` === 'ACTIVE' && `+rowStatus("fleet-2")+` === 'ACTIVE'`)
	b.until("the layout shifts reported", `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	if shift := eval[float64](b, `window.shifts.reduce((a, b) => a + b, 0)`); shift > 0.001 {
		t.Errorf("the page moved by %.4f (cumulative layout shift) when the servers turned ACTIVE", shift)
	}
	ssh := eval[string](b, `[...document.querySelectorAll('main tbody tr')].find(r => r.querySelector('.cell-main').textContent === 'web-1').querySelector('.ssh code').textContent`)
	b.accessibleNames("servers")
	if !sshLine.MatchString(ssh) {
		t.Fatalf("ssh line %q", ssh)
	}
	b.shot("desktop-servers")

	// Back up web-1; the backup turns AVAILABLE when the clock moves on.
	b.click(`button[aria-label="Back up web-1"]`)
	b.nav("backups")
	b.until("the backup PENDING", rowStatus("web-1")+` === 'PENDING'`)
	b.click(`#sandbox-banner button[aria-label^="Move the sandbox clock forward by five minutes"]`)
	b.until("the backup AVAILABLE", rowStatus("web-1")+` === 'AVAILABLE'`)

	// Restore it: a fourth live server, the account's limit.
	b.click(`button[aria-label="Restore the backup of web-1"]`)
	b.until("the restore notice", `[...document.querySelectorAll('.notice')].some(n => n.textContent.includes('Restoring onto a new server'))`)
	b.accessibleNames("backups")
	b.shot("desktop-backups")
	b.nav("servers")
	b.until("the restored server", rowCount("web-1")+` === 2`)

	// One more is over the limit: the form explains it.
	b.allow(403, "/servers")
	b.nav("deploy")
	b.until("the deploy form", `!!document.querySelector('.plans input[type=radio]')`)
	b.fill("#label", "one-too-many")
	b.click(`form[aria-label="Deploy servers"] button[type="submit"]`)
	b.until("the limit explained", `/server limit/.test(document.querySelector('main .form-error')?.textContent ?? '')`)

	// Destroy web-1 (the first one): Cancel keeps it, confirming destroys.
	b.nav("servers")
	b.until("the servers", rowStatus("fleet-1")+` === 'ACTIVE'`)
	b.click(`button[aria-label="Destroy fleet-1"]`)
	b.until("the confirmation", `document.querySelector('dialog[open]') !== null && document.activeElement.textContent === 'Cancel'`)
	b.do(chromedp.KeyEvent("\x1b")) // Escape
	b.until("the dialog closed", `document.querySelector('dialog') === null && `+rowStatus("fleet-1")+` === 'ACTIVE'`)
	for _, label := range []string{"fleet-1", "fleet-2"} {
		b.click(fmt.Sprintf(`button[aria-label="Destroy %s"]`, label))
		b.until("the confirmation", `document.querySelector('dialog[open]') !== null`)
		b.shot("desktop-destroy")
		b.click(`dialog[open] button.danger`)
		b.until(label+" DESTROYING", rowStatus(label)+` === 'DESTROYING' || `+rowStatus(label)+` === null`)
	}
	b.click(`#sandbox-banner button[aria-label^="Move the sandbox clock forward by one minute"]`)
	b.until("the fleet gone", rowStatus("fleet-1")+` === null && `+rowStatus("fleet-2")+` === null`)

	// Delete the backup.
	b.nav("backups")
	b.until("the backup", rowStatus("web-1")+` === 'AVAILABLE'`)
	b.click(`button[aria-label="Delete the backup of web-1"]`)
	b.until("the confirmation", `document.querySelector('dialog[open]') !== null`)
	b.click(`dialog[open] button.danger`)
	// It stays listed, EXPIRED, with nothing left to do with it.
	b.until("the backup EXPIRED", rowStatus("web-1")+` === 'EXPIRED'`)
	b.until("no action on it", `[...document.querySelectorAll('main tbody button')].every((x) => x.hidden)`)

	// The ledger: signup credit, top-up, hourly charges, each with the
	// balance after it; the newest balance is the overview's; a chart.
	b.nav("overview")
	b.until("the overview balance", `/^\$\d+\.\d+$/.test(document.querySelector('section[aria-label="Balance"] .value')?.textContent ?? '')`)
	balance := eval[string](b, `document.querySelector('section[aria-label="Balance"] .value').textContent`)
	b.shot("desktop-overview")
	b.nav("ledger")
	b.until("the ledger", `document.querySelectorAll('main tbody tr').length >= 6 && !!document.querySelector('svg.chart path.line')`)
	types := eval[[]string](b, `[...document.querySelectorAll('main tbody tr')].map(r => r.dataset.type)`)
	for _, want := range []string{"signup_credit", "topup", "charge"} {
		if !strings.Contains(strings.Join(types, " "), want) {
			t.Errorf("the ledger has no %s row: %v", want, types)
		}
	}
	if got := eval[string](b, `document.querySelector('main tbody tr td:last-child').textContent`); got != balance {
		t.Errorf("the newest balance after is %q, the overview says %q", got, balance)
	}
	b.accessibleNames("ledger")
	b.shot("desktop-ledger")

	// Dark mode, for the README.
	if screenshotDir() != "" {
		b.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
			return err
		}))
		b.nav("servers")
		b.until("the servers", rowCount("web-1")+` >= 1`)
		b.shot("desktop-servers-dark")
		b.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
			return err
		}))
	}

	// Leaving the clock an hour ahead outlives the 15-minute token: the next
	// call is a 401, the dashboard logs out cleanly, keeps the email, and
	// logging in again returns to the same page.
	b.nav("servers")
	b.until("the servers", rowCount("web-1")+` >= 1`)
	b.allow(401, "/")
	b.click(`#sandbox-banner button[aria-label^="Move the sandbox clock forward by one hour"]`)
	b.until("the expiry", `!!document.querySelector('#password') && document.querySelector('#email').value === `+js(email)+
		` && /session expired/.test(document.querySelector('main').textContent)`)
	if eval[bool](b, `sessionStorage.getItem('cryptovps.token') !== null`) {
		t.Error("the expired token is still stored")
	}
	b.fill("#password", password)
	b.click(`button[type="submit"]`)
	b.until("back on the servers page", heading("Servers")+` && `+rowCount("web-1")+` >= 1`)
	b.check("the end of the journey")

	b.mu.Lock()
	requests := b.requests
	b.mu.Unlock()
	t.Logf("journey done in %v with %d API requests from the page", time.Since(start).Round(time.Millisecond), requests)

	if screenshotDir() != "" {
		phoneScreenshots(t, srv, email, password)
	}
}

// phoneScreenshots logs the same account in at phone size and goes
// through the main pages, checking that none scrolls sideways.
func phoneScreenshots(t *testing.T, srv *binary.Process, email, password string) {
	b := newBrowser(t, 390, 844, true)
	b.do(chromedp.Navigate(srv.URL + "/app/"))
	b.until("the login page", `!!document.querySelector('#email')`)
	b.noOverflow("login")
	b.accessibleNames("login")
	b.fill("#email", email)
	b.fill("#password", password)
	b.click(`button[type="submit"]`)
	b.until("the overview", heading("Overview")+` && /^\$/.test(document.querySelector('section[aria-label="Balance"] .value').textContent)`)
	b.until("the chart", `!!document.querySelector('svg.chart')`)
	b.noOverflow("overview")
	b.accessibleNames("overview")
	b.shot("phone-overview")
	b.nav("servers")
	b.until("the servers", rowCount("web-1")+` >= 1`)
	b.noOverflow("servers")
	b.shot("phone-servers")
	b.nav("deploy")
	b.until("the deploy form", `!!document.querySelector('.plans input[type=radio]')`)
	b.noOverflow("deploy")
	b.shot("phone-deploy")
	b.nav("topup")
	b.until("the top-up page", `!!document.querySelector('main tbody tr')`)
	b.click(`main tbody tr a.btn`)
	b.until("the payment details", `!!document.querySelector('#payment svg.qr')`)
	b.noOverflow("topup")
	b.shot("phone-topup", "#payment")
	b.nav("ledger")
	b.until("the ledger", `document.querySelectorAll('main tbody tr').length >= 6`)
	b.noOverflow("ledger")
	b.accessibleNames("ledger")
	b.shot("phone-ledger")
	b.check("the phone pages")
}

// TestInsufficientBalance: a person registers with the keyboard alone, and a
// deploy the balance cannot cover gets the API's 402 as a sentence with the
// way out, a link to the top-up page.
func TestInsufficientBalance(t *testing.T) {
	needBrowser(t)
	srv := startServer(t, "--signup-credit", "0.01")
	b := newBrowser(t, 1280, 800, false)
	b.do(chromedp.Navigate(srv.URL + "/app/#/register"))
	b.until("the register form", heading("Create your account")+` && document.activeElement === document.querySelector('#email')`)
	// By keyboard only: the email field has the focus, Tab goes to the
	// password, Enter submits.
	b.do(chromedp.KeyEvent("short@example.com\tcorrect horse battery\r"))
	b.until("the overview", heading("Overview"))
	b.nav("deploy")
	b.until("the deploy form", `!!document.querySelector('.plans input[type=radio]')`)
	b.until("the balance warning", `/not enough/.test(document.querySelector('.summary').textContent)`)
	b.allow(402, "/servers")
	b.click(`form[aria-label="Deploy servers"] button[type="submit"]`)
	b.until("the 402 explained", `/balance does not cover/.test(document.querySelector('main .form-error')?.textContent ?? '')`)
	b.click(`main .form-error a[href="#/topup"]`)
	b.until("the top-up page", heading("Top up"))
	b.check("the end")
}
