package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/apd/v3"

	"github.com/cryptovps/cryptovps/domain"
)

// DefaultPaymentMethods are the payment methods the simulated processor
// offers unless told otherwise: on-chain for today's currencies, and
// Lightning for bitcoin.
var DefaultPaymentMethods = []string{"BTC-CHAIN", "BTC-LN", "ETH-CHAIN", "LTC-CHAIN", "USDC-CHAIN", "USDT-CHAIN", "XMR-CHAIN"}

// sandboxRates are the simulated prices in USD of one unit of each asset.
var sandboxRates = map[string]string{
	"BTC": "100000.00", "ETH": "4000.00", "LTC": "100.00", "USDC": "1.00", "USDT": "1.00", "XMR": "200.00",
}

// PaymentsOptions tunes the simulated processor.
type PaymentsOptions struct {
	// Expiry is how long an invoice can be paid; zero means never expires
	// (a sandbox top-up can be paid at any time, as it always could).
	Expiry time.Duration
	// Methods are the payment method ids offered; nil is
	// DefaultPaymentMethods. Only currencies with a simulated rate work.
	Methods []string
}

// Payments is the simulated crypto processor. Invoices get deterministic
// testnet-looking destinations and are paid through the sandbox API
// (Settle, Pay), never by real money.
//
// An invoice's Ref describes it ("sandbox_<topup>_<amount>_<created ms>"),
// so any process sharing the event store, or this one after a restart, can
// read an invoice it did not create: it is New (or Expired, by the clock)
// until paid. Payments and the account id are only kept in memory, by the
// process that saw them: the application records the invoice and the
// credit in its own event log, so losing them loses nothing that counts.
// FindInvoice only finds invoices this process created.
//
// The zero Payments refuses every call: use NewPayments.
type Payments struct{ st *payState }

type payState struct {
	clock   domain.Clock
	expiry  time.Duration
	methods []string

	mu      sync.Mutex
	byRef   map[string]*sandboxInvoice
	byTopup map[string]string
}

type sandboxInvoice struct {
	ref, topupID, accountID string
	amount                  domain.Money
	createdAt               time.Time
	paid                    domain.Money
	confirmed               bool // every payment so far is confirmed
	late                    bool // paid in full only after expiry
	marked                  domain.InvoiceStatus
}

// errNotSetUp is what the zero Payments answers.
var errNotSetUp = errors.New("sandbox payments: not set up (use NewPayments)")

// NewPayments returns a simulated processor on clock.
func NewPayments(clock domain.Clock, opts PaymentsOptions) Payments {
	methods := opts.Methods
	if methods == nil {
		methods = DefaultPaymentMethods
	}
	ids := make([]string, 0, len(methods))
	for _, m := range methods {
		ids = append(ids, domain.PaymentMethodID(m))
	}
	return Payments{st: &payState{clock: clock, expiry: opts.Expiry, methods: ids,
		byRef: map[string]*sandboxInvoice{}, byTopup: map[string]string{}}}
}

// Check always passes: there is nothing to reach.
func (Payments) Check(context.Context) error { return nil }

// address is the deterministic destination of currency for a top-up.
func address(currency, topupID string) string {
	sum := sha256.Sum256([]byte(currency + ":" + topupID))
	h := hex.EncodeToString(sum[:])
	switch strings.ToUpper(currency) {
	case "BTC":
		return "tb1q" + h[:38]
	case "LTC":
		return "tltc1q" + h[:38]
	case "XMR":
		return "9" + h[:63] + h[:30]
	default: // ETH and ERC-20 stablecoins
		return "0x" + h[:40]
	}
}

// OpenInvoice returns the top-up's invoice, creating it the first time.
func (p Payments) OpenInvoice(ctx context.Context, req domain.InvoiceRequest) (domain.Invoice, error) {
	if p.st == nil {
		return domain.Invoice{}, errNotSetUp
	}
	if err := ctx.Err(); err != nil {
		return domain.Invoice{}, err
	}
	if req.TopupID == "" || strings.Contains(req.TopupID, "_") {
		return domain.Invoice{}, fmt.Errorf("sandbox payments: top-up id %q: %w", req.TopupID, domain.ErrInvalid)
	}
	if req.Amount.Sign() <= 0 {
		return domain.Invoice{}, fmt.Errorf("sandbox payments: amount %s: %w", req.Amount, domain.ErrInvalid)
	}
	method := domain.PaymentMethodID(req.Method)
	if method != "" && !slices.Contains(p.st.methods, method) {
		return domain.Invoice{}, &domain.MethodNotOfferedError{Requested: req.Method, Offered: slices.Clone(p.st.methods)}
	}
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	inv, ok := p.st.byRef[p.st.byTopup[req.TopupID]]
	if !ok {
		now := p.st.clock.Now()
		inv = &sandboxInvoice{topupID: req.TopupID, accountID: req.AccountID, amount: req.Amount, createdAt: now}
		inv.ref = "sandbox_" + req.TopupID + "_" + req.Amount.String() + "_" + strconv.FormatInt(now.UnixMilli(), 10)
		p.st.byRef[inv.ref], p.st.byTopup[req.TopupID] = inv, inv.ref
	}
	return p.st.view(inv, method), nil
}

