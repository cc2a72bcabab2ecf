package contract

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/upstream/btcpay/btcpayfake"
)

// btcpayTests run on a stack taking payments through a fake BTCPay store:
// top-ups are its invoices, and its webhooks are delivered to the stack's
// /webhooks/btcpay (signed, or not, duplicated, redelivered, reordered).
func btcpayTests(t *testing.T, newModel func(t *testing.T, store eventstore.Store) projections.Model) {
	fake := btcpayfake.New(t, btcpayfake.Options{})
	h := newHarness(t, newModel, config{BTCPay: fake})
	// deliver posts every webhook the fake recorded for invoice since
	// from, signed; it returns how many there were.
	deliver := func(t *testing.T, invoice string, evs []btcpayfake.Event) {
		t.Helper()
		for _, ev := range evs {
			if ev.InvoiceID == invoice {
				h.do(t, http.MethodPost, "/webhooks/btcpay", ev.Body, "BTCPay-Sig", fake.Signature(ev.Body)).want(t, http.StatusOK)
			}
		}
	}
	open := func(t *testing.T, u *user, body any, headers ...string) (id, invoice string) {
		t.Helper()
		r := u.do(t, http.MethodPost, "/billing/topups", body, headers...).want(t, http.StatusCreated)
		id, invoice = r.str("topup.id"), r.str("topup.invoiceId")
		if got := fake.InvoicesFor(id); len(got) != 1 || got[0] != invoice {
			t.Fatalf("top-up %s: invoices %v, want [%s]", id, got, invoice)
		}
		return id, invoice
	}
	status := func(t *testing.T, u *user, id string) string {
		t.Helper()
		return u.do(t, http.MethodGet, "/billing/topups/"+id, nil).want(t, http.StatusOK).str("topup.status")
	}

	t.Run("a top-up is a BTCPay invoice with everything needed to pay it", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		r := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "25.00"}).want(t, http.StatusCreated)
		if r.str("topup.status") != "PENDING" || r.str("topup.checkoutLink") == "" || r.str("topup.expiresAt") == "" {
			t.Errorf("top-up: %s", r)
		}
		methods := r.list("topup.paymentMethods")
		if len(methods) != 2 {
			t.Fatalf("want BTC-CHAIN and BTC-LN, got %s", r)
		}
		for i, want := range []struct{ id, network string }{{"BTC-CHAIN", "onchain"}, {"BTC-LN", "lightning"}} {
			p := "topup.paymentMethods." + itoa(i) + "."
			if r.str(p+"id") != want.id || r.str(p+"network") != want.network || r.str(p+"destination") == "" ||
				r.str(p+"amount") != "0.00025000" || r.str(p+"rate") == "" || r.str(p+"expiresAt") != r.str("topup.expiresAt") {
				t.Errorf("method %d: %s", i, r)
			}
		}
		ln := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "5.00", "currency": "BTC-LN"}).
			want(t, http.StatusCreated)
		if len(ln.list("topup.paymentMethods")) != 1 || ln.str("topup.paymentMethods.0.id") != "BTC-LN" ||
			!strings.HasPrefix(ln.str("topup.payAddress"), "ln") {
			t.Errorf("a Lightning top-up: %s", ln)
		}
	})

	t.Run("a method the store does not offer is 400 naming those it does, and nothing is shown", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		r := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "5.00", "currency": "LTC"}).wantDetail(t, "currency")
		if d := r.str("details.currency"); !strings.Contains(d, "BTC-CHAIN") || !strings.Contains(d, "BTC-LN") {
			t.Errorf("details.currency %q does not name the offered methods", d)
		}
		if l := u.do(t, http.MethodGet, "/billing/topups", nil).want(t, http.StatusOK); len(l.list("topups")) != 0 {
			t.Errorf("a refused top-up is shown: %s", l)
		}
	})

	t.Run("an Idempotency-Key retry answers the same top-up and opens no second invoice", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		key := []string{"Idempotency-Key", h.unique("topup-")}
		id, _ := open(t, u, map[string]string{"amount": "9.00"}, key...)
		r := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "9.00"}, key...).want(t, http.StatusCreated)
		if r.str("topup.id") != id || r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay: %s", r)
		}
		u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "9.01"}, key...).
			wantError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		if got := fake.InvoicesFor(id); len(got) != 1 {
			t.Errorf("invoices for %s: %v", id, got)
		}
		// Concurrent retries with one key: one top-up, one invoice.
		race := []string{"Idempotency-Key", h.unique("race-")}
		ids := make(chan string, 8)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				r := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "4.00"}, race...)
				if r.Status == http.StatusCreated {
					ids <- r.str("topup.id")
				} else {
					t.Errorf("concurrent retry: %s", r)
				}
			})
		}
		wg.Wait()
		close(ids)
		first := ""
		for got := range ids {
			if first == "" {
				first = got
			} else if got != first {
				t.Errorf("concurrent retries got top-ups %s and %s", first, got)
			}
		}
		if got := fake.InvoicesFor(first); len(got) != 1 {
			t.Errorf("concurrent retries opened invoices %v", got)
		}
		// Another account's key is its own.
		v := h.register(t)
		if other, _ := open(t, v, map[string]string{"amount": "9.00"}, key...); other == id {
			t.Errorf("another account got this account's top-up")
		}
	})

	t.Run("settled: credited exactly once, whatever the deliveries", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		id, inv := open(t, u, map[string]string{"amount": "25.00"})
		before := len(fake.Events())
		fake.Pay(inv, domain.MustMoney("25.00"), false)
		deliver(t, inv, fake.Events()[before:])
		if s := status(t, u, id); s != "PROCESSING" {
			t.Errorf("paid, unconfirmed: %s, want PROCESSING", s)
		}
		u.wantBalance(t, "10.00", "0.00")
		mid := len(fake.Events())
		fake.Confirm(inv)
		evs := fake.Events()[mid:]
		// A forged or unsigned delivery is 401 and changes nothing.
		for _, ev := range evs {
			h.do(t, http.MethodPost, "/webhooks/btcpay", ev.Body, "BTCPay-Sig", "sha256="+strings.Repeat("0", 64)).
				wantError(t, http.StatusUnauthorized, "bad_signature")
			h.do(t, http.MethodPost, "/webhooks/btcpay", ev.Body).wantError(t, http.StatusUnauthorized, "bad_signature")
		}
		if s := status(t, u, id); s != "PROCESSING" {
			t.Errorf("after forged deliveries: %s", s)
		}
		// Reordered, duplicated and redelivered.
		all := fake.Events()[before:]
		for i := len(all) - 1; i >= 0; i-- {
			deliver(t, inv, all[i:i+1])
		}
		deliver(t, inv, all)
		for _, ev := range all {
			deliver(t, inv, []btcpayfake.Event{fake.Redelivery(ev)})
		}
		if s := status(t, u, id); s != "PAID" {
			t.Errorf("settled: %s, want PAID", s)
		}
		u.wantBalance(t, "35.00", "0.00")
		l := u.do(t, http.MethodGet, "/billing/ledger", nil).want(t, http.StatusOK)
		if l.str("transactions.0.type") != "topup" || l.str("transactions.0.topupId") != id || l.str("transactions.0.amount") != "25.00" {
			t.Errorf("ledger: %s", l)
		}
	})

	t.Run("expired and invalid invoices end with no credit; partial and late payments wait for the operator", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		expired, inv := open(t, u, map[string]string{"amount": "5.00"})
		from := len(fake.Events())
		fake.Expire(inv)
		deliver(t, inv, fake.Events()[from:])
		if s := status(t, u, expired); s != "EXPIRED" {
			t.Errorf("expired: %s", s)
		}
		partial, inv := open(t, u, map[string]string{"amount": "6.00"})
		from = len(fake.Events())
		fake.Pay(inv, domain.MustMoney("2.00"), true)
		fake.Expire(inv)
		deliver(t, inv, fake.Events()[from:])
		if s := status(t, u, partial); s != "EXPIRED" {
			t.Errorf("expired partly paid: %s", s)
		}
		marked, inv := open(t, u, map[string]string{"amount": "7.00"})
		from = len(fake.Events())
		fake.Mark(inv, "Settled")
		deliver(t, inv, fake.Events()[from:])
		if s := status(t, u, marked); s != "REVIEW" {
			t.Errorf("marked settled by hand: %s", s)
		}
		u.wantBalance(t, "10.00", "0.00")

		review := h.admin(t, http.MethodGet, "/admin/topups/review", nil).want(t, http.StatusOK)
		listed := map[string]string{}
		for i := range review.list("topups") {
			p := "topups." + itoa(i) + "."
			listed[review.str(p+"id")] = review.str(p + "review")
		}
		if listed[partial] == "" || listed[marked] == "" || listed[expired] != "" {
			t.Errorf("review list %s: want the partly paid and the marked top-ups, not the plain expired one", review)
		}
		h.admin(t, http.MethodPost, "/admin/topups/"+marked+"/credit", map[string]string{"reason": "wallet checked (ticket 3)"}).
			want(t, http.StatusOK)
		h.admin(t, http.MethodPost, "/admin/topups/"+marked+"/credit", map[string]string{"reason": "again"}).
			wantError(t, http.StatusConflict, "invalid_state")
		h.admin(t, http.MethodPost, "/admin/topups/"+partial+"/credit", map[string]string{"reason": "what was paid", "amount": "2.00"}).
			want(t, http.StatusOK)
		u.wantBalance(t, "19.00", "0.00")
		// A second webhook for the credited invoice changes nothing.
		deliver(t, inv, fake.Events()[from:])
		u.wantBalance(t, "19.00", "0.00")

		dismissed, inv := open(t, u, map[string]string{"amount": "8.00"})
		from = len(fake.Events())
		fake.Mark(inv, "Settled")
		deliver(t, inv, fake.Events()[from:])
		h.admin(t, http.MethodPost, "/admin/topups/"+dismissed+"/dismiss", map[string]string{"reason": "not received"}).
			want(t, http.StatusOK)
		h.admin(t, http.MethodPost, "/admin/topups/"+dismissed+"/dismiss", map[string]string{"reason": "again"}).
			wantError(t, http.StatusConflict, "invalid_state")
		u.wantBalance(t, "19.00", "0.00")
	})

	t.Run("with every webhook lost, the reconcile loop settles the top-up", func(t *testing.T) {
		// Moves the stack's clock: not in parallel with the others'
		// token lifetimes.
		u := h.register(t)
		id, inv := open(t, u, map[string]string{"amount": "12.00"})
		fake.Settle(inv)
		h.clock.SetOffset(h.clock.Offset() + 2*time.Minute)
		if err := h.work.RunDue(context.Background()); err != nil {
			t.Fatalf("background work: %v", err)
		}
		if s := status(t, u, id); s != "PAID" {
			t.Errorf("after a reconcile pass: %s, want PAID", s)
		}
		u.wantBalance(t, "22.00", "0.00")
	})

	t.Run("an agent funds an account from /llms.txt alone, and deploys with it", func(t *testing.T) {
		t.Parallel()
		guide := string(h.do(t, http.MethodGet, "/llms.txt", nil).want(t, http.StatusOK).Raw)
		for _, want := range []string{"POST /billing/topups", "paymentMethods", "destination", "expiresAt",
			"PROCESSING", "PAID", "EXPIRED", "Idempotency-Key"} {
			if !strings.Contains(guide, want) {
				t.Errorf("/llms.txt does not tell about %s", want)
			}
		}
		if strings.Contains(guide, "/sandbox/topups") {
			t.Errorf("/llms.txt offers the sandbox payer with real payments")
		}
		u := h.register(t)
		// As the guide says: open a top-up with a key, pick a method, pay
		// exactly its amount to its destination before expiresAt, poll.
		key := []string{"Idempotency-Key", h.unique("fund-")}
		r := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "20.00"}, key...).want(t, http.StatusCreated)
		id, inv := r.str("topup.id"), r.str("topup.invoiceId")
		if r.str("topup.paymentMethods.0.destination") == "" || r.str("topup.paymentMethods.0.amount") != "0.00020000" {
			t.Fatalf("nothing to pay with: %s", r)
		}
		from := len(fake.Events())
		fake.Settle(inv) // the agent's wallet pays; BTCPay sees it confirmed
		for _, ev := range fake.Events()[from:] {
			if ev.InvoiceID != inv {
				continue
			}
			// BTCPay's own delivery, to the stack's HTTP server.
			if code, err := fake.Send(context.Background(), h.client.Base()+"/webhooks/btcpay", ev); err != nil || code != http.StatusOK {
				t.Fatalf("webhook %s: %d %v", ev.Type, code, err)
			}
		}
		if s := status(t, u, id); s != "PAID" {
			t.Fatalf("top-up %s after BTCPay settled it", s)
		}
		u.wantBalance(t, "30.00", "0.00")
		u.deploy(t, "funded", "vc2-1c-1gb")
	})

	t.Run("the sandbox routes do not exist with real payments", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		id, _ := open(t, u, map[string]string{"amount": "5.00"})
		u.do(t, http.MethodPost, "/sandbox/topups/"+id+"/pay", nil).wantError(t, http.StatusNotFound, "not_found")
		u.do(t, http.MethodPost, "/sandbox/clock/advance", map[string]int{"seconds": 60}).wantError(t, http.StatusNotFound, "not_found")
	})
}
