package btcpay_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/upstream/btcpay"
	"github.com/cryptovps/cryptovps/upstream/btcpay/btcpayfake"
	"github.com/cryptovps/cryptovps/upstream/paymentstest"
)

const expiry = 15 * time.Minute

// setup starts a fake store and a client of it; tweak adjusts the config.
func setup(t *testing.T, tweak func(*btcpay.Config)) (*btcpayfake.Server, *btcpay.Client) {
	t.Helper()
	fake := btcpayfake.New(t, btcpayfake.Options{})
	o := fake.Options()
	cfg := btcpay.Config{URL: fake.URL(), APIKey: o.APIKey, StoreID: o.StoreID, WebhookSecret: o.WebhookSecret,
		InvoiceExpiry: expiry, Backoff: time.Millisecond}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := btcpay.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return fake, c
}

func TestContract(t *testing.T) {
	paymentstest.Run(t, func(t *testing.T) paymentstest.Processor {
		fake, c := setup(t, nil)
		return paymentstest.Processor{Payments: c, Offered: fake.Options().Methods, MaxExpiry: expiry,
			Settle: func(_ *testing.T, ref string) { fake.Settle(ref) },
			Expire: func(_ *testing.T, ref string) { fake.Expire(ref) },
		}
	})
}

var ctx = context.Background()

func newRequest() domain.InvoiceRequest {
	return domain.InvoiceRequest{TopupID: uuid.NewString(), AccountID: uuid.NewString(), Amount: domain.MustMoney("25.00")}
}

