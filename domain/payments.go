package domain

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors a Payments implementation returns for callers to branch on.
var (
	// ErrInvoiceNotFound: the processor has no such invoice (or it belongs
	// to another store), or no invoice for that top-up.
	ErrInvoiceNotFound = errors.New("payment processor has no such invoice")
	// ErrPaymentsUnavailable: the processor did not answer usably (network
	// error, timeout, 5xx). Transient: retry later. For a creation the
	// outcome is unknown, so look the invoice up by top-up before retrying.
	ErrPaymentsUnavailable = errors.New("payment processor unavailable")
	// ErrPaymentsCredentials: the processor refused our credentials or does
	// not know our store. Permanent until the configuration changes.
	ErrPaymentsCredentials = errors.New("payment processor refused our credentials")
	// ErrMethodNotOffered is what every *MethodNotOfferedError matches
	// with errors.Is.
	ErrMethodNotOffered = errors.New("payment method not offered")
)

// MethodNotOfferedError refuses a request for a payment method the
// processor does not offer; Offered lists what it does offer (payment
// method ids such as "BTC-CHAIN", "BTC-LN"), so the caller can say so.
type MethodNotOfferedError struct {
	Requested string
	Offered   []string
}

func (e *MethodNotOfferedError) Error() string {
	return fmt.Sprintf("payment method %q is not offered; offered: %s", e.Requested, strings.Join(e.Offered, ", "))
}

// Is makes errors.Is(err, ErrMethodNotOffered) true.
func (e *MethodNotOfferedError) Is(target error) bool { return target == ErrMethodNotOffered }

// InvoiceStatus is where an invoice stands, in BTCPay Server's terms (the
// processor we run in production; the sandbox speaks the same language).
type InvoiceStatus string

// Invoice statuses.
const (
	InvoiceNew        InvoiceStatus = "New"        // waiting for payment
	InvoiceProcessing InvoiceStatus = "Processing" // paid in full, not confirmed yet
	InvoiceExpired    InvoiceStatus = "Expired"    // not paid in full in time
	InvoiceInvalid    InvoiceStatus = "Invalid"    // payment failed, or marked invalid
	InvoiceSettled    InvoiceStatus = "Settled"    // paid and confirmed (or marked)
)

// InvoiceException says why an invoice is in its status (BTCPay's
// additionalStatus).
type InvoiceException string

// Invoice exceptions.
const (
	ExceptionNone        InvoiceException = "None"
	ExceptionPaidLate    InvoiceException = "PaidLate"    // paid in full after expiry
	ExceptionPaidPartial InvoiceException = "PaidPartial" // paid less than due
	ExceptionMarked      InvoiceException = "Marked"      // status set by hand in the processor
	ExceptionInvalid     InvoiceException = "Invalid"
	ExceptionPaidOver    InvoiceException = "PaidOver" // paid more than due
)

// InvoiceRequest asks for an invoice for a top-up.
type InvoiceRequest struct {
	// TopupID is our top-up id: the invoice's order id, by which it can be
	// found again (FindInvoice) after a lost answer or a crash.
	TopupID string
	// AccountID is recorded in the invoice's metadata, for the operator.
	AccountID string
	// Amount is the price in USD.
	Amount Money
	// Method optionally asks for one payment method: a payment method id
	// ("BTC-CHAIN", "BTC-LN", "BTC-LNURL") or a currency code ("BTC", meaning
	// its on-chain method). Empty offers every method the processor has.
	Method string
}

// PaymentMethod is one way to pay an invoice: everything an agent needs to
// pay without a browser. Crypto amounts are exact decimal text in the
// method's currency, as the processor wrote them.
type PaymentMethod struct {
	// ID is the payment method id: network and asset ("BTC-CHAIN", "BTC-LN").
	ID string
	// Currency is the asset paid ("BTC").
	Currency string
	// Destination is the address, or the BOLT11 invoice for Lightning.
	Destination string
	// PaymentLink is a URI for wallets (BIP21, "lightning:..."), if any.
	PaymentLink string
	// Amount is the invoice amount in this currency, Due what is left to
	// pay (negative when overpaid), Paid what all methods paid so far,
	// converted to this currency.
	Amount, Due, Paid string
	// Rate is the price of one unit of Currency in USD.
	Rate Money
}

