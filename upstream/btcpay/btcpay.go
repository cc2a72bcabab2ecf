// Package btcpay is the payments adapter for BTCPay Server: a client of its
// Greenfield API v1 (net/http, no SDK) implementing domain.Payments, and the
// checks for its webhooks.
//
// # Invoices
//
// A top-up is one Greenfield invoice, created in USD in our store with
// metadata.orderId = the top-up id and metadata.cryptovpsAccountId = the
// account id, an expiry of Config.InvoiceExpiry (bounded, 15 minutes by
// default), no payment tolerance and every payment method activated at once
// (lazyPaymentMethods false), so the answer carries each method's
// destination, crypto amount and rate. OpenInvoice first looks the top-up's
// invoice up by orderId and only creates one when there is none; when a
// creation's answer is lost (timeout, broken connection, 5xx) it looks
// again, so a lost answer never makes two invoices. Only GETs are retried
// (with backoff); every attempt has a timeout. The API key is sent as
// "Authorization: token <key>" and never logged.
//
// BTCPay cannot tell which payment methods a store offers without creating
// an invoice (the store endpoints are outside the API fragments we
// validate against), so a request for one method creates the invoice with
// every method and answers with that method only, or with a
// *domain.MethodNotOfferedError naming the methods offered; the invoice
// created for a refused method just expires unpaid.
//
// # Money rules
//
// What an invoice's state means for its top-up is decided in one place,
// domain.DecideTopup, for every processor. In short: Settled credits the
// invoice amount (never what the webhook body says, never what was paid:
// overpayment credits the invoice amount and flags the excess for operator
// review); Processing is PROCESSING; Expired is EXPIRED and Invalid INVALID,
// with no credit. Not credited automatically, and flagged "needs operator
// review": a partial payment (the invoice expires PaidPartial), a payment
// after expiry (PaidLate: the crypto amount was priced at an expired rate),
// an invoice marked settled by hand in BTCPay (Marked: no payment we can
// see), and any settled invoice whose amount, currency or order id does not
// match its top-up.
//
// # Webhooks
//
// A webhook only says "look at this invoice". Handle one as: read the raw
// body (bounded, MaxWebhookBody), VerifySignature (HMAC-SHA256 with the
// webhook secret, constant-time) before parsing anything, answer 401 on
// failure; ParseWebhook; skip a delivery already handled (Delivery.DedupeKey);
// for an invoice event of our store, fetch the invoice (Client.Invoice) and
// let domain.DecideTopup decide; mark the delivery handled only after that
// succeeded. Client.ReadWebhook does the first steps on an *http.Request.
// Answer 2xx once handled (or ignored), 5xx when BTCPay could not be read, so
// BTCPay delivers again. The store's webhook should send WebhookEvents.
//
// Webhooks get lost, so a reconcile loop re-reads (Client.Invoice) the
// invoices of top-ups still pending or processing, every minute or so, until
// their status is final; BTCPay keeps watching an expired invoice for late
// payments for a day (monitoringMinutes), so keep re-reading expired ones,
// less often, for that long. Decisions are idempotent: the credit's ledger
// transaction id derives from the invoice id.
package btcpay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/cryptovps/cryptovps/domain"
)

// Defaults for the zero fields of Config.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultRetries       = 2
	DefaultBackoff       = 250 * time.Millisecond
	DefaultInvoiceExpiry = 15 * time.Minute
	// MaxInvoiceExpiry bounds Config.InvoiceExpiry: a longer offer would
	// price crypto at a stale rate.
	MaxInvoiceExpiry = 24 * time.Hour
	// maxResponse bounds what is read of an answer.
	maxResponse = 4 << 20
)

// MetadataAccountID is the invoice metadata key holding our account id.
const MetadataAccountID = "cryptovpsAccountId"

