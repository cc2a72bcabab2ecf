package domain

import (
	"fmt"
	"regexp"
	"time"
)

// Top-up statuses, as the customer sees them. OPENING and FAILED are never
// shown: OPENING is a top-up whose invoice is being opened (the intent,
// recorded first so a retry reuses its id and the processor can be asked for
// the invoice by it), FAILED one whose invoice could not be opened.
const (
	TopupStatusOpening    = "OPENING"
	TopupStatusPending    = "PENDING"
	TopupStatusProcessing = "PROCESSING"
	TopupStatusPaid       = "PAID"
	TopupStatusExpired    = "EXPIRED"
	TopupStatusInvalid    = "INVALID"
	TopupStatusReview     = "REVIEW"
	TopupStatusFailed     = "FAILED"
)

// Topup is a crypto top-up and the invoice it is paid through.
type Topup struct {
	ID     string
	Amount Money
	// Currency is the asset asked for ("BTC"), or the first offered when
	// none was; PayAddress that method's destination.
	Currency    string
	PayAddress  string
	ProviderRef string
	Status      string
	CreatedAt   time.Time
	PaidAt      time.Time

	// Requested: opened through RequestTopup (an invoice of the payments
	// port); false for the top-ups of the first sandbox (TopupCreated),
	// which keep their rules, including the id of their credit.
	Requested bool
	// Method is the payment method asked for ("" for every one).
	Method       string
	CheckoutLink string
	ExpiresAt    time.Time
	Methods      []InvoiceMethod
	// Review says why an operator must look at the top-up; ReviewClosed
	// that one did (crediting it or dismissing the review).
	Review       string
	ReviewClosed bool
	// CreditedBy is the operator who credited it by hand, if one did.
	CreditedBy string
}

// Visible reports whether the customer sees the top-up.
func (t Topup) Visible() bool {
	return t.Status != TopupStatusOpening && t.Status != TopupStatusFailed
}

// NeedsReview reports whether the top-up is on the operator's review list.
func (t Topup) NeedsReview() bool { return t.Review != "" && !t.ReviewClosed }

// InvoiceMethod is one way to pay a top-up's invoice, as recorded when it
// was opened: network and asset, destination, exact crypto amount and rate.
type InvoiceMethod struct {
	ID          string `json:"id"`
	Currency    string `json:"currency"`
	Destination string `json:"destination"`
	PaymentLink string `json:"paymentLink,omitempty"`
	Amount      string `json:"amount"`
	Rate        Money  `json:"rate"`
}

// Top-up events (on the account stream).
type (
	// TopupRequested is the intent to open a top-up's invoice, recorded
	// before the processor is asked: the id is then stable across a retry
	// and a crash, and the invoice can be found by it.
	TopupRequested struct {
		TopupID string `json:"topupId"`
		Amount  Money  `json:"amount"`
		Method  string `json:"method,omitempty"`
		// IdempotencyKey and RequestHash are the request's key in logs
		// written before keys were claimed on their own
		// (IdempotencyKeyUsed); never set now.
		IdempotencyKey string    `json:"idempotencyKey,omitempty"`
		RequestHash    string    `json:"requestHash,omitempty"`
		At             time.Time `json:"at"`
	}
	// TopupInvoiced records the processor's invoice for a top-up.
	TopupInvoiced struct {
		TopupID      string          `json:"topupId"`
		InvoiceRef   string          `json:"invoiceRef"`
		CheckoutLink string          `json:"checkoutLink,omitempty"`
		ExpiresAt    time.Time       `json:"expiresAt,omitzero"`
		Methods      []InvoiceMethod `json:"methods"`
		At           time.Time       `json:"at"`
	}
	// TopupOpenFailed ends a top-up whose invoice could not be opened.
	TopupOpenFailed struct {
		TopupID string    `json:"topupId"`
		Reason  string    `json:"reason"`
		At      time.Time `json:"at"`
	}
	// TopupStatusChanged records what the invoice's state means for the
	// top-up (domain.DecideTopup), short of a credit: PROCESSING, EXPIRED,
	// INVALID or REVIEW, and why an operator must look at it, if so.
	TopupStatusChanged struct {
		TopupID string    `json:"topupId"`
		Status  string    `json:"status"`
		Review  string    `json:"review,omitempty"`
		At      time.Time `json:"at"`
	}
	// TopupReviewClosed: an operator looked at a top-up flagged for review
	// and decided not to credit (more).
	TopupReviewClosed struct {
		TopupID string    `json:"topupId"`
		Reason  string    `json:"reason"`
		Actor   string    `json:"actor"`
		At      time.Time `json:"at"`
	}
)

