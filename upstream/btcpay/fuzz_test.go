package btcpay_test

import (
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/upstream/btcpay"
)

// FuzzVerifySignature: never panics, and accepts exactly the signature
// Sign makes (in either hex case).
func FuzzVerifySignature(f *testing.F) {
	f.Add(secret, body, btcpay.Sign(secret, body))
	f.Add(secret, body, "")
	f.Add("", []byte("{}"), "sha256=")
	f.Add("s", []byte("x"), "sha256="+strings.Repeat("g", 64))
	f.Add("s", []byte{0xff, 0x00}, "SHA256="+strings.Repeat("A", 64))
	f.Fuzz(func(t *testing.T, secret string, body []byte, header string) {
		err := btcpay.VerifySignature(secret, body, header)
		want := btcpay.Sign(secret, body)
		ok := secret != "" && strings.EqualFold(header, want) && strings.HasPrefix(header, "sha256=")
		if (err == nil) != ok {
			t.Errorf("VerifySignature(%q, %q, %q) = %v; Sign = %q", secret, body, header, err, want)
		}
	})
}

// FuzzParseWebhook: never panics, and what it accepts has what a handler
// needs to look things up.
func FuzzParseWebhook(f *testing.F) {
	f.Add(body)
	f.Add([]byte(`{"deliveryId":"D2","originalDeliveryId":"D1","isRedelivery":true,"type":"InvoiceExpired","storeId":"S","invoiceId":"I","partiallyPaid":true}`))
	f.Add([]byte(`{"deliveryId":"P","type":"PayoutCreated"}`))
	f.Add([]byte(`{"deliveryId":null,"type":"InvoiceSettled"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"deliveryId":"D","type":"InvoiceSettled","storeId":"S","invoiceId":"I"} trailing`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := btcpay.ParseWebhook(b)
		if err != nil {
			return
		}
		if d.DeliveryID == "" || d.Type == "" || d.DedupeKey() == "" {
			t.Errorf("accepted %q as %+v", b, d)
		}
		if d.IsInvoiceEvent() && (d.InvoiceID == "" || d.StoreID == "") {
			t.Errorf("accepted invoice event %q without ids: %+v", b, d)
		}
		if d.IsRedelivery && d.OriginalDeliveryID == "" {
			t.Errorf("accepted a redelivery without its original: %+v", d)
		}
	})
}