// Invoice reads an invoice by ref, also one another process created.
func (p Payments) Invoice(ctx context.Context, ref string) (domain.Invoice, error) {
	if p.st == nil {
		return domain.Invoice{}, errNotSetUp
	}
	if err := ctx.Err(); err != nil {
		return domain.Invoice{}, err
	}
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	inv, err := p.st.lookup(ref)
	if err != nil {
		return domain.Invoice{}, err
	}
	return p.st.view(inv, ""), nil
}

// FindInvoice finds the invoice this process created for a top-up.
func (p Payments) FindInvoice(ctx context.Context, topupID string) (domain.Invoice, error) {
	if p.st == nil {
		return domain.Invoice{}, errNotSetUp
	}
	if err := ctx.Err(); err != nil {
		return domain.Invoice{}, err
	}
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	inv, ok := p.st.byRef[p.st.byTopup[topupID]]
	if !ok {
		return domain.Invoice{}, fmt.Errorf("sandbox payments: top-up %q: %w", topupID, domain.ErrInvoiceNotFound)
	}
	return p.st.view(inv, ""), nil
}

// Settle pays an invoice in full, confirmed: what POST
// /sandbox/topups/:id/pay simulates. Paid after expiry, it is PaidLate.
func (p Payments) Settle(ctx context.Context, ref string) (domain.Invoice, error) {
	return p.pay(ctx, ref, nil, true)
}

// Pay simulates a payment of amount USD, confirmed or not yet.
func (p Payments) Pay(ctx context.Context, ref string, amount domain.Money, confirmed bool) (domain.Invoice, error) {
	return p.pay(ctx, ref, &amount, confirmed)
}

// Confirm confirms the payments an invoice received.
func (p Payments) Confirm(ctx context.Context, ref string) (domain.Invoice, error) {
	return p.update(ctx, ref, func(inv *sandboxInvoice) { inv.confirmed = true })
}

// Mark sets an invoice Settled or Invalid by hand, as a store owner can.
func (p Payments) Mark(ctx context.Context, ref string, status domain.InvoiceStatus) (domain.Invoice, error) {
	if status != domain.InvoiceSettled && status != domain.InvoiceInvalid {
		return domain.Invoice{}, fmt.Errorf("sandbox payments: cannot mark %s: %w", status, domain.ErrInvalid)
	}
	return p.update(ctx, ref, func(inv *sandboxInvoice) { inv.marked = status })
}

func (p Payments) pay(ctx context.Context, ref string, amount *domain.Money, confirmed bool) (domain.Invoice, error) {
	return p.update(ctx, ref, func(inv *sandboxInvoice) {
		due := inv.amount.Sub(inv.paid)
		if amount == nil {
			amount = &due
		}
		first, wasFull := inv.paid.Sign() == 0, inv.paid.Cmp(inv.amount) >= 0
		inv.paid = inv.paid.Add(*amount)
		if !wasFull && inv.paid.Cmp(inv.amount) >= 0 && p.st.expired(inv) {
			inv.late = true
		}
		// Confirmed means every payment so far is.
		inv.confirmed = confirmed && (first || inv.confirmed)
	})
}

func (p Payments) update(ctx context.Context, ref string, fn func(*sandboxInvoice)) (domain.Invoice, error) {
	if p.st == nil {
		return domain.Invoice{}, errNotSetUp
	}
	if err := ctx.Err(); err != nil {
		return domain.Invoice{}, err
	}
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	inv, err := p.st.lookup(ref)
	if err != nil {
		return domain.Invoice{}, err
	}
	if inv.marked != "" {
		return domain.Invoice{}, fmt.Errorf("sandbox payments: invoice %s was marked %s", ref, inv.marked)
	}
	fn(inv)
	return p.st.view(inv, ""), nil
}