func (TopupRequested) EventType() string     { return "TopupRequested" }
func (TopupInvoiced) EventType() string      { return "TopupInvoiced" }
func (TopupOpenFailed) EventType() string    { return "TopupOpenFailed" }
func (TopupStatusChanged) EventType() string { return "TopupStatusChanged" }
func (TopupReviewClosed) EventType() string  { return "TopupReviewClosed" }

func (e TopupRequested) OccurredAt() time.Time     { return e.At }
func (e TopupInvoiced) OccurredAt() time.Time      { return e.At }
func (e TopupOpenFailed) OccurredAt() time.Time    { return e.At }
func (e TopupStatusChanged) OccurredAt() time.Time { return e.At }
func (e TopupReviewClosed) OccurredAt() time.Time  { return e.At }

// TopupOf names the top-up an event concerns, if it concerns one.
func TopupOf(e Event) (string, bool) {
	switch e := e.(type) {
	case TopupCreated:
		return e.TopupID, true
	case TopupPaid:
		return e.TopupID, true
	case TopupRequested:
		return e.TopupID, true
	case TopupInvoiced:
		return e.TopupID, true
	case TopupOpenFailed:
		return e.TopupID, true
	case TopupStatusChanged:
		return e.TopupID, true
	case TopupReviewClosed:
		return e.TopupID, true
	}
	return "", false
}

// evolveTopup folds the top-up events of TopupOf (TopupCreated aside).
func evolveTopup(a Account, e Event) Account {
	if r, ok := e.(TopupRequested); ok {
		a.Topups[r.TopupID] = &Topup{ID: r.TopupID, Amount: r.Amount, Method: r.Method, Currency: methodCurrency(r.Method),
			Status: TopupStatusOpening, CreatedAt: r.At, Requested: true}
		a.TopupOrder = append(a.TopupOrder, r.TopupID)
		return a
	}
	id, _ := TopupOf(e)
	t, ok := a.Topups[id]
	if !ok {
		return a
	}
	switch e := e.(type) {
	case TopupInvoiced:
		t.Status, t.ProviderRef, t.CheckoutLink, t.ExpiresAt, t.Methods =
			TopupStatusPending, e.InvoiceRef, e.CheckoutLink, e.ExpiresAt, e.Methods
		if len(e.Methods) > 0 {
			t.PayAddress = e.Methods[0].Destination
			if t.Currency == "" {
				t.Currency = e.Methods[0].Currency
			}
		}
	case TopupOpenFailed:
		t.Status = TopupStatusFailed
	case TopupStatusChanged:
		t.Status = e.Status
		if e.Review != "" {
			t.Review, t.ReviewClosed = e.Review, false
		}
	case TopupPaid:
		t.Status, t.PaidAt = TopupStatusPaid, e.At
		if e.Review != "" {
			t.Review, t.ReviewClosed = e.Review, false
		}
		if e.Actor != "" {
			t.CreditedBy, t.ReviewClosed = e.Actor, true
		}
	case TopupReviewClosed:
		t.ReviewClosed = true
	}
	return a
}

// methodCurrency is the asset of a payment method id ("BTC-LN" is BTC).
func methodCurrency(method string) string {
	for i := 0; i < len(method); i++ {
		if method[i] == '-' {
			return method[:i]
		}
	}
	return method
}

// Top-up commands.
type (
	// RequestTopup records the intent to open a top-up for Amount USD,
	// payable with Method (a payment method id, or "" for any).
	RequestTopup struct {
		TopupID string
		Amount  Money
		Method  string
		Idem    Idem
	}
	// RecordInvoice records the invoice the processor opened for a top-up.
	RecordInvoice struct {
		TopupID string
		Invoice Invoice
	}
	// FailTopupOpen ends a top-up whose invoice could not be opened.
	FailTopupOpen struct{ TopupID, Reason string }
	// ApplyInvoice applies the invoice's state, as the processor reports
	// it now, to its top-up: the money rules of DecideTopup.
	ApplyInvoice struct {
		TopupID string
		Invoice Invoice
	}
	// CreditTopup is an operator crediting a top-up that was not credited
	// automatically (held for review, expired partly or late paid): Amount,
	// or the top-up's amount when zero.
	CreditTopup struct {
		TopupID string
		Amount  Money
		Reason  string
		Actor   string
	}
	// CloseTopupReview is an operator deciding not to credit a top-up
	// flagged for review (or its overpaid excess).
	CloseTopupReview struct{ TopupID, Reason, Actor string }
)

