package api

import (
	"errors"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/upstream/btcpay"
)

// Webhooks reads BTCPay Server's webhook deliveries (*btcpay.Client).
type Webhooks interface {
	// ReadWebhook reads the raw body, checks its signature before parsing
	// anything, and parses it.
	ReadWebhook(r *http.Request) (btcpay.Delivery, error)
	// OfStore says whether an invoice event is about our store's invoices.
	OfStore(d btcpay.Delivery) bool
}

// btcpayWebhook handles POST /webhooks/btcpay. A delivery only says "look
// at this invoice": the invoice is read from BTCPay and the money rules
// decide (app.InvoiceChanged), so a forged, replayed or reordered body can
// move no money. Answers: 401 bad signature and 400 bad body (nothing
// changed), 200 once handled or ignored, 503 when BTCPay could not be read
// or the log written, so BTCPay delivers again.
func (s *Server) btcpayWebhook(c echo.Context) error {
	d, err := s.webhooks.ReadWebhook(c.Request())
	switch {
	case errors.Is(err, btcpay.ErrBadSignature):
		s.log.Warn("btcpay webhook refused", "err", err, "request_id", requestID(c), "ip", c.RealIP())
		return apiError(http.StatusUnauthorized, "bad_signature", "missing or wrong BTCPay-Sig")
	case err != nil:
		return apiError(http.StatusBadRequest, "bad_webhook", err.Error())
	}
	if !d.IsInvoiceEvent() || !s.webhooks.OfStore(d) {
		return c.JSON(http.StatusOK, map[string]any{"ok": true, "handled": false})
	}
	key := d.DedupeKey()
	if s.deliveries.seen(key) {
		return c.JSON(http.StatusOK, map[string]any{"ok": true, "handled": false})
	}
	m := eventstore.Metadata{RequestID: requestID(c), Actor: "btcpay:webhook", Causation: "btcpay-delivery:" + key}
	ours, err := s.app.InvoiceChanged(c.Request().Context(), d.InvoiceID, m)
	if err != nil {
		s.log.Warn("btcpay webhook not handled; BTCPay will deliver it again", "invoice", d.InvoiceID,
			"delivery", d.DeliveryID, "err", err, "request_id", requestID(c))
		return apiError(http.StatusServiceUnavailable, "unavailable", "could not handle the delivery now: deliver it again")
	}
	// Only a delivery handled completely is remembered: one that failed
	// midway is handled again in full when redelivered.
	s.deliveries.done(key)
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "handled": ours})
}

// deliveriesKept bounds the deliveries remembered. Forgetting one is
// harmless: handling a delivery again reads the invoice again and records
// nothing new (the money rules are idempotent, and a credit's ledger id
// derives from the invoice). Remembering only saves that work.
const deliveriesKept = 10000

// deliveries remembers the last handled webhook deliveries, by dedupe key.
type deliveries struct {
	mu   sync.Mutex
	keys map[string]bool
	ring []string
	next int
}

func newDeliveries(n int) *deliveries {
	return &deliveries{keys: make(map[string]bool, n), ring: make([]string, n)}
}

func (d *deliveries) seen(key string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.keys[key]
}

func (d *deliveries) done(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.keys[key] {
		return
	}
	if old := d.ring[d.next]; old != "" {
		delete(d.keys, old)
	}
	d.ring[d.next], d.keys[key] = key, true
	d.next = (d.next + 1) % len(d.ring)
}
