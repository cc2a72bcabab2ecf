package btcpay_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/upstream/btcpay"
	"github.com/cryptovps/cryptovps/upstream/paymentstest"
)

// TestLive runs the contract against a real BTCPay store, only when
// CRYPTOVPS_TEST_BTCPAY_URL, CRYPTOVPS_TEST_BTCPAY_API_KEY and
// CRYPTOVPS_TEST_BTCPAY_STORE_ID are set (use a testnet or regtest store:
// it creates invoices, which expire unpaid). Paying and expiring cannot be
// driven from here, so those tests skip.
func TestLive(t *testing.T) {
	url := os.Getenv("CRYPTOVPS_TEST_BTCPAY_URL")
	key := os.Getenv("CRYPTOVPS_TEST_BTCPAY_API_KEY")
	store := os.Getenv("CRYPTOVPS_TEST_BTCPAY_STORE_ID")
	if url == "" {
		t.Skip("CRYPTOVPS_TEST_BTCPAY_URL is not set")
	}
	if key == "" || store == "" {
		t.Fatal("CRYPTOVPS_TEST_BTCPAY_URL is set without CRYPTOVPS_TEST_BTCPAY_API_KEY and CRYPTOVPS_TEST_BTCPAY_STORE_ID")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := btcpay.New(btcpay.Config{URL: url, APIKey: key, StoreID: store, InvoiceExpiry: 15 * time.Minute}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	// The store's methods are whatever its first invoice offers.
	probe, err := c.OpenInvoice(ctx, domain.InvoiceRequest{TopupID: "cryptovps-live-" + uuid.NewString(), Amount: domain.MustMoney("1.00")})
	if err != nil {
		t.Fatalf("OpenInvoice: %v", err)
	}
	var offered []string
	for _, m := range probe.Methods {
		offered = append(offered, m.ID)
	}
	t.Logf("the store offers %v", offered)
	paymentstest.Run(t, func(t *testing.T) paymentstest.Processor {
		return paymentstest.Processor{Payments: c, Offered: offered, MaxExpiry: 16 * time.Minute}
	})
}
