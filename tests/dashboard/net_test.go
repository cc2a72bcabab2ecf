package dashboard

import (
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestProblemsAreCaught proves the net the journey relies on: a console
// error, an exception, an HTTP error and a CSP violation are each recorded.
func TestProblemsAreCaught(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	b := newBrowser(t, 800, 600, false)
	b.do(chromedp.Navigate(srv.URL + "/app/"))
	b.until("the login page", `!!document.querySelector('#email')`)
	b.check("a clean start")
	eval[bool](b, `(console.error('boom'), setTimeout(() => { throw new Error('thrown') }), true)`)
	eval[bool](b, `fetch('/no-such-endpoint').then(() => true)`)
	// An image from another host is refused by the CSP.
	eval[bool](b, `(document.body.append(Object.assign(document.createElement('img'), {src: 'http://192.0.2.1/x.png'})), true)`)
	// Trusted Types: assigning markup throws.
	if !eval[bool](b, `(() => { try { document.body.innerHTML = '<b>x</b>'; return false } catch { return true } })()`) {
		t.Error("innerHTML with a string was allowed")
	}
	want := []string{`console.error: "boom"`, "thrown", "unexpected HTTP 404", "Content Security Policy"}
	deadlineCheck := func() bool {
		all := b.problemList()
		for _, w := range want {
			if !strings.Contains(all, w) {
				return false
			}
		}
		return true
	}
	for i := 0; !deadlineCheck(); i++ {
		if i > 200 {
			t.Fatalf("not every problem was recorded; got:\n%s", b.problemList())
		}
		// Events arrive asynchronously from the browser: a round trip to
		// the page flushes what was already sent.
		eval[bool](b, `new Promise(r => requestAnimationFrame(() => r(true)))`)
	}
	b.mu.Lock()
	b.problems = nil // they were the point
	b.mu.Unlock()
}

// TestQRMatchesLibqrencode compares the dashboard's QR encoder, run in the
// browser, with symbols made by libqrencode (testdata/): the same bytes, the
// same level, version and mask must give the very same modules.
func TestQRMatchesLibqrencode(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	b := newBrowser(t, 800, 600, false)
	b.do(chromedp.Navigate(srv.URL + "/app/"))
	b.until("the page", `!!document.querySelector('#email')`)
	for _, name := range []string{"qr-eth-address.txt", "qr-600-bytes.txt"} {
		raw, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		// The first line is a comment with the encoded text as JSON.
		head := lines[0]
		text := head[strings.Index(head, `"`) : strings.LastIndex(head, `"`)+1]
		got := eval[[]string](b, `import('/app/js/qr.js').then(m => m.qrMatrix(`+text+`).dark.map(r => r.map(d => d ? '1' : '0').join('')))`)
		if strings.Join(got, "\n") != strings.Join(lines[1:], "\n") {
			t.Errorf("%s: the symbol differs from libqrencode's:\n%s", name, strings.Join(got, "\n"))
		}
	}
	b.check("the QR comparison")
}