// Config is how to reach a BTCPay store.
type Config struct {
	// URL is the server's base URL; the Greenfield paths (/api/v1/...) sit
	// below it.
	URL string
	// APIKey needs the permissions btcpay.store.cancreateinvoice and
	// btcpay.store.canviewinvoices on the store.
	APIKey string
	// StoreID is the store the invoices are created in.
	StoreID string
	// WebhookSecret is the secret of the store's webhook (used by
	// ReadWebhook).
	WebhookSecret string
	// Timeout bounds each HTTP attempt (DefaultTimeout if zero).
	Timeout time.Duration
	// Retries is how many times a failed GET is tried again (DefaultRetries
	// if zero; negative for none); Backoff the first wait between attempts,
	// doubling (DefaultBackoff if zero).
	Retries int
	Backoff time.Duration
	// InvoiceExpiry is how long an invoice can be paid, rounded up to whole
	// minutes (DefaultInvoiceExpiry if zero, at most MaxInvoiceExpiry).
	InvoiceExpiry time.Duration
	// HTTPClient sends the requests (a plain client if nil). Its own
	// Timeout, if any, also applies.
	HTTPClient *http.Client
}

// LogValue keeps the secrets out of logs.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", c.URL), slog.String("store", c.StoreID),
		slog.Duration("timeout", c.Timeout), slog.Duration("invoiceExpiry", c.InvoiceExpiry))
}

// Client talks to one BTCPay store. It is safe for concurrent use.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client
	log  *slog.Logger
}

var _ domain.Payments = (*Client)(nil)

// New checks cfg and returns a client; it makes no call (see Check).
func New(cfg Config, log *slog.Logger) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("btcpay: URL %q is not an http(s) URL", cfg.URL)
	}
	if base.RawQuery != "" || base.Fragment != "" || base.User != nil {
		return nil, fmt.Errorf("btcpay: URL %q must not carry a query, fragment or user", base.Redacted())
	}
	switch {
	case strings.TrimSpace(cfg.APIKey) == "":
		return nil, errors.New("btcpay: no API key")
	case strings.TrimSpace(cfg.StoreID) == "":
		return nil, errors.New("btcpay: no store id")
	case cfg.InvoiceExpiry < 0 || cfg.InvoiceExpiry > MaxInvoiceExpiry:
		return nil, fmt.Errorf("btcpay: invoice expiry %v is not within (0, %v]", cfg.InvoiceExpiry, MaxInvoiceExpiry)
	case cfg.Timeout < 0 || cfg.Backoff < 0:
		return nil, errors.New("btcpay: negative timeout or backoff")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Retries == 0 {
		cfg.Retries = DefaultRetries
	} else if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.InvoiceExpiry == 0 {
		cfg.InvoiceExpiry = DefaultInvoiceExpiry
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, base: base, http: hc, log: log.With("component", "btcpay")}, nil
}

// StatusError is an answer with an unexpected HTTP status.
type StatusError struct {
	Method, Path string
	Status       int
	// Code and Message are BTCPay's ProblemDetails, when it sent one.
	Code, Message string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("btcpay: %s %s: HTTP %d", e.Method, e.Path, e.Status)
	if e.Code != "" || e.Message != "" {
		msg += fmt.Sprintf(" (%s: %s)", e.Code, e.Message)
	}
	return msg
}

// Unwrap classifies the status: ErrPaymentsCredentials for 401 and 403,
// ErrPaymentsUnavailable for 408, 429 and 5xx.
func (e *StatusError) Unwrap() error {
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return domain.ErrPaymentsCredentials
	case e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500:
		return domain.ErrPaymentsUnavailable
	}
	return nil
}

// Check lists at most one invoice of the store: it fails with
// ErrPaymentsCredentials if the key is refused or cannot see the store's
// invoices (or the store does not exist).
func (c *Client) Check(ctx context.Context) error {
	q := url.Values{"take": {"1"}}
	var list []invoiceData
	err := c.do(ctx, http.MethodGet, "/api/v1/stores/"+url.PathEscape(c.cfg.StoreID)+"/invoices", q, nil, &list)
	var se *StatusError
	if errors.As(err, &se) && se.Status == http.StatusNotFound {
		return fmt.Errorf("btcpay: store %q not found: %w (%w)", c.cfg.StoreID, domain.ErrPaymentsCredentials, err)
	}
	return err
}