// Invoice is a payment processor's request for a crypto payment, as the
// processor reports it now.
type Invoice struct {
	// Ref is the processor's invoice id.
	Ref string
	// TopupID and AccountID are what the invoice was created for (its
	// metadata); TopupID is empty for an invoice we did not create.
	TopupID, AccountID string
	// Amount is the price and Currency its currency ("USD").
	Amount   Money
	Currency string
	// Paid is what was paid so far, in Currency.
	Paid      Money
	Status    InvoiceStatus
	Exception InvoiceException
	// CheckoutLink is the processor's payment page.
	CheckoutLink string
	CreatedAt    time.Time
	// ExpiresAt is when the offer (amounts, rates) ends; payments after it
	// are late.
	ExpiresAt time.Time
	// Methods are the ways to pay it: every method offered, or only the one
	// asked for.
	Methods []PaymentMethod
	// PayAddress is the destination of the first method, for callers that
	// show one address (today's top-up view).
	PayAddress string
}

// Payments is the crypto payment processor. Every call may fail or time
// out; a creation whose answer was lost may still have created the invoice,
// which is why invoices carry our top-up id and can be found by it.
type Payments interface {
	// Check makes a cheap authenticated call: it fails (with
	// ErrPaymentsCredentials when refused) if the processor cannot be used.
	Check(ctx context.Context) error
	// OpenInvoice returns the top-up's invoice, creating it unless the
	// processor already has one for req.TopupID (then that one is returned,
	// so calling again after a lost answer never makes a second invoice).
	// A req.Method the processor does not offer is a
	// *MethodNotOfferedError.
	OpenInvoice(ctx context.Context, req InvoiceRequest) (Invoice, error)
	// Invoice fetches an invoice by its Ref; ErrInvoiceNotFound if the
	// processor (our store) has none.
	Invoice(ctx context.Context, ref string) (Invoice, error)
	// FindInvoice fetches the invoice created for a top-up; if there are
	// several, the first created. ErrInvoiceNotFound if there is none.
	FindInvoice(ctx context.Context, topupID string) (Invoice, error)
}

// CheckCurrencySpelling is the rule for how a customer names the way to pay:
// a currency code or payment method id in upper case ("ETH", "BTC-LN"),
// exactly as every answer writes it. One spelling means a retry of the same
// request is the same request (its Idempotency-Key matches) and what was
// sent is what is shown; the refusal names the spelling to use.
func CheckCurrencySpelling(s string) error {
	if s == "" || methodPattern.MatchString(s) {
		return nil
	}
	if up := strings.ToUpper(strings.TrimSpace(s)); methodPattern.MatchString(up) {
		return InvalidField("currency", fmt.Sprintf("upper case, without spaces: %q", up))
	}
	return InvalidField("currency", "a currency code (BTC) or a payment method id (BTC-CHAIN, BTC-LN), upper case")
}

// PaymentMethodID normalises what a payer asks for into a payment method
// id: upper case, a bare currency code meaning its on-chain method ("btc" is
// "BTC-CHAIN"), and BTCPay's older Lightning names meaning "-LN".
func PaymentMethodID(s string) string {
	id := strings.ToUpper(strings.TrimSpace(s))
	if id == "" {
		return ""
	}
	cur, kind, ok := strings.Cut(id, "-")
	if !ok {
		if c, k, ok := strings.Cut(id, "_"); ok && k == "LIGHTNINGLIKE" {
			return c + "-LN"
		}
		return id + "-CHAIN"
	}
	switch kind {
	case "LIGHTNING", "LIGHTNINGNETWORK", "LIGHTNINGLIKE":
		return cur + "-LN"
	case "ONCHAIN":
		return cur + "-CHAIN"
	}
	return id
}

// Outcome is what an invoice's state means for its top-up.
type Outcome string

// Outcomes. Only OutcomeCredit credits anything.
const (
	// OutcomePending: nothing paid in full yet; wait.
	OutcomePending Outcome = "PENDING"
	// OutcomeProcessing: paid, waiting for confirmations; show it, credit
	// nothing yet.
	OutcomeProcessing Outcome = "PROCESSING"
	// OutcomeCredit: credit Decision.Credit, once (the ledger transaction
	// id derives from the invoice Ref).
	OutcomeCredit Outcome = "PAID"
	// OutcomeExpired and OutcomeInvalid end the top-up with no credit.
	OutcomeExpired Outcome = "EXPIRED"
	OutcomeInvalid Outcome = "INVALID"
	// OutcomeHold: the processor says settled but we do not credit
	// automatically; an operator decides (Decision.Review says why).
	OutcomeHold Outcome = "REVIEW"
)