func (RequestTopup) accountCommand()     {}
func (RecordInvoice) accountCommand()    {}
func (FailTopupOpen) accountCommand()    {}
func (ApplyInvoice) accountCommand()     {}
func (CreditTopup) accountCommand()      {}
func (CloseTopupReview) accountCommand() {}

var methodPattern = regexp.MustCompile(`^[A-Z0-9]{2,10}(-[A-Z0-9]{2,16})?$`)

// topupCommand decides the top-up commands.
func (d *decision) topupCommand(cmd Command, now time.Time) error {
	switch c := cmd.(type) {
	case RequestTopup:
		return d.requestTopup(c, now)
	case RecordInvoice:
		return d.recordInvoice(c, now)
	case FailTopupOpen:
		t, err := d.topup(c.TopupID)
		if err != nil {
			return err
		}
		if t.Status != TopupStatusOpening {
			return stateError("top-up "+t.ID, t.Status, "only an opening top-up can fail to open")
		}
		d.emit(TopupOpenFailed{TopupID: t.ID, Reason: c.Reason, At: now})
		return nil
	case ApplyInvoice:
		return d.applyInvoice(c, now)
	case CreditTopup:
		return d.creditTopup(c, now)
	case CloseTopupReview:
		t, err := d.topup(c.TopupID)
		if err != nil {
			return err
		}
		if !t.NeedsReview() {
			return stateError("top-up "+t.ID, t.Status, "it is not waiting for a review")
		}
		if c.Reason == "" || c.Actor == "" {
			return InvalidField("reason", "say why, for the audit trail")
		}
		d.emit(TopupReviewClosed{TopupID: t.ID, Reason: c.Reason, Actor: c.Actor, At: now})
		return nil
	}
	return fmt.Errorf("%w: unknown command %T", ErrInvalid, cmd)
}

func (d *decision) topup(id string) (*Topup, error) {
	t, ok := d.s.Topups[id]
	if !ok || t.Status == TopupStatusFailed {
		return nil, fmt.Errorf("top-up %s: %w", id, ErrNotFound)
	}
	return t, nil
}

// checkTopupAmount is the amount rule of every top-up.
func checkTopupAmount(amount Money) error {
	if amount.Exponent() < -2 || amount.Cmp(MinTopup) < 0 || amount.Cmp(MaxTopup) > 0 {
		return InvalidField("amount", fmt.Sprintf("a decimal string from %s to %s with at most 2 decimals", MinTopup.Canonical(), MaxTopup.Canonical()))
	}
	return nil
}

// CheckTopupRequest is the rule for a new top-up: an account not on hold,
// an amount in dollars and cents within the limits, a method that looks
// like a payment method id. Whether the processor offers the method only
// it can say.
func (a Account) CheckTopupRequest(amount Money, method string) error {
	if err := a.CheckActive(); err != nil {
		return err
	}
	fields := map[string]string{}
	if err := checkTopupAmount(amount); err != nil {
		fields["amount"] = err.(*Error).Fields["amount"]
	}
	if method != "" && !methodPattern.MatchString(method) {
		fields["currency"] = "a currency code (BTC) or a payment method id (BTC-CHAIN, BTC-LN)"
	}
	if len(fields) > 0 {
		return Invalid(fields)
	}
	return nil
}

func (d *decision) requestTopup(c RequestTopup, now time.Time) error {
	if err := d.s.CheckTopupRequest(c.Amount, c.Method); err != nil {
		return err
	}
	if err := d.keyed(c.Idem); err != nil {
		return err
	}
	if _, exists := d.s.Topups[c.TopupID]; exists || c.TopupID == "" {
		return fmt.Errorf("%w: top-up id %q", ErrInvalid, c.TopupID)
	}
	d.emit(TopupRequested{TopupID: c.TopupID, Amount: c.Amount, Method: c.Method, At: now})
	d.claim(c.Idem, IdempotencyKeyUsed{Ref: c.TopupID}, now)
	return nil
}

