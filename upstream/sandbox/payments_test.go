package sandbox_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/upstream/paymentstest"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const expiry = 15 * time.Minute

func newPayments() (sandbox.Payments, *sandbox.Clock) {
	clock := sandbox.NewClock(func() time.Time { return start }, 0)
	return sandbox.NewPayments(clock, sandbox.PaymentsOptions{Expiry: expiry}), clock
}

func TestPaymentsContract(t *testing.T) {
	paymentstest.Run(t, func(t *testing.T) paymentstest.Processor {
		p, clock := newPayments()
		return paymentstest.Processor{Payments: p, Offered: sandbox.DefaultPaymentMethods, MaxExpiry: expiry,
			Settle: func(t *testing.T, ref string) {
				if _, err := p.Settle(context.Background(), ref); err != nil {
					t.Fatal(err)
				}
			},
			Expire: func(t *testing.T, ref string) { clock.SetOffset(clock.Offset() + expiry) },
		}
	})
}

// Another process, or this one restarted, reads an invoice from its ref
// alone, and /sandbox/topups/:id/pay can settle it.
func TestPaymentsReadInvoicesOfOtherProcesses(t *testing.T) {
	ctx := context.Background()
	a, clock := newPayments()
	inv, err := a.OpenInvoice(ctx, domain.InvoiceRequest{TopupID: "t-1", AccountID: "acc", Amount: domain.MustMoney("12.50")})
	if err != nil {
		t.Fatal(err)
	}
	b := sandbox.NewPayments(clock, sandbox.PaymentsOptions{Expiry: expiry})
	got, err := b.Invoice(ctx, inv.Ref)
	if err != nil {
		t.Fatal(err)
	}
	if got.TopupID != "t-1" || got.Amount.Cmp(inv.Amount) != 0 || got.Status != domain.InvoiceNew ||
		!got.ExpiresAt.Equal(inv.ExpiresAt) || got.PayAddress != inv.PayAddress {
		t.Errorf("another process reads %+v, want %+v", got, inv)
	}
	paid, err := b.Settle(ctx, inv.Ref)
	if err != nil || paid.Status != domain.InvoiceSettled {
		t.Fatalf("settling in another process: %+v, %v", paid, err)
	}
	if d := domain.DecideTopup(paid, "t-1", domain.MustMoney("12.50")); d.Outcome != domain.OutcomeCredit {
		t.Errorf("decision %+v, want a credit", d)
	}
	for _, ref := range []string{"sandbox_t-1", "sandbox_t-1_x_1", "sandbox_t-1_1.00_x", "other", "sandbox__1.00_5"} {
		if _, err := b.Invoice(ctx, ref); !errors.Is(err, domain.ErrInvoiceNotFound) {
			t.Errorf("Invoice(%q) = %v, want ErrInvoiceNotFound", ref, err)
		}
	}
}

func TestPaymentsStates(t *testing.T) {
	ctx := context.Background()
	ten := domain.MustMoney("10.00")
	for _, tc := range []struct {
		name   string
		do     func(p sandbox.Payments, clock *sandbox.Clock, ref string) error
		status domain.InvoiceStatus
		ex     domain.InvoiceException
		out    domain.Outcome
		review bool
	}{
		{"partial", func(p sandbox.Payments, _ *sandbox.Clock, ref string) error {
			_, err := p.Pay(ctx, ref, domain.MustMoney("4.00"), true)
			return err
		}, domain.InvoiceNew, domain.ExceptionPaidPartial, domain.OutcomePending, false},
		{"partial then expired", func(p sandbox.Payments, c *sandbox.Clock, ref string) error {
			_, err := p.Pay(ctx, ref, domain.MustMoney("4.00"), true)
			c.SetOffset(expiry)
			return err
		}, domain.InvoiceExpired, domain.ExceptionPaidPartial, domain.OutcomeExpired, true},
		{"unconfirmed", func(p sandbox.Payments, _ *sandbox.Clock, ref string) error {
			_, err := p.Pay(ctx, ref, ten, false)
			return err
		}, domain.InvoiceProcessing, domain.ExceptionNone, domain.OutcomeProcessing, false},
		{"confirmed later", func(p sandbox.Payments, _ *sandbox.Clock, ref string) error {
			if _, err := p.Pay(ctx, ref, ten, false); err != nil {
				return err
			}
			_, err := p.Confirm(ctx, ref)
			return err
		}, domain.InvoiceSettled, domain.ExceptionNone, domain.OutcomeCredit, false},
		{"overpaid", func(p sandbox.Payments, _ *sandbox.Clock, ref string) error {
			_, err := p.Pay(ctx, ref, domain.MustMoney("15.00"), true)
			return err
		}, domain.InvoiceSettled, domain.ExceptionPaidOver, domain.OutcomeCredit, true},
		{"paid late", func(p sandbox.Payments, c *sandbox.Clock, ref string) error {
			c.SetOffset(expiry + time.Second)
			_, err := p.Settle(ctx, ref)
			return err
		}, domain.InvoiceExpired, domain.ExceptionPaidLate, domain.OutcomeExpired, true},
		{"marked settled", func(p sandbox.Payments, _ *sandbox.Clock, ref string) error {
			_, err := p.Mark(ctx, ref, domain.InvoiceSettled)
			return err
		}, domain.InvoiceSettled, domain.ExceptionMarked, domain.OutcomeHold, true},
		{"marked invalid", func(p sandbox.Payments, _ *sandbox.Clock, ref string) error {
			_, err := p.Mark(ctx, ref, domain.InvoiceInvalid)
			return err
		}, domain.InvoiceInvalid, domain.ExceptionMarked, domain.OutcomeInvalid, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, clock := newPayments()
			inv, err := p.OpenInvoice(ctx, domain.InvoiceRequest{TopupID: "t", Amount: ten})
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.do(p, clock, inv.Ref); err != nil {
				t.Fatal(err)
			}
			got, err := p.Invoice(ctx, inv.Ref)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.status || got.Exception != tc.ex {
				t.Errorf("invoice is %s/%s, want %s/%s", got.Status, got.Exception, tc.status, tc.ex)
			}
			if d := domain.DecideTopup(got, "t", ten); d.Outcome != tc.out || (d.Review != "") != tc.review {
				t.Errorf("decision %+v, want %s (review %v)", d, tc.out, tc.review)
			}
		})
	}
}

// The zero Payments is not set up: it refuses rather than pretend.
func TestZeroPaymentsRefuses(t *testing.T) {
	ctx := context.Background()
	if _, err := (sandbox.Payments{}).OpenInvoice(ctx, domain.InvoiceRequest{TopupID: "t", Amount: domain.MustMoney("1.00")}); err == nil {
		t.Error("the zero Payments opened an invoice")
	}
}
