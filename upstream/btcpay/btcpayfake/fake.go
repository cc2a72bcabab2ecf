// Package btcpayfake is an in-process fake of a BTCPay Server store's
// Greenfield API, for tests: an httptest server that checks every request
// it receives and every answer it sends against BTCPay's published OpenAPI
// fragments (embedded from spec/, merged as BTCPay merges them), and fails
// the test on any mismatch.
//
// It implements what the payments adapter uses: create, get and list
// invoices (list filtered by orderId) and an invoice's payment methods.
// Tests drive the invoices' lives (Pay, Settle, Confirm, Expire, Mark,
// Advance), inject faults (Fail with a status, Stall until the client gives
// up, LoseAnswer after doing the work), and deliver the webhook events it
// records (Events, Send, SendWithHeader, Redelivery) to a URL, signed with
// the webhook secret (or not, or wrongly), in any order and any number of
// times. Every webhook body is checked against its x-webhooks schema.
//
// Answers to injected faults are the only ones not checked: a proxy's 502
// or a dropped connection is not in any API document.
package btcpayfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/cryptovps/cryptovps/domain"
)

// Operation ids of the Greenfield operations the fake serves.
const (
	OpCreateInvoice      = "Invoices_CreateInvoice"
	OpGetInvoice         = "Invoices_GetInvoice"
	OpListInvoices       = "Invoices_GetInvoices"
	OpGetPaymentMethods  = "Invoices_GetInvoicePaymentMethods"
	defaultExpiryMinutes = 15
)

// Options configures a fake store.
type Options struct {
	APIKey, StoreID, WebhookSecret string
	// Methods are the payment method ids the store offers (default
	// BTC-CHAIN and BTC-LN).
	Methods []string
	// Rates are USD prices per currency (default BTC 100000).
	Rates map[string]string
	// Start is the fake clock's start (default 2026-01-01 UTC).
	Start time.Time
}

// Server is a fake BTCPay store.
type Server struct {
	t    testing.TB
	spec *Spec
	srv  *httptest.Server
	opts Options
	done chan struct{}

	mu       sync.Mutex
	now      time.Time
	seq      int
	invoices map[string]*invoice
	order    []string
	faults   []fault
	calls    map[string]int
	events   []Event
}

type invoice struct {
	id, currency  string
	metadata      map[string]any
	amount        domain.Money
	created       time.Time
	expires       time.Time
	methods       []string
	payments      []payment
	late          bool
	marked        string
	status, extra string
}

type payment struct {
	id, method string
	usd        domain.Money
	confirmed  bool
	at         time.Time
}

type faultKind int

const (
	faultFail faultKind = iota
	faultStall
	faultLose
)

type fault struct {
	op     string
	kind   faultKind
	status int
	skip   int // matching requests to let through first
}

// Event is a webhook delivery the fake made (or would make): its body is
// what BTCPay would POST, signed with the webhook secret when sent.
type Event struct {
	DeliveryID, Type, InvoiceID string
	Body                        []byte
}

// loadSpecOnce loads the embedded document once per process: it never
// changes, and loading it takes a while under the race detector.
var loadSpecOnce = sync.OnceValues(LoadSpec)