// OpenInvoice returns the top-up's invoice: the one BTCPay has for
// req.TopupID, or a new one.
func (c *Client) OpenInvoice(ctx context.Context, req domain.InvoiceRequest) (domain.Invoice, error) {
	if req.TopupID == "" {
		return domain.Invoice{}, fmt.Errorf("btcpay: no top-up id: %w", domain.ErrInvalid)
	}
	if req.Amount.Sign() <= 0 {
		return domain.Invoice{}, fmt.Errorf("btcpay: amount %s: %w", req.Amount, domain.ErrInvalid)
	}
	inv, err := c.FindInvoice(ctx, req.TopupID)
	switch {
	case errors.Is(err, domain.ErrInvoiceNotFound):
		inv, err = c.create(ctx, req)
	case err != nil:
		return domain.Invoice{}, err
	}
	if err != nil {
		return domain.Invoice{}, err
	}
	if inv.Amount.Cmp(req.Amount) != 0 || inv.Currency != "USD" {
		return domain.Invoice{}, fmt.Errorf("btcpay: top-up %s already has invoice %s for %s %s, not %s USD: %w",
			req.TopupID, inv.Ref, inv.Amount, inv.Currency, req.Amount, domain.ErrInvalid)
	}
	return filterMethod(inv, req.Method)
}

// filterMethod keeps the one method asked for, or refuses.
func filterMethod(inv domain.Invoice, method string) (domain.Invoice, error) {
	want := domain.PaymentMethodID(method)
	if want == "" {
		return inv, nil
	}
	var offered []string
	for _, m := range inv.Methods {
		if domain.PaymentMethodID(m.ID) == want {
			inv.Methods = []domain.PaymentMethod{m}
			inv.PayAddress = m.Destination
			return inv, nil
		}
		offered = append(offered, m.ID)
	}
	return domain.Invoice{}, &domain.MethodNotOfferedError{Requested: method, Offered: offered}
}

// create posts a new invoice. Its answer can be lost after BTCPay made the
// invoice, so on an error that leaves that open it looks for it by orderId.
func (c *Client) create(ctx context.Context, req domain.InvoiceRequest) (domain.Invoice, error) {
	minutes := int(math.Ceil(c.cfg.InvoiceExpiry.Minutes()))
	body := createInvoiceRequest{
		Amount:   req.Amount.Fixed(2),
		Currency: "USD",
		Metadata: map[string]string{"orderId": req.TopupID, MetadataAccountID: req.AccountID,
			"itemDesc": "CryptoVPS top-up"},
		Checkout: &checkoutOptions{ExpirationMinutes: minutes, PaymentTolerance: 0, LazyPaymentMethods: false},
	}
	var data invoiceData
	err := c.do(ctx, http.MethodPost, "/api/v1/stores/"+url.PathEscape(c.cfg.StoreID)+"/invoices", nil, body, &data)
	if err != nil {
		if !ambiguous(err) || ctx.Err() != nil {
			return domain.Invoice{}, err
		}
		c.log.WarnContext(ctx, "invoice creation answer lost; looking it up", "topup", req.TopupID, "err", err)
		inv, ferr := c.FindInvoice(ctx, req.TopupID)
		if ferr != nil {
			return domain.Invoice{}, fmt.Errorf("%w (and looking it up: %w)", err, ferr)
		}
		return inv, nil
	}
	methods, err := c.paymentMethods(ctx, data.ID)
	if err != nil {
		return domain.Invoice{}, err
	}
	data.PaymentMethods = methods
	return c.toInvoice(data)
}