// Decision is what to do with a top-up given its invoice.
type Decision struct {
	Outcome Outcome
	// Credit is the amount to credit with OutcomeCredit (the top-up's
	// amount, which the invoice amount equals); zero otherwise.
	Credit Money
	// Review, when not empty, says why an operator must look at the
	// top-up: money arrived that is not (or not all) credited
	// automatically. It can come with any outcome.
	Review string
}

// DecideTopup maps an invoice, as the processor reports it, to what happens
// to the top-up it was created for (topupID, for amount USD). It is the one
// place the money rules live:
//
//   - Settled credits the invoice amount, which must equal the top-up's
//     amount, in USD, with the top-up's id as order id; anything else is
//     held for review.
//   - Settled and PaidOver credits the invoice amount, not what was paid:
//     the excess is flagged for review (refund it, or credit it by hand).
//   - Settled and Marked (settled by hand in the processor, no payment seen
//     by us) is held: an operator credits it explicitly, or not.
//   - Paid after expiry (PaidLate) is never credited automatically: the
//     crypto amount was priced at a rate that had expired. The top-up ends
//     EXPIRED and is flagged for review.
//   - Expired after a partial payment (PaidPartial) ends EXPIRED with no
//     credit and is flagged for review (refund, or credit what was paid).
//   - Invalid ends INVALID, flagged for review if anything was paid.
//   - Settled with any other additional status (PaidPartial, under a
//     store payment tolerance) is held for review.
//   - Processing (paid, unconfirmed) is PROCESSING; New is PENDING, even
//     partly paid (the payer may still complete it).
//
// Anything not understood is held for review rather than credited.
func DecideTopup(inv Invoice, topupID string, amount Money) Decision {
	paid := inv.Paid.Sign() > 0
	switch inv.Status {
	case InvoiceNew:
		return Decision{Outcome: OutcomePending}
	case InvoiceProcessing:
		return Decision{Outcome: OutcomeProcessing}
	case InvoiceExpired:
		d := Decision{Outcome: OutcomeExpired}
		switch {
		case inv.Exception == ExceptionPaidLate:
			d.Review = fmt.Sprintf("paid after expiry (%s %s paid), not credited", inv.Paid, inv.Currency)
		case inv.Exception == ExceptionPaidPartial || paid:
			d.Review = fmt.Sprintf("expired partly paid (%s of %s %s), not credited", inv.Paid.Canonical(), inv.Amount.Canonical(), inv.Currency)
		}
		return d
	case InvoiceInvalid:
		d := Decision{Outcome: OutcomeInvalid}
		if paid {
			d.Review = fmt.Sprintf("invalid after %s %s was paid, not credited", inv.Paid, inv.Currency)
		}
		return d
	case InvoiceSettled:
		switch {
		case inv.TopupID != topupID:
			return hold("settled invoice %s is for top-up %q, not %q", inv.Ref, inv.TopupID, topupID)
		case inv.Currency != "USD" || inv.Amount.Cmp(amount) != 0:
			return hold("settled invoice %s is for %s %s, the top-up for %s USD", inv.Ref, inv.Amount, inv.Currency, amount)
		}
		switch inv.Exception {
		case ExceptionNone, "":
			return Decision{Outcome: OutcomeCredit, Credit: amount}
		case ExceptionPaidOver:
			return Decision{Outcome: OutcomeCredit, Credit: amount,
				Review: fmt.Sprintf("overpaid: %s USD paid, %s credited", inv.Paid.Canonical(), amount.Canonical())}
		case ExceptionMarked:
			return hold("marked settled by hand in the processor, not credited")
		case ExceptionPaidLate:
			return hold("settled after a payment after expiry, not credited")
		default:
			return hold("settled with additional status %q, not credited", inv.Exception)
		}
	}
	return hold("unknown invoice status %q (%q), not credited", inv.Status, inv.Exception)
}

func hold(format string, args ...any) Decision {
	return Decision{Outcome: OutcomeHold, Review: fmt.Sprintf(format, args...)}
}
