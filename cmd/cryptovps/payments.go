package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/upstream/btcpay"
)

// paymentsSetup is the payment processor serve runs with.
type paymentsSetup struct {
	Mode     string
	Payments domain.Payments // nil: the sandbox's
	Webhooks api.Webhooks
}

// checkPairing refuses a real cloud paid with play money: it would hand
// out real servers for simulated payments.
func checkPairing(cloud, payments string, unsafeSandboxPayments bool) error {
	if cloud != domain.UpstreamSandbox && payments == domain.UpstreamSandbox && !unsafeSandboxPayments {
		return fmt.Errorf("--cloud %s with --payments sandbox would give real servers for simulated payments; "+
			"use --payments btcpay, or --unsafe-sandbox-payments if that is really what you want", cloud)
	}
	return nil
}

// payments opens the processor of --payments. BTCPay's credentials are
// checked at once (a cheap authenticated call): missing or refused ones
// fail the start with a message naming what to fix.
func (c *config) payments(ctx context.Context, log *slog.Logger) (paymentsSetup, error) {
	switch c.Payments {
	case domain.UpstreamSandbox:
		return paymentsSetup{Mode: domain.UpstreamSandbox}, nil
	case domain.UpstreamBTCPay:
	default:
		return paymentsSetup{}, fmt.Errorf("--payments %q: sandbox or btcpay", c.Payments)
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"--btcpay-url (BTCPAY_URL)", c.BTCPayURL},
		{"--btcpay-api-key (BTCPAY_API_KEY)", c.BTCPayAPIKey}, {"--btcpay-store-id (BTCPAY_STORE_ID)", c.BTCPayStoreID},
		{"--btcpay-webhook-secret (BTCPAY_WEBHOOK_SECRET)", c.BTCPayWebhookSecret}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return paymentsSetup{}, fmt.Errorf("--payments btcpay needs %v", missing)
	}
	client, err := btcpay.New(btcpay.Config{URL: c.BTCPayURL, APIKey: c.BTCPayAPIKey, StoreID: c.BTCPayStoreID,
		WebhookSecret: c.BTCPayWebhookSecret, InvoiceExpiry: c.BTCPayInvoiceExpiry}, log)
	if err != nil {
		return paymentsSetup{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := client.Check(cctx); err != nil {
		if errors.Is(err, domain.ErrPaymentsCredentials) {
			return paymentsSetup{}, fmt.Errorf("BTCPay refused the API key or does not know store %q (the key needs "+
				"btcpay.store.cancreateinvoice and btcpay.store.canviewinvoices on it): %w", c.BTCPayStoreID, err)
		}
		return paymentsSetup{}, fmt.Errorf("cannot reach BTCPay at %s: %w", c.BTCPayURL, err)
	}
	return paymentsSetup{Mode: domain.UpstreamBTCPay, Payments: client, Webhooks: client}, nil
}