func (d *decision) recordInvoice(c RecordInvoice, now time.Time) error {
	t, err := d.topup(c.TopupID)
	if err != nil {
		return err
	}
	inv := c.Invoice
	switch {
	case inv.Ref == "":
		return fmt.Errorf("%w: invoice without a reference", ErrInvalid)
	case t.Status != TopupStatusOpening && t.ProviderRef == inv.Ref:
		return nil // recorded already (a retry)
	case t.Status != TopupStatusOpening:
		return stateError("top-up "+t.ID, t.Status, "it already has invoice "+t.ProviderRef)
	case inv.TopupID != t.ID || inv.Currency != "USD" || inv.Amount.Cmp(t.Amount) != 0:
		return fmt.Errorf("%w: invoice %s is for top-up %q, %s %s; want %q, %s USD", ErrInvalid,
			inv.Ref, inv.TopupID, inv.Amount, inv.Currency, t.ID, t.Amount)
	}
	e := TopupInvoiced{TopupID: t.ID, InvoiceRef: inv.Ref, CheckoutLink: inv.CheckoutLink, ExpiresAt: inv.ExpiresAt,
		Methods: make([]InvoiceMethod, 0, len(inv.Methods)), At: now}
	for _, m := range inv.Methods {
		e.Methods = append(e.Methods, InvoiceMethod{ID: m.ID, Currency: m.Currency, Destination: m.Destination,
			PaymentLink: m.PaymentLink, Amount: m.Amount, Rate: m.Rate})
	}
	d.emit(e)
	return nil
}

// applyInvoice moves a top-up along what its invoice's state means. A
// top-up only moves forward: a credited one never changes, and an invoice
// read from a processor that forgot a payment (the sandbox's memory after a
// restart) cannot undo what was recorded.
func (d *decision) applyInvoice(c ApplyInvoice, now time.Time) error {
	t, err := d.topup(c.TopupID)
	if err != nil {
		return err
	}
	if !t.Requested || t.Status == TopupStatusOpening {
		return stateError("top-up "+t.ID, t.Status, "it has no invoice to apply")
	}
	if c.Invoice.Ref != t.ProviderRef {
		return fmt.Errorf("%w: invoice %s is not top-up %s's (%s)", ErrInvalid, c.Invoice.Ref, t.ID, t.ProviderRef)
	}
	if t.Status == TopupStatusPaid {
		return nil
	}
	dec := DecideTopup(c.Invoice, t.ID, t.Amount)
	change := func(status string) {
		review := dec.Review
		if review == t.Review {
			review = ""
		}
		if status != t.Status || review != "" {
			d.emit(TopupStatusChanged{TopupID: t.ID, Status: status, Review: review, At: now})
		}
	}
	switch dec.Outcome {
	case OutcomePending:
	case OutcomeProcessing:
		if t.Status == TopupStatusPending {
			change(TopupStatusProcessing)
		}
	case OutcomeExpired, OutcomeInvalid:
		if t.Status != TopupStatusReview {
			change(string(dec.Outcome))
		}
	case OutcomeHold:
		change(TopupStatusReview)
	case OutcomeCredit:
		if t.Status == TopupStatusReview {
			return nil // held once: only an operator credits it now
		}
		d.credit(t, dec.Credit, dec.Review, "", "", now)
	}
	return nil
}

// TopupTxID is the id of the credit of a top-up paid through invoice ref:
// derived from the invoice, so however many times and by whomever its
// settlement is seen, it credits once.
func TopupTxID(invoiceRef string) string { return txID("topup-invoice", invoiceRef) }

func (d *decision) credit(t *Topup, amount Money, review, actor, reason string, now time.Time) {
	// The credit must not pay for hours that came due before it.
	d.settle(now)
	d.emit(TopupPaid{TopupID: t.ID, InvoiceRef: t.ProviderRef, Review: review, Actor: actor, Reason: reason, At: now})
	tx := transfer(TxTopup, TopupTxID(t.ProviderRef), CustomerLedger(d.s.ID), LedgerCryptoDeposits, amount, now)
	tx.TopupID, tx.InvoiceID = t.ID, t.ProviderRef
	d.emit(tx)
	d.resume(now)
}

func (d *decision) creditTopup(c CreditTopup, now time.Time) error {
	t, err := d.topup(c.TopupID)
	if err != nil {
		return err
	}
	if !t.Requested {
		return stateError("top-up "+t.ID, t.Status, "only a top-up with an invoice can be credited by an operator")
	}
	switch t.Status {
	case TopupStatusReview, TopupStatusExpired, TopupStatusInvalid:
	default:
		return stateError("top-up "+t.ID, t.Status, "an operator credits only a top-up in REVIEW, EXPIRED or INVALID")
	}
	if c.Reason == "" || c.Actor == "" {
		return InvalidField("reason", "say why, for the audit trail")
	}
	amount := c.Amount
	if amount.Sign() == 0 {
		amount = t.Amount
	}
	if err := checkTopupAmount(amount); err != nil {
		return err
	}
	d.credit(t, amount, "", c.Actor, c.Reason, now)
	return nil
}
