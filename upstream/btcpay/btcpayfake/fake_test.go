package btcpayfake

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that records errors instead of failing.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.errs
	r.errs = nil
	return e
}

func call(t *testing.T, s *Server, method, path, key, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "token "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The fake reports requests that break the document, and accepts what the
// document (relaxed as spec.go says) allows.
func TestFakeChecksRequests(t *testing.T) {
	rec := &recorder{TB: t}
	s := New(rec, Options{})
	key, store := s.Options().APIKey, s.Options().StoreID
	create := "/api/v1/stores/" + store + "/invoices"

	// The README's example, which strict allOf would reject.
	ok := `{"amount":"5.00","currency":"USD","metadata":{"orderId":"o1","anything":{"x":1}},"checkout":{"expirationMinutes":15,"paymentTolerance":0,"lazyPaymentMethods":false}}`
	if code := call(t, s, http.MethodPost, create, key, ok); code != http.StatusOK {
		t.Errorf("a valid creation: %d", code)
	}
	if errs := rec.take(); len(errs) > 0 {
		t.Errorf("a valid creation was reported: %v", errs)
	}
	for name, tc := range map[string]struct{ method, path, body string }{
		"amount as a number":      {http.MethodPost, create, `{"amount":5,"metadata":{"orderId":"o"}}`},
		"unknown checkout option": {http.MethodPost, create, `{"amount":"5.00","checkout":{"expiresIn":3}}`},
		"unknown field":           {http.MethodPost, create, `{"amount":"5.00","price":"5.00"}`},
		"undocumented route":      {http.MethodGet, "/api/v1/stores/" + store, ""},
		"store-scoped invoice":    {http.MethodGet, "/api/v1/stores/" + store + "/invoices/x", ""},
	} {
		call(t, s, tc.method, tc.path, key, tc.body)
		if errs := rec.take(); len(errs) == 0 {
			t.Errorf("%s: not reported", name)
		}
	}
	// Refused credentials are an answer, not a mismatch.
	if code := call(t, s, http.MethodGet, create+"?take=1", "wrong", ""); code != http.StatusUnauthorized {
		t.Errorf("listing with a wrong key: %d, want 401", code)
	}
	if code := call(t, s, http.MethodGet, "/api/v1/invoices/x", "", ""); code != http.StatusForbidden {
		t.Errorf("reading without a key: %d, want 403", code)
	}
	if errs := rec.take(); len(errs) > 0 {
		t.Errorf("refusals were reported: %v", errs)
	}
}

// The answers are checked too: a wrong one is a mismatch.
func TestFakeChecksResponses(t *testing.T) {
	spec, err := loadSpecOnce()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://fake/api/v1/invoices/abc", nil)
	req.Header.Set("Authorization", "token k")
	x, err := spec.checkRequest(req, nil, nil)
	if x == nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	for _, bad := range []string{`{"id":5}`, `{"id":"a","status":"Paid"}`, `[]`} {
		if err := x.checkResponse(http.StatusOK, h, []byte(bad)); err == nil {
			t.Errorf("answer %s passed", bad)
		}
	}
	if err := x.checkResponse(http.StatusTeapot, h, []byte(`{}`)); err == nil {
		t.Error("an undocumented status passed")
	}
	good := `{"id":"a","storeId":"s","amount":"5.00","currency":"USD","status":"New","additionalStatus":"None","createdTime":1,"expirationTime":2,"metadata":{"orderId":"o"},"checkout":{"expirationMinutes":15}}`
	if err := x.checkResponse(http.StatusOK, h, []byte(good)); err != nil {
		t.Errorf("a good answer: %v", err)
	}
}

func TestFakeChecksWebhooks(t *testing.T) {
	spec, err := loadSpecOnce()
	if err != nil {
		t.Fatal(err)
	}
	good := `{"deliveryId":"d","webhookId":"w","originalDeliveryId":"d","isRedelivery":false,"type":"InvoiceSettled","timestamp":1,"storeId":"s","invoiceId":"i","metadata":{},"manuallyMarked":false,"overPaid":false}`
	if err := spec.ValidateWebhook("InvoiceSettled", []byte(good)); err != nil {
		t.Errorf("a good InvoiceSettled: %v", err)
	}
	for _, bad := range []string{
		strings.Replace(good, `"overPaid":false`, `"overPaid":"no"`, 1),
		strings.Replace(good, `"isRedelivery":false`, `"isRedelivery":"false"`, 1),
		strings.Replace(good, `"invoiceId":"i"`, `"invoiceId":7`, 1),
		strings.Replace(good, `"overPaid":false`, `"overPaid":false,"amountPaid":"1"`, 1),
	} {
		if err := spec.ValidateWebhook("InvoiceSettled", []byte(bad)); err == nil {
			t.Errorf("%s passed", bad)
		}
	}
	created := `{"deliveryId":"d","type":"InvoiceCreated","timestamp":1,"storeId":"s","invoiceId":"i","metadata":{}}`
	if err := spec.ValidateWebhook("InvoiceCreated", []byte(created)); err != nil {
		t.Errorf("a good InvoiceCreated: %v", err)
	}
	if err := spec.ValidateWebhook("InvoiceCreated", []byte(strings.Replace(created, `"metadata":{}`, `"metadata":{},"overPaid":true`, 1))); err == nil {
		t.Error("an InvoiceCreated with a field of InvoiceSettled passed")
	}
	if err := spec.ValidateWebhook("NoSuchEvent", []byte(good)); err == nil {
		t.Error("an undocumented event passed")
	}
}

// Fragments are the published bytes (spec/ORIGIN.md has their sums).
func TestFragmentsAreTheCopiedOnes(t *testing.T) {
	origin, err := fragments.ReadFile("spec/swagger.template.json")
	if err != nil || !bytes.Contains(origin, []byte(`"BTCPay Greenfield API`)) {
		t.Errorf("base template: %v", err)
	}
}
