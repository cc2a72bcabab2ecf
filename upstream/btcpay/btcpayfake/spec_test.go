package btcpayfake

import "testing"

func TestLoadSpec(t *testing.T) {
	s, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"InvoiceCreated", "InvoiceSettled", "InvoiceExpired", "InvoiceReceivedPayment",
		"InvoicePaymentSettled", "InvoiceProcessing", "InvoiceInvalid"} {
		if s.webhooks[typ] == nil {
			t.Errorf("no schema for %s", typ)
		}
	}
}