// ambiguous says whether a failed creation may have created the invoice:
// anything but a definite refusal (a 4xx other than 408).
func ambiguous(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status >= 500 || se.Status == http.StatusRequestTimeout
	}
	return true
}

// Invoice fetches an invoice of our store by id.
func (c *Client) Invoice(ctx context.Context, ref string) (domain.Invoice, error) {
	if ref == "" || strings.ContainsAny(ref, "/?#") {
		return domain.Invoice{}, fmt.Errorf("btcpay: invoice id %q: %w", ref, domain.ErrInvoiceNotFound)
	}
	var data invoiceData
	err := c.do(ctx, http.MethodGet, "/api/v1/invoices/"+url.PathEscape(ref), nil, nil, &data)
	if err != nil {
		return domain.Invoice{}, notFound(err, ref)
	}
	if data.StoreID != c.cfg.StoreID {
		// The key may see other stores; their invoices are none of ours.
		return domain.Invoice{}, fmt.Errorf("btcpay: invoice %s belongs to store %q: %w", ref, data.StoreID, domain.ErrInvoiceNotFound)
	}
	methods, err := c.paymentMethods(ctx, data.ID)
	if err != nil {
		return domain.Invoice{}, notFound(err, ref)
	}
	data.PaymentMethods = methods
	return c.toInvoice(data)
}

func notFound(err error, ref string) error {
	var se *StatusError
	if errors.As(err, &se) && se.Status == http.StatusNotFound {
		return fmt.Errorf("btcpay: invoice %s: %w", ref, domain.ErrInvoiceNotFound)
	}
	return err
}

// FindInvoice lists the store's invoices with orderId = topupID and returns
// the first created.
func (c *Client) FindInvoice(ctx context.Context, topupID string) (domain.Invoice, error) {
	if topupID == "" {
		return domain.Invoice{}, fmt.Errorf("btcpay: no top-up id: %w", domain.ErrInvoiceNotFound)
	}
	q := url.Values{"orderId": {topupID}, "includePaymentMethods": {"true"}}
	var list []invoiceData
	if err := c.do(ctx, http.MethodGet, "/api/v1/stores/"+url.PathEscape(c.cfg.StoreID)+"/invoices", q, nil, &list); err != nil {
		return domain.Invoice{}, err
	}
	var found *invoiceData
	for i := range list {
		d := &list[i]
		if d.Metadata.OrderID != topupID || (d.StoreID != "" && d.StoreID != c.cfg.StoreID) {
			continue // BTCPay filters already; be sure.
		}
		if found == nil || d.CreatedTime < found.CreatedTime ||
			(d.CreatedTime == found.CreatedTime && d.ID < found.ID) {
			found = d
		}
	}
	if found == nil {
		return domain.Invoice{}, fmt.Errorf("btcpay: top-up %s: %w", topupID, domain.ErrInvoiceNotFound)
	}
	if found.PaymentMethods == nil {
		methods, err := c.paymentMethods(ctx, found.ID)
		if err != nil {
			return domain.Invoice{}, err
		}
		found.PaymentMethods = methods
	}
	return c.toInvoice(*found)
}

func (c *Client) paymentMethods(ctx context.Context, id string) ([]paymentMethodData, error) {
	var methods []paymentMethodData
	err := c.do(ctx, http.MethodGet, "/api/v1/invoices/"+url.PathEscape(id)+"/payment-methods", nil, nil, &methods)
	if methods == nil && err == nil {
		methods = []paymentMethodData{}
	}
	return methods, err
}

// Greenfield bodies: only the fields we use.

type createInvoiceRequest struct {
	Amount   string            `json:"amount"`
	Currency string            `json:"currency"`
	Metadata map[string]string `json:"metadata"`
	Checkout *checkoutOptions  `json:"checkout"`
}

type checkoutOptions struct {
	ExpirationMinutes  int  `json:"expirationMinutes"`
	PaymentTolerance   int  `json:"paymentTolerance"`
	LazyPaymentMethods bool `json:"lazyPaymentMethods"`
}

