package btcpay

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// SignatureHeader is the header BTCPay signs webhook deliveries in.
const SignatureHeader = "BTCPay-Sig"

// WebhookEvents are the event types the store's webhook should send: every
// change of an invoice's status, and payments (to show PROCESSING early).
var WebhookEvents = []string{"InvoiceReceivedPayment", "InvoicePaymentSettled", "InvoiceProcessing",
	"InvoiceExpired", "InvoiceSettled", "InvoiceInvalid"}

// MaxWebhookBody bounds a webhook body; BTCPay's are a few KiB.
const MaxWebhookBody = 1 << 20

// Errors of the webhook checks. A handler answers 401 to ErrBadSignature and
// 400 to ErrBadWebhook, and changes nothing.
var (
	ErrBadSignature = errors.New("btcpay webhook: bad signature")
	ErrBadWebhook   = errors.New("btcpay webhook: bad body")
)

// Sign returns the BTCPay-Sig value for body: "sha256=" and the lowercase
// hex HMAC-SHA256 of body keyed with secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature checks header, the BTCPay-Sig value, against the raw
// body: exactly "sha256=" and 64 hex digits, equal (in constant time) to the
// HMAC-SHA256 of body keyed with secret. An empty secret verifies nothing.
func VerifySignature(secret string, body []byte, header string) error {
	if secret == "" {
		return fmt.Errorf("%w: no webhook secret configured", ErrBadSignature)
	}
	hexSum, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return fmt.Errorf("%w: header is not sha256=<hex>", ErrBadSignature)
	}
	if len(hexSum) != 2*sha256.Size {
		return fmt.Errorf("%w: want %d hex digits, got %d characters", ErrBadSignature, 2*sha256.Size, len(hexSum))
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil {
		return fmt.Errorf("%w: not hex", ErrBadSignature)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return fmt.Errorf("%w: mismatch", ErrBadSignature)
	}
	return nil
}

// Delivery is what a webhook body says, reduced to what is needed to look
// things up. It is never trusted for money: fetch the invoice.
type Delivery struct {
	DeliveryID         string
	OriginalDeliveryID string
	WebhookID          string
	IsRedelivery       bool
	Type               string
	// InvoiceID and StoreID are set for invoice events (Type "Invoice...").
	InvoiceID string
	StoreID   string
}

// DedupeKey identifies the event a delivery carries: a redelivery carries
// the same event as its original delivery.
func (d Delivery) DedupeKey() string {
	if d.OriginalDeliveryID != "" {
		return d.OriginalDeliveryID
	}
	return d.DeliveryID
}

// IsInvoiceEvent says whether the delivery is about an invoice.
func (d Delivery) IsInvoiceEvent() bool { return strings.HasPrefix(d.Type, "Invoice") }

// ParseWebhook reads a webhook body whose signature was verified. It needs
// a JSON object with a deliveryId and a type; invoice events also need an
// invoiceId and a storeId. Every other field is ignored.
func ParseWebhook(body []byte) (Delivery, error) {
	if len(body) > MaxWebhookBody {
		return Delivery{}, fmt.Errorf("%w: %d bytes", ErrBadWebhook, len(body))
	}
	var raw struct {
		DeliveryID         *string `json:"deliveryId"`
		OriginalDeliveryID *string `json:"originalDeliveryId"`
		WebhookID          *string `json:"webhookId"`
		IsRedelivery       *bool   `json:"isRedelivery"`
		Type               *string `json:"type"`
		InvoiceID          *string `json:"invoiceId"`
		StoreID            *string `json:"storeId"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return Delivery{}, fmt.Errorf("%w: %v", ErrBadWebhook, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Delivery{}, fmt.Errorf("%w: data after the object", ErrBadWebhook)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	d := Delivery{DeliveryID: str(raw.DeliveryID), OriginalDeliveryID: str(raw.OriginalDeliveryID),
		WebhookID: str(raw.WebhookID), Type: str(raw.Type), InvoiceID: str(raw.InvoiceID), StoreID: str(raw.StoreID)}
	if raw.IsRedelivery != nil {
		d.IsRedelivery = *raw.IsRedelivery
	}
	switch {
	case d.DeliveryID == "":
		return Delivery{}, fmt.Errorf("%w: no deliveryId", ErrBadWebhook)
	case d.Type == "":
		return Delivery{}, fmt.Errorf("%w: no type", ErrBadWebhook)
	case d.IsInvoiceEvent() && (d.InvoiceID == "" || d.StoreID == ""):
		return Delivery{}, fmt.Errorf("%w: %s without invoiceId or storeId", ErrBadWebhook, d.Type)
	case d.IsRedelivery && d.OriginalDeliveryID == "":
		return Delivery{}, fmt.Errorf("%w: a redelivery without originalDeliveryId", ErrBadWebhook)
	}
	if !d.IsRedelivery && d.OriginalDeliveryID == d.DeliveryID {
		d.OriginalDeliveryID = "" // BTCPay may name the first delivery its own original
	}
	return d, nil
}

// ReadWebhook reads a webhook request: the raw body (at most
// MaxWebhookBody), its one BTCPay-Sig header checked with the configured
// secret before anything is parsed, then the body. Errors match
// ErrBadSignature or ErrBadWebhook.
func (c *Client) ReadWebhook(r *http.Request) (Delivery, error) {
	return ReadWebhook(c.cfg.WebhookSecret, r)
}

// ReadWebhook is Client.ReadWebhook with the secret given.
func ReadWebhook(secret string, r *http.Request) (Delivery, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookBody+1))
	if err != nil {
		return Delivery{}, fmt.Errorf("%w: reading: %v", ErrBadWebhook, err)
	}
	if len(body) > MaxWebhookBody {
		return Delivery{}, fmt.Errorf("%w: over %d bytes", ErrBadWebhook, MaxWebhookBody)
	}
	sigs := r.Header.Values(SignatureHeader)
	if len(sigs) != 1 {
		return Delivery{}, fmt.Errorf("%w: %d %s headers", ErrBadSignature, len(sigs), SignatureHeader)
	}
	if err := VerifySignature(secret, body, sigs[0]); err != nil {
		return Delivery{}, err
	}
	return ParseWebhook(body)
}

// OfStore says whether an invoice event is about the store's invoices.
func (c *Client) OfStore(d Delivery) bool { return d.StoreID == c.cfg.StoreID }
