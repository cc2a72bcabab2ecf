package dashboard

import (
	"testing"

	"github.com/chromedp/chromedp"
)

// TestModules runs the dashboard's pure modules in the browser on cases the
// journey cannot reach: exact money arithmetic, the runway from the API's
// fields or computed, the ssh line from sshUser/sshPort, and the parser of
// the account event stream (GET /events, not served yet).
func TestModules(t *testing.T) {
	needBrowser(t)
	srv := startServer(t)
	b := newBrowser(t, 800, 600, false)
	b.do(chromedp.Navigate(srv.URL + "/app/"))
	b.until("the page", `!!document.querySelector('#email')`)
	cases := map[string]string{
		// money.js: strings in, strings out, never a float.
		"usd":       `import('/app/js/money.js').then(m => [m.usd('9.986'), m.usd('-0.014'), m.usd('10.00'), m.usd('0.1')].join(' '))`,
		"signed":    `import('/app/js/money.js').then(m => [m.signed('25.00'), m.signed('-0.014')].join(' '))`,
		"times":     `import('/app/js/money.js').then(m => [m.times('0.014', 10), m.times('0.164', 3)].join(' '))`,
		"exact":     `import('/app/js/money.js').then(m => m.format(m.parse('0.1') + m.parse('0.2')))`,
		"hours":     `import('/app/js/money.js').then(m => [m.wholeHours('10.00', '0.014'), String(m.wholeHours('10.00', '0')), m.cmp('0.014', '0.0140')].join(' '))`,
		"runway":    `import('/app/js/views/overview.js').then(m => [m.runway({balance: '10.00', hourlySpend: '0.014'}).value, m.runway({balance: '10.00', hourlySpend: '0'}).value, m.runway({balance: '1.00', hourlySpend: '0.5', hoursLeft: 2, suspendsAt: '2026-12-03T14:00:00Z'}).value].join(' | '))`,
		"ssh":       `import('/app/js/views/servers.js').then(m => [m.sshCommand({ipv4: '198.18.0.1'}), m.sshCommand({ipv4: '203.0.113.9', sshUser: 'admin', sshPort: 2222})].join(' | '))`,
		"sse":       `import('/app/js/live.js').then(async m => { const out = []; const body = new Response(': ping\n\nid: 7\nevent: server\ndata: {"server":\ndata: {"id":"a"}}\n\r\nevent: billing\r\ndata: {"billing":{}}\r\n\r\n').body; await m.readEvents(body, e => out.push(e.id + '/' + e.event + '/' + e.data)); return out.join(' ; ') })`,
		"qrVersion": `import('/app/js/qr.js').then(m => [m.qrMatrix('tb1qf658aa3e48ebf1168302116a49328a60b070cb').version, m.qrMatrix('x'.repeat(600)).version].join(' '))`,
	}
	want := map[string]string{
		"usd":       "$9.986 −$0.014 $10.00 $0.10",
		"signed":    "+$25.00 −$0.014",
		"times":     "0.14 0.492",
		"exact":     "0.30",
		"hours":     "714 null 0",
		"runway":    "29 days | No spend | 2 h",
		"ssh":       "ssh root@198.18.0.1 | ssh -p 2222 admin@203.0.113.9",
		"sse":       "7/server/{\"server\":\n{\"id\":\"a\"}} ; undefined/billing/{\"billing\":{}}",
		"qrVersion": "3 19",
	}
	for name, expr := range cases {
		if got := eval[string](b, expr); got != want[name] {
			t.Errorf("%s: got %q, want %q", name, got, want[name])
		}
	}
	b.check("the modules")
}