type invoiceData struct {
	ID               string              `json:"id"`
	StoreID          string              `json:"storeId"`
	Amount           string              `json:"amount"`
	PaidAmount       string              `json:"paidAmount"`
	Currency         string              `json:"currency"`
	CheckoutLink     string              `json:"checkoutLink"`
	CreatedTime      unixTime            `json:"createdTime"`
	ExpirationTime   unixTime            `json:"expirationTime"`
	Status           string              `json:"status"`
	AdditionalStatus string              `json:"additionalStatus"`
	Metadata         metadata            `json:"metadata"`
	PaymentMethods   []paymentMethodData `json:"paymentMethods"`
}

type metadata struct {
	OrderID   string `json:"orderId"`
	AccountID string `json:"cryptovpsAccountId"`
}

// UnmarshalJSON reads the two string fields we use and ignores the rest
// (metadata is free-form: a non-string orderId is no order id of ours).
func (m *metadata) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	_ = json.Unmarshal(raw["orderId"], &m.OrderID)
	_ = json.Unmarshal(raw[MetadataAccountID], &m.AccountID)
	return nil
}

type paymentMethodData struct {
	PaymentMethodID string `json:"paymentMethodId"`
	Currency        string `json:"currency"`
	Destination     string `json:"destination"`
	PaymentLink     string `json:"paymentLink"`
	Rate            string `json:"rate"`
	TotalPaid       string `json:"totalPaid"`
	Due             string `json:"due"`
	Amount          string `json:"amount"`
	Activated       *bool  `json:"activated"`
}

// unixTime is a UnixTimestamp: a JSON number of seconds.
type unixTime int64

func (u *unixTime) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 || f > 1<<40 {
		return fmt.Errorf("unix timestamp %s: not a time", b)
	}
	*u = unixTime(f)
	return nil
}

func (u unixTime) time() time.Time {
	if u == 0 {
		return time.Time{}
	}
	return time.Unix(int64(u), 0).UTC()
}

var statuses = []domain.InvoiceStatus{domain.InvoiceNew, domain.InvoiceProcessing, domain.InvoiceExpired,
	domain.InvoiceInvalid, domain.InvoiceSettled}

var exceptions = []domain.InvoiceException{domain.ExceptionNone, domain.ExceptionPaidLate, domain.ExceptionPaidPartial,
	domain.ExceptionMarked, domain.ExceptionInvalid, domain.ExceptionPaidOver}

// errDecode marks an answer we could not read.
var errDecode = errors.New("btcpay: unreadable answer")

// toInvoice maps Greenfield's InvoiceData to the port's Invoice.
func (c *Client) toInvoice(d invoiceData) (domain.Invoice, error) {
	bad := func(what string, v any) (domain.Invoice, error) {
		return domain.Invoice{}, fmt.Errorf("%w: invoice %q: %s %v", errDecode, d.ID, what, v)
	}
	if d.ID == "" {
		return bad("id", `""`)
	}
	st := domain.InvoiceStatus(d.Status)
	if !slices.Contains(statuses, st) {
		return bad("status", d.Status)
	}
	ex := domain.InvoiceException(d.AdditionalStatus)
	if ex == "" {
		ex = domain.ExceptionNone
	}
	if !slices.Contains(exceptions, ex) {
		return bad("additionalStatus", d.AdditionalStatus)
	}
	amount, err := domain.ParseMoney(d.Amount)
	if err != nil {
		return bad("amount", err)
	}
	paid := domain.Zero()
	if d.PaidAmount != "" {
		if paid, err = domain.ParseMoney(d.PaidAmount); err != nil {
			return bad("paidAmount", err)
		}
	}
	inv := domain.Invoice{Ref: d.ID, TopupID: d.Metadata.OrderID, AccountID: d.Metadata.AccountID,
		Amount: amount, Currency: d.Currency, Paid: paid, Status: st, Exception: ex,
		CheckoutLink: d.CheckoutLink, CreatedAt: d.CreatedTime.time(), ExpiresAt: d.ExpirationTime.time()}
	for _, m := range d.PaymentMethods {
		if m.Activated != nil && !*m.Activated {
			continue // no destination yet
		}
		pm := domain.PaymentMethod{ID: m.PaymentMethodID, Currency: m.Currency, Destination: m.Destination,
			PaymentLink: m.PaymentLink}
		for _, f := range []struct {
			name, text string
			to         *string
		}{{"amount", m.Amount, &pm.Amount}, {"due", m.Due, &pm.Due}, {"totalPaid", m.TotalPaid, &pm.Paid}} {
			if *f.to, err = decimalText(f.text); err != nil {
				return bad("payment method "+m.PaymentMethodID+" "+f.name, err)
			}
		}
		if pm.Rate, err = domain.ParseMoney(m.Rate); err != nil {
			return bad("payment method "+m.PaymentMethodID+" rate", err)
		}
		inv.Methods = append(inv.Methods, pm)
	}
	if len(inv.Methods) > 0 {
		inv.PayAddress = inv.Methods[0].Destination
	}
	return inv, nil
}