// New starts a fake store, stopped when t ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	spec, err := loadSpecOnce()
	if err != nil {
		t.Fatalf("btcpayfake: %v", err)
	}
	if opts.APIKey == "" {
		opts.APIKey = "fake-api-key"
	}
	if opts.StoreID == "" {
		opts.StoreID = "FakeStore9CiNzKoANXxmk5ayZngSX"
	}
	if opts.WebhookSecret == "" {
		opts.WebhookSecret = "fake-webhook-secret"
	}
	if opts.Methods == nil {
		opts.Methods = []string{"BTC-CHAIN", "BTC-LN"}
	}
	if opts.Rates == nil {
		opts.Rates = map[string]string{"BTC": "100000.00"}
	}
	if opts.Start.IsZero() {
		opts.Start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	s := &Server{t: t, spec: spec, opts: opts, done: make(chan struct{}), now: opts.Start,
		invoices: map[string]*invoice{}, calls: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Close stops the server; stalled requests end.
func (s *Server) Close() {
	select {
	case <-s.done:
		return
	default:
	}
	close(s.done)
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// URL is the server's base URL.
func (s *Server) URL() string { return s.srv.URL }

// Options are the store's settings (key, store id, webhook secret...).
func (s *Server) Options() Options { return s.opts }

// Calls counts the requests received for an operation id (faults included).
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Fail makes the next n requests for op ("" for any) answer status.
func (s *Server) Fail(op string, n, status int) {
	s.addFault(op, n, fault{kind: faultFail, status: status})
}

// FailAfter lets the next skip requests for op ("" for any) through, then
// makes n answer status.
func (s *Server) FailAfter(op string, skip, n, status int) {
	s.addFault(op, n, fault{kind: faultFail, status: status, skip: skip})
}

// Stall makes the next n requests for op ("" for any) wait until the
// client gives up (or the server closes): a timeout.
func (s *Server) Stall(op string, n int) { s.addFault(op, n, fault{kind: faultStall}) }

// LoseAnswer makes the next n requests for op ("" for any) do their work
// and then drop the connection without answering.
func (s *Server) LoseAnswer(op string, n int) { s.addFault(op, n, fault{kind: faultLose}) }

func (s *Server) addFault(op string, n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.op = op
	for i := range n {
		if i > 0 {
			f.skip = 0 // only the first waits
		}
		s.faults = append(s.faults, f)
	}
}

// takeFault pops the first fault for op. Callers hold mu.
func (s *Server) takeFault(op string) (fault, bool) {
	for i, f := range s.faults {
		if f.op == "" || f.op == op {
			if f.skip > 0 {
				s.faults[i].skip--
				return fault{}, false
			}
			s.faults = slices.Delete(s.faults, i, i+1)
			return f, true
		}
	}
	return fault{}, false
}

// Now is the fake clock.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// Advance moves the fake clock (invoices past their expiry expire).
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(d)
	for _, id := range s.order {
		s.refresh(s.invoices[id])
	}
}

// InvoicesFor lists the ids of the invoices with metadata.orderId orderID.
func (s *Server) InvoicesFor(orderID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, id := range s.order {
		if s.invoices[id].metadata["orderId"] == orderID {
			ids = append(ids, id)
		}
	}
	return ids
}

// Status is an invoice's status and additional status.
func (s *Server) Status(id string) (status, additional string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := s.invoices[id]
	if inv == nil {
		return "", ""
	}
	return inv.status, inv.extra
}

// Pay records a payment of usd (in USD, converted at the rate) with the
// invoice's first method, confirmed or not.
func (s *Server) Pay(id string, usd domain.Money, confirmed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := s.mustInvoice(id)
	if inv == nil {
		return
	}
	if inv.marked != "" {
		s.t.Errorf("btcpayfake: paying invoice %s marked %s", id, inv.marked)
		return
	}
	s.pay(inv, usd, confirmed)
}

// Settle pays what is due, confirmed.
func (s *Server) Settle(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := s.mustInvoice(id)
	if inv == nil {
		return
	}
	due := inv.amount.Sub(inv.paid())
	if due.Sign() <= 0 {
		s.confirm(inv)
		return
	}
	s.pay(inv, due, true)
}

// Confirm confirms every payment of the invoice.
func (s *Server) Confirm(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inv := s.mustInvoice(id); inv != nil {
		s.confirm(inv)
	}
}

// Expire ends the invoice's offer now.
func (s *Server) Expire(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inv := s.mustInvoice(id); inv != nil {
		if inv.expires.After(s.now) {
			inv.expires = s.now
		}
		s.refresh(inv)
	}
}

// Mark marks the invoice Settled or Invalid by hand, as a store owner can.
func (s *Server) Mark(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv := s.mustInvoice(id)
	if inv == nil {
		return
	}
	if status != "Settled" && status != "Invalid" {
		s.t.Errorf("btcpayfake: cannot mark %s", status)
		return
	}
	inv.marked = status
	s.refresh(inv)
}

func (s *Server) mustInvoice(id string) *invoice {
	inv := s.invoices[id]
	if inv == nil {
		s.t.Errorf("btcpayfake: no invoice %q", id)
	}
	return inv
}

func (s *Server) pay(inv *invoice, usd domain.Money, confirmed bool) {
	s.seq++
	p := payment{id: fmt.Sprintf("fakepay%04d", s.seq), method: inv.methods[0], usd: usd, confirmed: confirmed, at: s.now}
	wasFull := inv.paid().Cmp(inv.amount) >= 0
	inv.payments = append(inv.payments, p)
	expired := !s.now.Before(inv.expires)
	if !wasFull && inv.paid().Cmp(inv.amount) >= 0 && expired {
		inv.late = true
	}
	s.event(inv, "InvoiceReceivedPayment", map[string]any{"afterExpiration": expired,
		"paymentMethodId": p.method, "payment": s.paymentJSON(inv, p)})
	if confirmed {
		s.event(inv, "InvoicePaymentSettled", map[string]any{"afterExpiration": expired,
			"paymentMethodId": p.method, "payment": s.paymentJSON(inv, p)})
	}
	s.refresh(inv)
}

func (s *Server) confirm(inv *invoice) {
	for i := range inv.payments {
		if p := &inv.payments[i]; !p.confirmed {
			p.confirmed = true
			s.event(inv, "InvoicePaymentSettled", map[string]any{"afterExpiration": !p.at.Before(inv.expires),
				"paymentMethodId": p.method, "payment": s.paymentJSON(inv, *p)})
		}
	}
	s.refresh(inv)
}

func (inv *invoice) paid() domain.Money {
	sum := domain.Zero()
	for _, p := range inv.payments {
		sum = sum.Add(p.usd)
	}
	return sum
}

func (inv *invoice) confirmed() bool {
	for _, p := range inv.payments {
		if !p.confirmed {
			return false
		}
	}
	return true
}

// refresh recomputes the invoice's status as BTCPay would, and records the
// webhook event of a change. Callers hold mu.
func (s *Server) refresh(inv *invoice) {
	paid := inv.paid()
	full, some, expired := paid.Cmp(inv.amount) >= 0, paid.Sign() > 0, !s.now.Before(inv.expires)
	status, extra := "New", "None"
	switch {
	case inv.marked != "":
		status, extra = inv.marked, "Marked"
	case inv.late:
		status, extra = "Expired", "PaidLate"
	case full:
		status = "Processing"
		if inv.confirmed() {
			status = "Settled"
		}
		if paid.Cmp(inv.amount) > 0 {
			extra = "PaidOver"
		}
	case expired:
		status = "Expired"
		if some {
			extra = "PaidPartial"
		}
	case some:
		extra = "PaidPartial"
	}
	old := inv.status
	inv.status, inv.extra = status, extra
	if status == old {
		return
	}
	switch status {
	case "Processing":
		s.event(inv, "InvoiceProcessing", map[string]any{"overPaid": extra == "PaidOver"})
	case "Settled":
		s.event(inv, "InvoiceSettled", map[string]any{"manuallyMarked": extra == "Marked", "overPaid": extra == "PaidOver"})
	case "Expired":
		s.event(inv, "InvoiceExpired", map[string]any{"partiallyPaid": some})
	case "Invalid":
		s.event(inv, "InvoiceInvalid", map[string]any{"manuallyMarked": extra == "Marked"})
	}
}

// event records a webhook delivery. Callers hold mu.
func (s *Server) event(inv *invoice, typ string, extra map[string]any) {
	s.seq++
	id := fmt.Sprintf("FakeDlv%06d", s.seq)
	body := map[string]any{"deliveryId": id, "webhookId": "FakeHook1", "originalDeliveryId": id,
		"isRedelivery": false, "type": typ, "timestamp": s.now.Unix(), "storeId": s.opts.StoreID,
		"invoiceId": inv.id, "metadata": inv.metadata}
	for k, v := range extra {
		body[k] = v
	}
	data, err := json.Marshal(body)
	if err != nil {
		s.t.Errorf("btcpayfake: %v", err)
		return
	}
	if err := s.spec.ValidateWebhook(typ, data); err != nil {
		s.t.Errorf("btcpayfake: webhook %s does not match its schema: %v\n%s", typ, err, data)
	}
	s.events = append(s.events, Event{DeliveryID: id, Type: typ, InvoiceID: inv.id, Body: data})
}

// Events lists the webhook deliveries so far, oldest first.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// Redelivery is ev delivered again: a new delivery id, isRedelivery true
// and originalDeliveryId the first delivery's, as BTCPay's redeliver does.
func (s *Server) Redelivery(ev Event) Event {
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("FakeDlv%06d", s.seq)
	s.mu.Unlock()
	var body map[string]any
	if err := json.Unmarshal(ev.Body, &body); err != nil {
		s.t.Errorf("btcpayfake: %v", err)
		return ev
	}
	body["deliveryId"], body["isRedelivery"] = id, true
	if _, ok := body["originalDeliveryId"]; !ok {
		body["originalDeliveryId"] = ev.DeliveryID
	}
	data, _ := json.Marshal(body)
	if err := s.spec.ValidateWebhook(ev.Type, data); err != nil {
		s.t.Errorf("btcpayfake: redelivered webhook %s does not match its schema: %v", ev.Type, err)
	}
	return Event{DeliveryID: id, Type: ev.Type, InvoiceID: ev.InvoiceID, Body: data}
}

// Signature is the BTCPay-Sig header for body with the store's secret.
func (s *Server) Signature(body []byte) string {
	mac := hmac.New(sha256.New, []byte(s.opts.WebhookSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Send POSTs ev to url, signed, and returns the answer's status.
func (s *Server) Send(ctx context.Context, url string, ev Event) (int, error) {
	return s.SendWithHeader(ctx, url, ev, s.Signature(ev.Body))
}

// SendWithHeader POSTs ev to url with sig as BTCPay-Sig (none if empty).
func (s *Server) SendWithHeader(ctx context.Context, url string, ev Event, sig string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(ev.Body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "BTCPayServer")
	if sig != "" {
		req.Header.Set("BTCPay-Sig", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// serve answers one Greenfield request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) == 0 {
		body = nil
	}
	authErr := errors.New("no valid API key")
	x, reqErr := s.spec.checkRequest(r, body, func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
		if in.RequestValidationInput.Request.Header.Get("Authorization") != "token "+s.opts.APIKey {
			return authErr
		}
		return nil
	})
	if x == nil {
		s.t.Errorf("btcpayfake: %v", reqErr)
		s.write(w, nil, http.StatusNotFound, problem("not-found", "no such route"))
		return
	}
	op := x.operation()
	s.mu.Lock()
	s.calls[op]++
	f, faulty := s.takeFault(op)
	s.mu.Unlock()

	var secErr *openapi3filter.SecurityRequirementsError
	switch {
	case errors.As(reqErr, &secErr) || (reqErr != nil && errors.Is(reqErr, authErr)):
		status := http.StatusForbidden // documented for every operation we serve
		if op == OpListInvoices {
			status = http.StatusUnauthorized
		}
		s.write(w, x, status, problem("unauthenticated", "Authentication is required for accessing this endpoint"))
		return
	case reqErr != nil:
		s.t.Errorf("btcpayfake: %s %s: the request does not match the Greenfield document: %v\n  body: %s",
			r.Method, r.URL.RequestURI(), reqErr, body)
		s.write(w, x, http.StatusBadRequest, []byte(`[{"path":"","message":"invalid request"}]`))
		return
	}
	if faulty {
		switch f.kind {
		case faultFail:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.status)
			_, _ = w.Write(problem("fault", "injected failure"))
			return
		case faultStall:
			select {
			case <-r.Context().Done():
			case <-s.done:
			}
			return
		}
	}
	status, out := s.dispatch(op, x, r, body)
	if faulty && f.kind == faultLose {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		s.t.Errorf("btcpayfake: cannot drop the connection")
		return
	}
	s.write(w, x, status, out)
}

// write sends an answer after checking it against the document.
func (s *Server) write(w http.ResponseWriter, x *exchange, status int, body []byte) {
	h := http.Header{}
	if body != nil {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	if x != nil {
		if err := x.checkResponse(status, h, body); err != nil {
			s.t.Errorf("btcpayfake: %s answer %d does not match the Greenfield document: %v\n  body: %s",
				x.operation(), status, err, body)
		}
	}
	for k, v := range h {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func problem(code, msg string) []byte {
	b, _ := json.Marshal(map[string]string{"code": code, "message": msg})
	return b
}

func (s *Server) dispatch(op string, x *exchange, r *http.Request, body []byte) (int, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	params := x.in.PathParams
	if store, ok := params["storeId"]; ok && store != s.opts.StoreID {
		return http.StatusForbidden, problem("forbidden", "no such store for this key")
	}
	switch op {
	case OpCreateInvoice:
		return s.create(body)
	case OpListInvoices:
		return s.list(r)
	case OpGetInvoice, OpGetPaymentMethods:
		inv := s.invoices[params["invoiceId"]]
		if inv == nil {
			return http.StatusNotFound, problem("invoice-not-found", "The invoice could not be found")
		}
		s.refresh(inv)
		if op == OpGetInvoice {
			return http.StatusOK, s.marshal(s.invoiceJSON(inv, false))
		}
		return http.StatusOK, s.marshal(s.methodsJSON(inv))
	}
	s.t.Errorf("btcpayfake: operation %s is not implemented", op)
	return http.StatusNotFound, problem("not-implemented", op)
}

func (s *Server) marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		s.t.Errorf("btcpayfake: %v", err)
	}
	return b
}

func (s *Server) create(body []byte) (int, []byte) {
	var req struct {
		Amount   *string        `json:"amount"`
		Currency *string        `json:"currency"`
		Metadata map[string]any `json:"metadata"`
		Checkout *struct {
			ExpirationMinutes *float64 `json:"expirationMinutes"`
			PaymentMethods    []string `json:"paymentMethods"`
		} `json:"checkout"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, []byte(`[{"path":"","message":"invalid json"}]`)
	}
	if req.Amount == nil {
		return http.StatusBadRequest, []byte(`[{"path":"amount","message":"the fake does not do top-up invoices"}]`)
	}
	amount, err := domain.ParseMoney(*req.Amount)
	if err != nil || amount.Sign() <= 0 {
		return http.StatusBadRequest, []byte(`[{"path":"amount","message":"amount must be positive"}]`)
	}
	currency := "USD"
	if req.Currency != nil && *req.Currency != "" {
		currency = strings.ToUpper(*req.Currency)
	}
	minutes := float64(defaultExpiryMinutes)
	methods := slices.Clone(s.opts.Methods)
	if req.Checkout != nil {
		if req.Checkout.ExpirationMinutes != nil {
			minutes = *req.Checkout.ExpirationMinutes
		}
		if len(req.Checkout.PaymentMethods) > 0 {
			methods = slices.DeleteFunc(methods, func(m string) bool { return !slices.Contains(req.Checkout.PaymentMethods, m) })
		}
	}
	if len(methods) == 0 {
		return http.StatusBadRequest, []byte(`[{"path":"checkout.paymentMethods","message":"No payment method available for this store"}]`)
	}
	if req.Metadata == nil {
		req.Metadata = map[string]any{}
	}
	s.seq++
	inv := &invoice{id: fmt.Sprintf("FakeInv%06d", s.seq), currency: currency, metadata: req.Metadata,
		amount: amount, created: s.now, expires: s.now.Add(time.Duration(minutes * float64(time.Minute))),
		methods: methods, status: "New", extra: "None"}
	s.invoices[inv.id] = inv
	s.order = append(s.order, inv.id)
	s.event(inv, "InvoiceCreated", nil)
	return http.StatusOK, s.marshal(s.invoiceJSON(inv, false))
}

func (s *Server) list(r *http.Request) (int, []byte) {
	q := r.URL.Query()
	orderIDs := q["orderId"]
	withMethods, _ := strconv.ParseBool(q.Get("includePaymentMethods"))
	take := -1
	if t := q.Get("take"); t != "" {
		f, _ := strconv.ParseFloat(t, 64)
		take = int(f)
	}
	out := []map[string]any{}
	// Newest first, as BTCPay lists.
	for i := len(s.order) - 1; i >= 0; i-- {
		inv := s.invoices[s.order[i]]
		if len(orderIDs) > 0 {
			oid, _ := inv.metadata["orderId"].(string)
			if !slices.Contains(orderIDs, oid) {
				continue
			}
		}
		if take >= 0 && len(out) >= take {
			break
		}
		s.refresh(inv)
		out = append(out, s.invoiceJSON(inv, withMethods))
	}
	return http.StatusOK, s.marshal(out)
}

func (s *Server) invoiceJSON(inv *invoice, withMethods bool) map[string]any {
	marking := []string{}
	if inv.status != "Settled" {
		marking = append(marking, "Settled")
	}
	if inv.status != "Invalid" {
		marking = append(marking, "Invalid")
	}
	out := map[string]any{
		"id": inv.id, "storeId": s.opts.StoreID, "amount": inv.amount.String(), "paidAmount": inv.paid().Fixed(2),
		"currency": inv.currency, "type": "Standard", "checkoutLink": s.srv.URL + "/i/" + inv.id,
		"createdTime": inv.created.Unix(), "expirationTime": inv.expires.Unix(),
		"monitoringExpiration": inv.expires.Add(24 * time.Hour).Unix(),
		"status":               inv.status, "additionalStatus": inv.extra, "availableStatusesForManualMarking": marking,
		"archived": false, "metadata": inv.metadata,
		"checkout": map[string]any{"speedPolicy": "MediumSpeed", "paymentMethods": inv.methods,
			"defaultPaymentMethod": inv.methods[0], "lazyPaymentMethods": false,
			"expirationMinutes": int(inv.expires.Sub(inv.created) / time.Minute), "monitoringMinutes": 1440,
			"paymentTolerance": 0, "redirectAutomatically": false},
		"receipt": map[string]any{"enabled": true, "showQR": nil, "showPayments": nil},
	}
	if withMethods {
		out["paymentMethods"] = s.methodsJSON(inv)
	}
	return out
}

func (s *Server) methodsJSON(inv *invoice) []map[string]any {
	out := []map[string]any{}
	paid := inv.paid()
	for _, m := range inv.methods {
		cur, kind, _ := strings.Cut(m, "-")
		rate := s.rate(cur)
		mine := domain.Zero()
		payments := []map[string]any{}
		for _, p := range inv.payments {
			if p.method == m {
				mine = mine.Add(p.usd)
				payments = append(payments, s.paymentJSON(inv, p))
			}
		}
		sum := sha256.Sum256([]byte(m + inv.id))
		dest := "bcrt1q" + hex.EncodeToString(sum[:])[:38]
		link := "bitcoin:" + dest + "?amount=" + toCrypto(inv.amount.Sub(paid), rate)
		if kind == "LN" {
			dest = "lnbcrt" + hex.EncodeToString(sum[:])
			link = "lightning:" + dest
		}
		out = append(out, map[string]any{
			"paymentMethodId": m, "currency": cur, "destination": dest, "paymentLink": link,
			"rate": rate.String(), "paymentMethodPaid": toCrypto(mine, rate), "totalPaid": toCrypto(paid, rate),
			"due": toCrypto(inv.amount.Sub(paid), rate), "amount": toCrypto(inv.amount, rate),
			"paymentMethodFee": "0", "payments": payments, "activated": true, "additionalData": map[string]any{},
		})
	}
	return out
}

func (s *Server) paymentJSON(inv *invoice, p payment) map[string]any {
	cur, _, _ := strings.Cut(p.method, "-")
	status := "Processing"
	if p.confirmed {
		status = "Settled"
	}
	sum := sha256.Sum256([]byte(p.method + inv.id))
	return map[string]any{"id": p.id, "receivedDate": p.at.Unix(), "value": toCrypto(p.usd, s.rate(cur)),
		"fee": "0", "status": status, "destination": "bcrt1q" + hex.EncodeToString(sum[:])[:38]}
}

func (s *Server) rate(cur string) domain.Money {
	if r, ok := s.opts.Rates[cur]; ok {
		return domain.MustMoney(r)
	}
	return domain.MustMoney("1.00")
}

// toCrypto converts usd at rate, to 8 decimals.
func toCrypto(usd, rate domain.Money) string {
	c := apd.BaseContext.WithPrecision(34)
	c.Rounding = apd.RoundHalfUp
	var q, r apd.Decimal
	_, _ = c.Quo(&q, usd.Decimal(), rate.Decimal())
	_, _ = c.Quantize(&r, &q, -8)
	return r.Text('f')
}
