package btcpay_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/upstream/btcpay"
	"github.com/cryptovps/cryptovps/upstream/btcpay/btcpayfake"
)

const secret = "whsec-test"

var body = []byte(`{"deliveryId":"D1","webhookId":"W1","originalDeliveryId":"D1","isRedelivery":false,"type":"InvoiceSettled","timestamp":1767225600,"storeId":"S1","invoiceId":"I1","metadata":{"orderId":"t1"}}`)

func TestVerifySignature(t *testing.T) {
	good := btcpay.Sign(secret, body)
	hexPart := strings.TrimPrefix(good, "sha256=")
	if len(hexPart) != 64 || hexPart != strings.ToLower(hexPart) {
		t.Fatalf("Sign = %q, want sha256= and 64 lowercase hex digits", good)
	}
	if err := btcpay.VerifySignature(secret, body, good); err != nil {
		t.Errorf("the right signature: %v", err)
	}
	if err := btcpay.VerifySignature(secret, body, "sha256="+strings.ToUpper(hexPart)); err != nil {
		t.Errorf("upper-case hex: %v", err)
	}
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)-3] = 'X'
	for name, tc := range map[string]struct {
		secret string
		body   []byte
		header string
	}{
		"missing":           {secret, body, ""},
		"other secret":      {"other", body, good},
		"no secret":         {"", body, btcpay.Sign("", body)},
		"tampered body":     {secret, tampered, good},
		"bare hex":          {secret, body, hexPart},
		"upper-case prefix": {secret, body, "SHA256=" + hexPart},
		"sha1":              {secret, body, "sha1=" + hexPart[:40]},
		"leading space":     {secret, body, " " + good},
		"trailing newline":  {secret, body, good + "\n"},
		"short":             {secret, body, good[:len(good)-1]},
		"long":              {secret, body, good + "0"},
		"not hex":           {secret, body, "sha256=" + strings.Repeat("zz", 32)},
		"prefix only":       {secret, body, "sha256="},
		"two values":        {secret, body, good + "," + good},
	} {
		if err := btcpay.VerifySignature(tc.secret, tc.body, tc.header); !errors.Is(err, btcpay.ErrBadSignature) {
			t.Errorf("%s: VerifySignature = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestParseWebhook(t *testing.T) {
	d, err := btcpay.ParseWebhook(body)
	want := btcpay.Delivery{DeliveryID: "D1", WebhookID: "W1", Type: "InvoiceSettled", InvoiceID: "I1", StoreID: "S1"}
	if err != nil || d != want || d.DedupeKey() != "D1" || !d.IsInvoiceEvent() {
		t.Errorf("ParseWebhook = %+v, %v; want %+v", d, err, want)
	}
	re := []byte(`{"deliveryId":"D2","originalDeliveryId":"D1","isRedelivery":true,"type":"InvoiceSettled","storeId":"S1","invoiceId":"I1"}`)
	if d, err := btcpay.ParseWebhook(re); err != nil || !d.IsRedelivery || d.DedupeKey() != "D1" {
		t.Errorf("a redelivery parses as %+v, %v; want dedupe key D1", d, err)
	}
	if d, err := btcpay.ParseWebhook([]byte(`{"deliveryId":"P1","type":"PayoutCreated","storeId":"S1","payoutId":"x"}`)); err != nil || d.IsInvoiceEvent() {
		t.Errorf("a payout event: %+v, %v", d, err)
	}
	for name, b := range map[string]string{
		"empty":                  ``,
		"not an object":          `[1,2]`,
		"no delivery id":         `{"type":"InvoiceSettled","storeId":"S1","invoiceId":"I1"}`,
		"no type":                `{"deliveryId":"D1","storeId":"S1","invoiceId":"I1"}`,
		"invoice event, no id":   `{"deliveryId":"D1","type":"InvoiceSettled","storeId":"S1"}`,
		"invoice event, no shop": `{"deliveryId":"D1","type":"InvoiceSettled","invoiceId":"I1"}`,
		"number id":              `{"deliveryId":1,"type":"InvoiceSettled","storeId":"S1","invoiceId":"I1"}`,
		"redelivery, no origin":  `{"deliveryId":"D2","isRedelivery":true,"type":"InvoiceSettled","storeId":"S1","invoiceId":"I1"}`,
		"trailing data":          string(body) + `{}`,
		"too big":                `{"deliveryId":"D1","type":"X","pad":"` + strings.Repeat("a", btcpay.MaxWebhookBody) + `"}`,
	} {
		if _, err := btcpay.ParseWebhook([]byte(b)); !errors.Is(err, btcpay.ErrBadWebhook) {
			t.Errorf("%s: ParseWebhook = %v, want ErrBadWebhook", name, err)
		}
	}
}

func TestReadWebhookWantsOneSignature(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/btcpay", strings.NewReader(string(body)))
	r.Header.Add(btcpay.SignatureHeader, btcpay.Sign(secret, body))
	if _, err := btcpay.ReadWebhook(secret, r); err != nil {
		t.Fatalf("one good signature: %v", err)
	}
	r = httptest.NewRequest(http.MethodPost, "/webhooks/btcpay", strings.NewReader(string(body)))
	r.Header.Add(btcpay.SignatureHeader, btcpay.Sign(secret, body))
	r.Header.Add(btcpay.SignatureHeader, btcpay.Sign(secret, body))
	if _, err := btcpay.ReadWebhook(secret, r); !errors.Is(err, btcpay.ErrBadSignature) {
		t.Errorf("two signatures: %v, want ErrBadSignature", err)
	}
}

// receiver is the webhook handling the package documents, as the
// application is to wire it: verify, parse, dedupe, fetch, decide, credit
// once per invoice.
type receiver struct {
	c      *btcpay.Client
	topups map[string]domain.InvoiceRequest // by invoice ref: the app's event log

	mu       sync.Mutex
	handled  map[string]bool
	credits  map[string]domain.Money
	outcomes map[string]domain.Outcome
	reviews  map[string]string
}

func newReceiver(c *btcpay.Client) *receiver {
	return &receiver{c: c, topups: map[string]domain.InvoiceRequest{}, handled: map[string]bool{},
		credits: map[string]domain.Money{}, outcomes: map[string]domain.Outcome{}, reviews: map[string]string{}}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d, err := rc.c.ReadWebhook(r)
	switch {
	case errors.Is(err, btcpay.ErrBadSignature):
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	case err != nil:
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	seen := rc.handled[d.DedupeKey()]
	rc.mu.Unlock()
	if seen {
		return
	}
	if d.IsInvoiceEvent() && rc.c.OfStore(d) {
		inv, err := rc.c.Invoice(r.Context(), d.InvoiceID)
		if err != nil && !errors.Is(err, domain.ErrInvoiceNotFound) {
			http.Error(w, "try again", http.StatusServiceUnavailable) // not handled: BTCPay redelivers
			return
		}
		if req, ok := rc.topups[inv.Ref]; ok && err == nil {
			dec := domain.DecideTopup(inv, req.TopupID, req.Amount)
			rc.mu.Lock()
			rc.outcomes[inv.Ref], rc.reviews[inv.Ref] = dec.Outcome, dec.Review
			if _, done := rc.credits[inv.Ref]; !done && dec.Outcome == domain.OutcomeCredit {
				rc.credits[inv.Ref] = dec.Credit // the ledger tx id derives from inv.Ref
			}
			rc.mu.Unlock()
		}
	}
	rc.mu.Lock()
	rc.handled[d.DedupeKey()] = true
	rc.mu.Unlock()
}

func TestWebhooks(t *testing.T) {
	fake, c := setup(t, nil)
	rc := newReceiver(c)
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	send := func(ev btcpayfake.Event, sig string, want int) {
		t.Helper()
		code, err := fake.SendWithHeader(ctx, srv.URL, ev, sig)
		if err != nil || code != want {
			t.Errorf("delivering %s %s: %d, %v; want %d", ev.Type, ev.DeliveryID, code, err, want)
		}
	}
	credits := func() (n int, total domain.Money) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, m := range rc.credits {
			n, total = n+1, total.Add(m)
		}
		return n, total
	}

	req := newRequest()
	inv, err := c.OpenInvoice(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	rc.topups[inv.Ref] = req
	created := fake.Events()[0]

	// A correctly signed lie: the body says settled, the invoice is not.
	var lie map[string]any
	_ = json.Unmarshal(created.Body, &lie)
	lie["type"], lie["deliveryId"], lie["originalDeliveryId"] = "InvoiceSettled", "forged-1", "forged-1"
	forged := btcpayfake.Event{DeliveryID: "forged-1", Type: "InvoiceSettled", InvoiceID: inv.Ref}
	forged.Body, _ = json.Marshal(lie)
	send(forged, fake.Signature(forged.Body), http.StatusOK)
	if n, _ := credits(); n != 0 {
		t.Fatalf("a webhook body claiming settlement credited %d", n)
	}

	fake.Settle(inv.Ref)
	events := fake.Events()
	var settled btcpayfake.Event
	for _, ev := range events {
		if ev.Type == "InvoiceSettled" {
			settled = ev
		}
	}
	if settled.Type == "" {
		t.Fatalf("no InvoiceSettled among %d events", len(events))
	}

	// Unsigned, wrongly signed, signed with another secret: 401, nothing.
	send(settled, "", http.StatusUnauthorized)
	send(settled, "sha256="+strings.Repeat("0", 64), http.StatusUnauthorized)
	send(settled, btcpay.Sign("other-secret", settled.Body), http.StatusUnauthorized)
	send(settled, "sha256=nothex", http.StatusUnauthorized)
	if n, _ := credits(); n != 0 {
		t.Fatalf("badly signed webhooks credited %d", n)
	}

	// BTCPay is down when the first delivery comes: not handled, 503.
	fake.Fail(btcpayfake.OpGetInvoice, 3, http.StatusBadGateway)
	send(settled, fake.Signature(settled.Body), http.StatusServiceUnavailable)
	if n, _ := credits(); n != 0 {
		t.Fatalf("credited without reading the invoice")
	}

	// Reordered (newest first), duplicated and redelivered: one credit.
	for i := len(events) - 1; i >= 0; i-- {
		send(events[i], fake.Signature(events[i].Body), http.StatusOK)
	}
	for _, ev := range []btcpayfake.Event{settled, settled, fake.Redelivery(settled), fake.Redelivery(settled), events[0]} {
		send(ev, fake.Signature(ev.Body), http.StatusOK)
	}
	if n, total := credits(); n != 1 || total.Cmp(req.Amount) != 0 {
		t.Errorf("%d credits totalling %s, want one of %s", n, total, req.Amount)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.outcomes[inv.Ref] != domain.OutcomeCredit || rc.reviews[inv.Ref] != "" {
		t.Errorf("outcome %s (review %q), want a credit", rc.outcomes[inv.Ref], rc.reviews[inv.Ref])
	}
}

// Every invoice webhook the fake makes, in every state, validates against
// its schema (the fake fails the test otherwise) and parses.
func TestEveryWebhookParses(t *testing.T) {
	fake, c := setup(t, nil)
	for _, do := range []func(id string){
		func(id string) { fake.Pay(id, domain.MustMoney("5.00"), false); fake.Expire(id) },
		func(id string) { fake.Pay(id, domain.MustMoney("50.00"), false); fake.Confirm(id) },
		func(id string) { fake.Expire(id); fake.Settle(id) },
		func(id string) { fake.Mark(id, "Settled") },
		func(id string) { fake.Mark(id, "Invalid") },
	} {
		inv, err := c.OpenInvoice(context.Background(), newRequest())
		if err != nil {
			t.Fatal(err)
		}
		do(inv.Ref)
	}
	types := map[string]bool{}
	for _, ev := range fake.Events() {
		d, err := btcpay.ParseWebhook(ev.Body)
		if err != nil || d.DeliveryID != ev.DeliveryID || d.Type != ev.Type || d.InvoiceID != ev.InvoiceID {
			t.Errorf("event %s %s parses as %+v, %v", ev.Type, ev.DeliveryID, d, err)
		}
		types[ev.Type] = true
	}
	for _, typ := range []string{"InvoiceCreated", "InvoiceReceivedPayment", "InvoicePaymentSettled", "InvoiceProcessing",
		"InvoiceSettled", "InvoiceExpired", "InvoiceInvalid"} {
		if !types[typ] {
			t.Errorf("no %s event was made", typ)
		}
	}
}
