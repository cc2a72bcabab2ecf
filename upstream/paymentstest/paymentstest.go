// Package paymentstest is the contract every domain.Payments implementation
// keeps: the sandbox processor and the BTCPay adapter (against its fake, or
// a live store) run the same suite, so the application can rely on one
// behaviour.
//
//	paymentstest.Run(t, func(t *testing.T) paymentstest.Processor { ... })
package paymentstest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
)

// Processor is one implementation under test and the means to move its
// invoices along.
type Processor struct {
	Payments domain.Payments
	// Offered are the payment method ids the processor offers.
	Offered []string
	// MaxExpiry bounds how long an invoice can be paid; zero means invoices
	// need not expire.
	MaxExpiry time.Duration
	// Settle pays an invoice in full, confirmed; Expire ends its offer
	// unpaid. Nil skips the tests that need them (a live server).
	Settle func(t *testing.T, ref string)
	Expire func(t *testing.T, ref string)
}

// Run runs the contract. setup is called once per subtest, which may run
// in parallel.
func Run(t *testing.T, setup func(t *testing.T) Processor) {
	ctx := context.Background()
	amount := domain.MustMoney("25.00")
	open := func(t *testing.T, p Processor, method string) (domain.InvoiceRequest, domain.Invoice) {
		t.Helper()
		req := domain.InvoiceRequest{TopupID: uuid.NewString(), AccountID: uuid.NewString(), Amount: amount, Method: method}
		inv, err := p.Payments.OpenInvoice(ctx, req)
		if err != nil {
			t.Fatalf("OpenInvoice(%+v): %v", req, err)
		}
		return req, inv
	}

	t.Run("Check", func(t *testing.T) {
		t.Parallel()
		if err := setup(t).Payments.Check(ctx); err != nil {
			t.Fatalf("Check: %v", err)
		}
	})

	t.Run("OpenInvoiceAnswersEverythingToPay", func(t *testing.T) {
		t.Parallel()
		p := setup(t)
		req, inv := open(t, p, "")
		checkInvoice(t, p, req, inv)
		if inv.Status != domain.InvoiceNew || inv.Exception != domain.ExceptionNone || inv.Paid.Sign() != 0 {
			t.Errorf("a new invoice is %s/%s, paid %s; want New/None, 0", inv.Status, inv.Exception, inv.Paid)
		}
		var ids []string
		for _, m := range inv.Methods {
			ids = append(ids, m.ID)
		}
		if !sameSet(ids, p.Offered) {
			t.Errorf("methods %v, want every offered method %v", ids, p.Offered)
		}
		if d := domain.DecideTopup(inv, req.TopupID, req.Amount); d.Outcome != domain.OutcomePending || d.Credit.Sign() != 0 {
			t.Errorf("a new invoice decides %+v, want pending", d)
		}
	})

	t.Run("OpenInvoiceTwiceIsOneInvoice", func(t *testing.T) {
		t.Parallel()
		p := setup(t)
		req, first := open(t, p, "")
		again, err := p.Payments.OpenInvoice(ctx, req)
		if err != nil {
			t.Fatalf("OpenInvoice again: %v", err)
		}
		if again.Ref != first.Ref {
			t.Errorf("opening the same top-up twice made invoices %s and %s", first.Ref, again.Ref)
		}
		found, err := p.Payments.FindInvoice(ctx, req.TopupID)
		if err != nil {
			t.Fatalf("FindInvoice: %v", err)
		}
		if found.Ref != first.Ref {
			t.Errorf("FindInvoice = %s, want %s", found.Ref, first.Ref)
		}
		checkInvoice(t, p, req, found)
		got, err := p.Payments.Invoice(ctx, first.Ref)
		if err != nil {
			t.Fatalf("Invoice: %v", err)
		}
		checkInvoice(t, p, req, got)
		if got.Ref != first.Ref || !got.ExpiresAt.Equal(first.ExpiresAt) {
			t.Errorf("Invoice(%s) = %s expiring %v, want expiring %v", first.Ref, got.Ref, got.ExpiresAt, first.ExpiresAt)
		}
	})

	t.Run("ConcurrentTopupsGetTheirOwnInvoices", func(t *testing.T) {
		t.Parallel()
		p := setup(t)
		var wg sync.WaitGroup
		refs := make([]string, 4)
		errs := make([]error, len(refs))
		for i := range refs {
			wg.Go(func() {
				inv, err := p.Payments.OpenInvoice(ctx, domain.InvoiceRequest{TopupID: uuid.NewString(), Amount: amount})
				refs[i], errs[i] = inv.Ref, err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("OpenInvoice %d: %v", i, err)
			}
		}
		if len(slices.Compact(slices.Sorted(slices.Values(refs)))) != len(refs) {
			t.Errorf("distinct top-ups share invoices: %v", refs)
		}
	})

	t.Run("UnknownInvoicesAreNotFound", func(t *testing.T) {
		t.Parallel()
		p := setup(t)
		if _, err := p.Payments.Invoice(ctx, "no-such-invoice"); !errors.Is(err, domain.ErrInvoiceNotFound) {
			t.Errorf("Invoice(unknown) = %v, want ErrInvoiceNotFound", err)
		}
		if _, err := p.Payments.FindInvoice(ctx, uuid.NewString()); !errors.Is(err, domain.ErrInvoiceNotFound) {
			t.Errorf("FindInvoice(unknown) = %v, want ErrInvoiceNotFound", err)
		}
	})

	t.Run("OneMethodAskedFor", func(t *testing.T) {
		t.Parallel()
		p := setup(t)
		for _, id := range p.Offered {
			asked := strings.ToLower(id)
			if cur, ok := strings.CutSuffix(id, "-CHAIN"); ok {
				asked = cur // a bare currency code is its on-chain method
			}
			req, inv := open(t, p, asked)
			checkInvoice(t, p, req, inv)
			if len(inv.Methods) != 1 || inv.Methods[0].ID != id || inv.PayAddress != inv.Methods[0].Destination {
				t.Errorf("asking for %q gave methods %+v (pay address %q), want only %s", asked, inv.Methods, inv.PayAddress, id)
			}
		}
	})

	t.Run("MethodNotOfferedNamesTheOffered", func(t *testing.T) {
		t.Parallel()
		p := setup(t)
		_, err := p.Payments.OpenInvoice(ctx, domain.InvoiceRequest{TopupID: uuid.NewString(), Amount: amount, Method: "DOGE"})
		var mn *domain.MethodNotOfferedError
		if !errors.As(err, &mn) || !errors.Is(err, domain.ErrMethodNotOffered) {
			t.Fatalf("asking for DOGE: %v, want a *MethodNotOfferedError", err)
		}
		if mn.Requested != "DOGE" || !sameSet(mn.Offered, p.Offered) {
			t.Errorf("refusal %+v, want DOGE refused naming %v", mn, p.Offered)
		}
		for _, m := range p.Offered {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("the refusal %q does not name %s", err, m)
			}
		}
	})

	t.Run("SettledCreditsTheAmountOnce", func(t *testing.T) {
		t.Parallel()
		p := setup(t)
		if p.Settle == nil {
			t.Skip("this processor cannot be paid from a test")
		}
		req, inv := open(t, p, "")
		p.Settle(t, inv.Ref)
		for _, get := range []func() (domain.Invoice, error){
			func() (domain.Invoice, error) { return p.Payments.Invoice(ctx, inv.Ref) },
			func() (domain.Invoice, error) { return p.Payments.FindInvoice(ctx, req.TopupID) },
			func() (domain.Invoice, error) { return p.Payments.OpenInvoice(ctx, req) },
		} {
			got, err := get()
			if err != nil {
				t.Fatal(err)
			}
			if got.Ref != inv.Ref || got.Status != domain.InvoiceSettled || got.Exception != domain.ExceptionNone ||
				got.Paid.Cmp(amount) != 0 {
				t.Errorf("settled invoice reads %s %s/%s paid %s; want %s Settled/None paid %s",
					got.Ref, got.Status, got.Exception, got.Paid, inv.Ref, amount)
			}
			d := domain.DecideTopup(got, req.TopupID, req.Amount)
			if d.Outcome != domain.OutcomeCredit || d.Credit.Cmp(amount) != 0 || d.Review != "" {
				t.Errorf("settled invoice decides %+v, want a credit of %s", d, amount)
			}
		}
	})

	t.Run("ExpiredCreditsNothing", func(t *testing.T) {
		t.Parallel()
		p := setup(t)
		if p.Expire == nil {
			t.Skip("this processor cannot expire invoices from a test")
		}
		req, inv := open(t, p, "")
		p.Expire(t, inv.Ref)
		got, err := p.Payments.Invoice(ctx, inv.Ref)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != domain.InvoiceExpired || got.Exception != domain.ExceptionNone {
			t.Errorf("expired invoice is %s/%s, want Expired/None", got.Status, got.Exception)
		}
		if d := domain.DecideTopup(got, req.TopupID, req.Amount); d.Outcome != domain.OutcomeExpired || d.Credit.Sign() != 0 || d.Review != "" {
			t.Errorf("expired invoice decides %+v, want expired, no credit, no review", d)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		t.Parallel()
		p := setup(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := p.Payments.OpenInvoice(cctx, domain.InvoiceRequest{TopupID: uuid.NewString(), Amount: amount}); err == nil {
			t.Error("OpenInvoice with a cancelled context succeeded")
		}
	})
}

// checkInvoice checks what every answer about req's invoice carries.
func checkInvoice(t *testing.T, p Processor, req domain.InvoiceRequest, inv domain.Invoice) {
	t.Helper()
	if inv.Ref == "" || inv.TopupID != req.TopupID || inv.Amount.Cmp(req.Amount) != 0 || inv.Currency != "USD" {
		t.Errorf("invoice %q for top-up %q of %s %s; want one for top-up %q of %s USD",
			inv.Ref, inv.TopupID, inv.Amount, inv.Currency, req.TopupID, req.Amount)
	}
	if req.AccountID != "" && inv.AccountID != req.AccountID {
		t.Errorf("invoice account %q, want %q", inv.AccountID, req.AccountID)
	}
	if inv.CheckoutLink == "" || inv.CreatedAt.IsZero() {
		t.Errorf("invoice has checkout link %q, created %v", inv.CheckoutLink, inv.CreatedAt)
	}
	if p.MaxExpiry > 0 && (!inv.ExpiresAt.After(inv.CreatedAt) || inv.ExpiresAt.Sub(inv.CreatedAt) > p.MaxExpiry) {
		t.Errorf("invoice created %v expires %v; want within %v", inv.CreatedAt, inv.ExpiresAt, p.MaxExpiry)
	}
	if len(inv.Methods) == 0 {
		t.Fatalf("invoice %s offers no payment method", inv.Ref)
	}
	if inv.PayAddress != inv.Methods[0].Destination {
		t.Errorf("pay address %q, want the first method's destination %q", inv.PayAddress, inv.Methods[0].Destination)
	}
	for _, m := range inv.Methods {
		if m.ID == "" || m.Currency == "" || m.Destination == "" || m.Rate.Sign() <= 0 || !positive(m.Amount) {
			t.Errorf("payment method %+v lacks what a payer needs (id, currency, destination, rate, amount)", m)
		}
		if !slices.Contains(p.Offered, m.ID) {
			t.Errorf("payment method %s is not one offered (%v)", m.ID, p.Offered)
		}
	}
}

func positive(s string) bool {
	var d apd.Decimal
	_, _, err := d.SetString(s)
	return err == nil && d.Form == apd.Finite && d.Sign() > 0
}

func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}