// lookup finds an invoice by ref, rebuilding one another process (or this
// one before a restart) created from the ref itself. Callers hold mu.
func (s *payState) lookup(ref string) (*sandboxInvoice, error) {
	if inv, ok := s.byRef[ref]; ok {
		return inv, nil
	}
	notFound := fmt.Errorf("sandbox payments: invoice %q: %w", ref, domain.ErrInvoiceNotFound)
	rest, ok := strings.CutPrefix(ref, "sandbox_")
	if !ok {
		return nil, notFound
	}
	parts := strings.Split(rest, "_")
	if len(parts) != 3 || parts[0] == "" {
		return nil, notFound
	}
	amount, err := domain.ParseMoney(parts[1])
	if err != nil || amount.Sign() <= 0 {
		return nil, notFound
	}
	ms, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || ms <= 0 {
		return nil, notFound
	}
	inv := &sandboxInvoice{ref: ref, topupID: parts[0], amount: amount, createdAt: time.UnixMilli(ms).UTC()}
	s.byRef[ref] = inv
	if _, ok := s.byTopup[inv.topupID]; !ok {
		s.byTopup[inv.topupID] = ref
	}
	return inv, nil
}

func (s *payState) expiresAt(inv *sandboxInvoice) time.Time {
	if s.expiry <= 0 {
		return time.Time{}
	}
	return inv.createdAt.Add(s.expiry)
}

func (s *payState) expired(inv *sandboxInvoice) bool {
	at := s.expiresAt(inv)
	return !at.IsZero() && !s.clock.Now().Before(at)
}

// status derives an invoice's status as BTCPay would.
func (s *payState) status(inv *sandboxInvoice) (domain.InvoiceStatus, domain.InvoiceException) {
	full, some := inv.paid.Cmp(inv.amount) >= 0, inv.paid.Sign() > 0
	switch {
	case inv.marked != "":
		return inv.marked, domain.ExceptionMarked
	case inv.late:
		return domain.InvoiceExpired, domain.ExceptionPaidLate
	case full:
		st := domain.InvoiceProcessing
		if inv.confirmed {
			st = domain.InvoiceSettled
		}
		if inv.paid.Cmp(inv.amount) > 0 {
			return st, domain.ExceptionPaidOver
		}
		return st, domain.ExceptionNone
	case s.expired(inv) && some:
		return domain.InvoiceExpired, domain.ExceptionPaidPartial
	case s.expired(inv):
		return domain.InvoiceExpired, domain.ExceptionNone
	case some:
		return domain.InvoiceNew, domain.ExceptionPaidPartial
	}
	return domain.InvoiceNew, domain.ExceptionNone
}

// view reports an invoice, with every method or only method.
func (s *payState) view(inv *sandboxInvoice, method string) domain.Invoice {
	st, ex := s.status(inv)
	out := domain.Invoice{Ref: inv.ref, TopupID: inv.topupID, AccountID: inv.accountID, Amount: inv.amount,
		Currency: "USD", Paid: inv.paid, Status: st, Exception: ex,
		CheckoutLink: "https://sandbox.invalid/i/" + inv.ref, CreatedAt: inv.createdAt, ExpiresAt: s.expiresAt(inv)}
	for _, id := range s.methods {
		if method != "" && id != method {
			continue
		}
		out.Methods = append(out.Methods, methodView(inv, id))
	}
	if len(out.Methods) > 0 {
		out.PayAddress = out.Methods[0].Destination
	}
	return out
}

func methodView(inv *sandboxInvoice, id string) domain.PaymentMethod {
	cur, kind, _ := strings.Cut(id, "-")
	rate := domain.MustMoney("1.00")
	if r, ok := sandboxRates[cur]; ok {
		rate = domain.MustMoney(r)
	}
	amount, paid := crypto(inv.amount, rate), crypto(inv.paid, rate)
	m := domain.PaymentMethod{ID: id, Currency: cur, Rate: rate, Amount: amount, Paid: paid,
		Due: crypto(inv.amount.Sub(inv.paid), rate)}
	if kind == "LN" {
		sum := sha256.Sum256([]byte(id + ":" + inv.ref))
		m.Destination = "lntbs" + hex.EncodeToString(sum[:])
		m.PaymentLink = "lightning:" + m.Destination
	} else {
		m.Destination = address(cur, inv.topupID)
		m.PaymentLink = strings.ToLower(cur) + ":" + m.Destination + "?amount=" + amount
	}
	return m
}

// crypto converts usd at rate to 8 decimals.
func crypto(usd, rate domain.Money) string {
	c := apd.BaseContext.WithPrecision(34)
	c.Rounding = apd.RoundHalfUp
	var q, r apd.Decimal
	if _, err := c.Quo(&q, usd.Decimal(), rate.Decimal()); err != nil {
		return "0"
	}
	if _, err := c.Quantize(&r, &q, -8); err != nil {
		return "0"
	}
	return r.Text('f')
}