func TestNewRefusesBadConfig(t *testing.T) {
	good := btcpay.Config{URL: "https://pay.example", APIKey: "k", StoreID: "s"}
	for name, tweak := range map[string]func(*btcpay.Config){
		"no url":       func(c *btcpay.Config) { c.URL = "" },
		"ftp url":      func(c *btcpay.Config) { c.URL = "ftp://pay.example" },
		"url user":     func(c *btcpay.Config) { c.URL = "https://u:p@pay.example" },
		"no key":       func(c *btcpay.Config) { c.APIKey = " " },
		"no store":     func(c *btcpay.Config) { c.StoreID = "" },
		"long expiry":  func(c *btcpay.Config) { c.InvoiceExpiry = 25 * time.Hour },
		"neg. timeout": func(c *btcpay.Config) { c.Timeout = -1 },
	} {
		cfg := good
		tweak(&cfg)
		if _, err := btcpay.New(cfg, nil); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	if _, err := btcpay.New(good, nil); err != nil {
		t.Errorf("New(%+v): %v", good, err)
	}
}

func TestCheckRefusesBadCredentials(t *testing.T) {
	for name, tweak := range map[string]func(*btcpay.Config){
		"wrong key":   func(c *btcpay.Config) { c.APIKey = "wrong" },
		"wrong store": func(c *btcpay.Config) { c.StoreID = "OtherStore" },
	} {
		_, c := setup(t, tweak)
		if err := c.Check(ctx); !errors.Is(err, domain.ErrPaymentsCredentials) {
			t.Errorf("%s: Check = %v, want ErrPaymentsCredentials", name, err)
		}
		if _, err := c.OpenInvoice(ctx, newRequest()); !errors.Is(err, domain.ErrPaymentsCredentials) {
			t.Errorf("%s: OpenInvoice = %v, want ErrPaymentsCredentials", name, err)
		}
	}
}

// The creation happens but its answer is lost: the invoice is found by
// orderId, and opening the top-up again never makes a second invoice.
func TestLostCreateAnswerMakesOneInvoice(t *testing.T) {
	fake, c := setup(t, nil)
	req := newRequest()
	fake.LoseAnswer(btcpayfake.OpCreateInvoice, 1)
	inv, err := c.OpenInvoice(ctx, req)
	if err != nil {
		t.Fatalf("OpenInvoice after a lost answer: %v", err)
	}
	again, err := c.OpenInvoice(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	ids := fake.InvoicesFor(req.TopupID)
	if len(ids) != 1 || inv.Ref != ids[0] || again.Ref != ids[0] {
		t.Errorf("invoices %v for the top-up; answers %s and %s", ids, inv.Ref, again.Ref)
	}
	if n := fake.Calls(btcpayfake.OpCreateInvoice); n != 1 {
		t.Errorf("%d creations, want 1", n)
	}
}

// The answer is lost and BTCPay stays down: the error says unavailable,
// and a later call finds the invoice instead of creating one.
func TestLostCreateAnswerThenOutage(t *testing.T) {
	fake, c := setup(t, nil)
	req := newRequest()
	fake.LoseAnswer(btcpayfake.OpCreateInvoice, 1)
	// The look-up before creating passes; the one after (3 attempts) fails.
	fake.FailAfter(btcpayfake.OpListInvoices, 1, 3, http.StatusServiceUnavailable)
	if _, err := c.OpenInvoice(ctx, req); !errors.Is(err, domain.ErrPaymentsUnavailable) {
		t.Fatalf("OpenInvoice = %v, want ErrPaymentsUnavailable", err)
	}
	inv, err := c.OpenInvoice(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ids := fake.InvoicesFor(req.TopupID); len(ids) != 1 || ids[0] != inv.Ref {
		t.Errorf("invoices %v, answer %s; want one", ids, inv.Ref)
	}
	if n := fake.Calls(btcpayfake.OpCreateInvoice); n != 1 {
		t.Errorf("%d creations, want 1", n)
	}
}

func TestFiveHundredsAndTimeouts(t *testing.T) {
	t.Run("GET retried", func(t *testing.T) {
		fake, c := setup(t, nil)
		inv, err := c.OpenInvoice(ctx, newRequest())
		if err != nil {
			t.Fatal(err)
		}
		fake.Fail(btcpayfake.OpGetInvoice, 2, http.StatusBadGateway)
		if _, err := c.Invoice(ctx, inv.Ref); err != nil {
			t.Errorf("Invoice after 2 failures (2 retries): %v", err)
		}
		fake.Fail(btcpayfake.OpGetInvoice, 3, http.StatusInternalServerError)
		_, err = c.Invoice(ctx, inv.Ref)
		var se *btcpay.StatusError
		if !errors.Is(err, domain.ErrPaymentsUnavailable) || !errors.As(err, &se) || se.Status != 500 {
			t.Errorf("Invoice after 3 failures = %v, want ErrPaymentsUnavailable (HTTP 500)", err)
		}
	})
	t.Run("POST not retried", func(t *testing.T) {
		fake, c := setup(t, nil)
		req := newRequest()
		fake.Fail(btcpayfake.OpCreateInvoice, 1, http.StatusInternalServerError)
		if _, err := c.OpenInvoice(ctx, req); !errors.Is(err, domain.ErrPaymentsUnavailable) {
			t.Errorf("OpenInvoice = %v, want ErrPaymentsUnavailable", err)
		}
		if n := fake.Calls(btcpayfake.OpCreateInvoice); n != 1 {
			t.Errorf("%d creation attempts, want 1", n)
		}
		if _, err := c.OpenInvoice(ctx, req); err != nil {
			t.Fatal(err)
		}
		if ids := fake.InvoicesFor(req.TopupID); len(ids) != 1 {
			t.Errorf("invoices %v, want one", ids)
		}
	})
	t.Run("timeouts", func(t *testing.T) {
		fake, c := setup(t, func(c *btcpay.Config) { c.Timeout = 2 * time.Second })
		inv, err := c.OpenInvoice(ctx, newRequest())
		if err != nil {
			t.Fatal(err)
		}
		fake.Stall(btcpayfake.OpGetInvoice, 1)
		if _, err := c.Invoice(ctx, inv.Ref); err != nil {
			t.Errorf("Invoice after one timeout: %v", err)
		}
		req := newRequest()
		fake.Stall(btcpayfake.OpCreateInvoice, 1)
		_, err = c.OpenInvoice(ctx, req)
		if !errors.Is(err, domain.ErrPaymentsUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("OpenInvoice timing out = %v, want ErrPaymentsUnavailable and a deadline", err)
		}
		if ids := fake.InvoicesFor(req.TopupID); len(ids) != 0 {
			t.Errorf("invoices %v after a creation that never arrived", ids)
		}
	})
	t.Run("caller's deadline", func(t *testing.T) {
		fake, c := setup(t, nil)
		fake.Stall("", 1)
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if err := c.Check(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Check = %v, want the caller's deadline", err)
		}
	})
}

func TestMethodNotOfferedNamesOffered(t *testing.T) {
	_, c := setup(t, nil)
	req := newRequest()
	req.Method = "LTC"
	_, err := c.OpenInvoice(ctx, req)
	var mn *domain.MethodNotOfferedError
	if !errors.As(err, &mn) || strings.Join(mn.Offered, ",") != "BTC-CHAIN,BTC-LN" || mn.Requested != "LTC" {
		t.Fatalf("OpenInvoice(LTC) = %v, want a refusal naming BTC-CHAIN, BTC-LN", err)
	}
	req.Method = "btc-lightningnetwork"
	inv, err := c.OpenInvoice(ctx, req)
	if err != nil || len(inv.Methods) != 1 || inv.Methods[0].ID != "BTC-LN" || !strings.HasPrefix(inv.PayAddress, "lnbcrt") {
		t.Errorf("OpenInvoice(Lightning) = %+v, %v; want the BOLT11 only", inv, err)
	}
}

// The states BTCPay reaches, read back through the client, decide as the
// package documents.
func TestStatesDecide(t *testing.T) {
	amount := domain.MustMoney("25.00")
	for _, tc := range []struct {
		name   string
		do     func(f *btcpayfake.Server, id string)
		status domain.InvoiceStatus
		ex     domain.InvoiceException
		out    domain.Outcome
		credit string
		review bool
	}{
		{"new", func(*btcpayfake.Server, string) {}, domain.InvoiceNew, domain.ExceptionNone, domain.OutcomePending, "", false},
		{"underpaid", func(f *btcpayfake.Server, id string) { f.Pay(id, domain.MustMoney("10.00"), true) },
			domain.InvoiceNew, domain.ExceptionPaidPartial, domain.OutcomePending, "", false},
		{"underpaid then expired", func(f *btcpayfake.Server, id string) {
			f.Pay(id, domain.MustMoney("10.00"), true)
			f.Expire(id)
		}, domain.InvoiceExpired, domain.ExceptionPaidPartial, domain.OutcomeExpired, "", true},
		{"unconfirmed", func(f *btcpayfake.Server, id string) { f.Pay(id, amount, false) },
			domain.InvoiceProcessing, domain.ExceptionNone, domain.OutcomeProcessing, "", false},
		{"settled", func(f *btcpayfake.Server, id string) { f.Settle(id) },
			domain.InvoiceSettled, domain.ExceptionNone, domain.OutcomeCredit, "25.00", false},
		{"overpaid", func(f *btcpayfake.Server, id string) { f.Pay(id, domain.MustMoney("40.00"), true) },
			domain.InvoiceSettled, domain.ExceptionPaidOver, domain.OutcomeCredit, "25.00", true},
		{"paid late", func(f *btcpayfake.Server, id string) {
			f.Advance(expiry + time.Minute)
			f.Settle(id)
		}, domain.InvoiceExpired, domain.ExceptionPaidLate, domain.OutcomeExpired, "", true},
		{"expired", func(f *btcpayfake.Server, id string) { f.Expire(id) },
			domain.InvoiceExpired, domain.ExceptionNone, domain.OutcomeExpired, "", false},
		{"marked settled", func(f *btcpayfake.Server, id string) { f.Mark(id, "Settled") },
			domain.InvoiceSettled, domain.ExceptionMarked, domain.OutcomeHold, "", true},
		{"marked invalid", func(f *btcpayfake.Server, id string) { f.Mark(id, "Invalid") },
			domain.InvoiceInvalid, domain.ExceptionMarked, domain.OutcomeInvalid, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake, c := setup(t, nil)
			req := newRequest()
			inv, err := c.OpenInvoice(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			tc.do(fake, inv.Ref)
			got, err := c.Invoice(ctx, inv.Ref)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.status || got.Exception != tc.ex {
				t.Errorf("invoice is %s/%s, want %s/%s", got.Status, got.Exception, tc.status, tc.ex)
			}
			d := domain.DecideTopup(got, req.TopupID, req.Amount)
			credit := ""
			if d.Credit.Sign() != 0 {
				credit = d.Credit.String()
			}
			if d.Outcome != tc.out || credit != tc.credit || (d.Review != "") != tc.review {
				t.Errorf("decision %+v, want %s credit %q review %v", d, tc.out, tc.credit, tc.review)
			}
		})
	}
}

// The API key never reaches the logs, even when calls fail.
func TestAPIKeyNeverLogged(t *testing.T) {
	var buf bytes.Buffer
	fake := btcpayfake.New(t, btcpayfake.Options{APIKey: "SECRET-KEY-4242"})
	o := fake.Options()
	cfg := btcpay.Config{URL: fake.URL(), APIKey: o.APIKey, StoreID: o.StoreID, WebhookSecret: "SECRET-HOOK-4242",
		Backoff: time.Millisecond}
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := btcpay.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("config", "btcpay", cfg)
	fake.Fail("", 3, http.StatusBadGateway)
	_ = c.Check(ctx)
	if _, err := c.OpenInvoice(ctx, newRequest()); err != nil {
		t.Fatal(err)
	}
	if buf.Len() == 0 {
		t.Fatal("nothing logged")
	}
	if s := buf.String(); strings.Contains(s, "SECRET") {
		t.Errorf("a secret was logged:\n%s", s)
	}
	_ = io.Discard
}
