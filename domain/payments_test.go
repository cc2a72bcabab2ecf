package domain_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/domain"
)

// The money rules, one row per state an invoice can reach.
func TestDecideTopup(t *testing.T) {
	m := domain.MustMoney
	inv := func(status domain.InvoiceStatus, ex domain.InvoiceException, paid string) domain.Invoice {
		return domain.Invoice{Ref: "inv-1", TopupID: "top-1", Amount: m("25.00"), Currency: "USD", Paid: m(paid),
			Status: status, Exception: ex}
	}
	for _, tc := range []struct {
		name   string
		inv    domain.Invoice
		out    domain.Outcome
		credit string // "" for none
		review string // substring of the review; "" for none
	}{
		{"new", inv(domain.InvoiceNew, domain.ExceptionNone, "0"), domain.OutcomePending, "", ""},
		{"new, partly paid", inv(domain.InvoiceNew, domain.ExceptionPaidPartial, "10.00"), domain.OutcomePending, "", ""},
		{"processing", inv(domain.InvoiceProcessing, domain.ExceptionNone, "25.00"), domain.OutcomeProcessing, "", ""},
		{"processing, overpaid", inv(domain.InvoiceProcessing, domain.ExceptionPaidOver, "30.00"), domain.OutcomeProcessing, "", ""},
		{"settled", inv(domain.InvoiceSettled, domain.ExceptionNone, "25.00"), domain.OutcomeCredit, "25.00", ""},
		{"settled, no additional status", inv(domain.InvoiceSettled, "", "25.00"), domain.OutcomeCredit, "25.00", ""},
		{"settled, overpaid: the invoice amount", inv(domain.InvoiceSettled, domain.ExceptionPaidOver, "40.00"), domain.OutcomeCredit, "25.00", "overpaid: 40.00"},
		{"settled by hand", inv(domain.InvoiceSettled, domain.ExceptionMarked, "0"), domain.OutcomeHold, "", "marked settled by hand"},
		{"settled late", inv(domain.InvoiceSettled, domain.ExceptionPaidLate, "25.00"), domain.OutcomeHold, "", "after expiry"},
		{"settled under tolerance", inv(domain.InvoiceSettled, domain.ExceptionPaidPartial, "24.90"), domain.OutcomeHold, "", "PaidPartial"},
		{"expired", inv(domain.InvoiceExpired, domain.ExceptionNone, "0"), domain.OutcomeExpired, "", ""},
		{"expired, partly paid", inv(domain.InvoiceExpired, domain.ExceptionPaidPartial, "10.00"), domain.OutcomeExpired, "", "partly paid (10.00 of 25.00"},
		{"expired, paid late", inv(domain.InvoiceExpired, domain.ExceptionPaidLate, "25.00"), domain.OutcomeExpired, "", "paid after expiry"},
		{"invalid", inv(domain.InvoiceInvalid, domain.ExceptionNone, "0"), domain.OutcomeInvalid, "", ""},
		{"marked invalid", inv(domain.InvoiceInvalid, domain.ExceptionMarked, "0"), domain.OutcomeInvalid, "", ""},
		{"invalid after a payment", inv(domain.InvoiceInvalid, domain.ExceptionInvalid, "25.00"), domain.OutcomeInvalid, "", "invalid after 25.00"},
		{"unknown status", inv("Paid", domain.ExceptionNone, "25.00"), domain.OutcomeHold, "", "unknown invoice status"},
		{"another top-up's invoice", func() domain.Invoice {
			i := inv(domain.InvoiceSettled, domain.ExceptionNone, "25.00")
			i.TopupID = "top-2"
			return i
		}(), domain.OutcomeHold, "", "for top-up \"top-2\""},
		{"another amount", func() domain.Invoice {
			i := inv(domain.InvoiceSettled, domain.ExceptionNone, "2500.00")
			i.Amount = m("2500.00")
			return i
		}(), domain.OutcomeHold, "", "2500.00 USD"},
		{"another currency", func() domain.Invoice {
			i := inv(domain.InvoiceSettled, domain.ExceptionNone, "25.00")
			i.Currency = "EUR"
			return i
		}(), domain.OutcomeHold, "", "EUR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := domain.DecideTopup(tc.inv, "top-1", m("25.00"))
			credit := ""
			if d.Credit.Sign() != 0 {
				credit = d.Credit.String()
			}
			if d.Outcome != tc.out || credit != tc.credit {
				t.Errorf("DecideTopup = %+v, want %s crediting %q", d, tc.out, tc.credit)
			}
			if (tc.review == "") != (d.Review == "") || !strings.Contains(d.Review, tc.review) {
				t.Errorf("review %q, want one containing %q", d.Review, tc.review)
			}
			if d.Outcome != domain.OutcomeCredit && d.Credit.Sign() != 0 {
				t.Errorf("%s credits %s", d.Outcome, d.Credit)
			}
		})
	}
}

func TestPaymentMethodID(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "btc": "BTC-CHAIN", " BTC ": "BTC-CHAIN", "BTC-CHAIN": "BTC-CHAIN", "btc-ln": "BTC-LN",
		"BTC-LightningNetwork": "BTC-LN", "BTC_LightningLike": "BTC-LN", "BTC-LNURL": "BTC-LNURL", "ltc-onchain": "LTC-CHAIN",
	} {
		if got := domain.PaymentMethodID(in); got != want {
			t.Errorf("PaymentMethodID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMethodNotOfferedError(t *testing.T) {
	var err error = &domain.MethodNotOfferedError{Requested: "DOGE", Offered: []string{"BTC-CHAIN", "BTC-LN"}}
	if !errors.Is(err, domain.ErrMethodNotOffered) || err.Error() != `payment method "DOGE" is not offered; offered: BTC-CHAIN, BTC-LN` {
		t.Errorf("%v", err)
	}
}