// decimalText checks a decimal string and returns it as written.
func decimalText(s string) (string, error) {
	if s == "" {
		return "0", nil
	}
	var d apd.Decimal
	if _, _, err := d.SetString(s); err != nil || d.Form != apd.Finite {
		return "", fmt.Errorf("%q is not a decimal", s)
	}
	return s, nil
}

// do sends one API call; GETs are retried on errors that may pass.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("btcpay: %s %s: %w", method, path, err)
		}
	}
	attempts := 1
	if method == http.MethodGet {
		attempts += c.cfg.Retries
	}
	wait := c.cfg.Backoff
	var err error
	for i := range attempts {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%w (after: %w)", ctx.Err(), err)
			case <-t.C:
			}
			wait *= 2
		}
		var retry bool
		retry, err = c.attempt(ctx, method, path, query, body, out, i+1)
		if err == nil || !retry || ctx.Err() != nil {
			break
		}
	}
	return err
}

func (c *Client) attempt(ctx context.Context, method, path string, query url.Values, body []byte, out any, n int) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	u := *c.base
	u.Path = strings.TrimRight(c.base.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return false, fmt.Errorf("btcpay: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "token "+c.cfg.APIKey)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.log.WarnContext(ctx, "request failed", "method", method, "path", path, "attempt", n,
			"elapsed", time.Since(start), "err", err)
		// url.Error carries the URL, which has no secret (the key is a header).
		return true, fmt.Errorf("btcpay: %s %s: %w: %w", method, path, domain.ErrPaymentsUnavailable, err)
	}
	defer resp.Body.Close()
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	c.log.DebugContext(ctx, "request", "method", method, "path", path, "status", resp.StatusCode, "attempt", n,
		"elapsed", time.Since(start))
	if rerr != nil {
		return true, fmt.Errorf("btcpay: %s %s: reading the answer: %w: %w", method, path, domain.ErrPaymentsUnavailable, rerr)
	}
	if resp.StatusCode != http.StatusOK {
		se := &StatusError{Method: method, Path: path, Status: resp.StatusCode}
		var pd struct{ Code, Message string }
		if json.Unmarshal(data, &pd) == nil {
			se.Code, se.Message = pd.Code, pd.Message
		}
		c.log.WarnContext(ctx, "request refused", "method", method, "path", path, "status", resp.StatusCode,
			"code", se.Code, "attempt", n)
		return errors.Is(se, domain.ErrPaymentsUnavailable), se
	}
	if err := json.Unmarshal(data, out); err != nil {
		return false, fmt.Errorf("%w: %s %s: %w", errDecode, method, path, err)
	}
	return false, nil
}
