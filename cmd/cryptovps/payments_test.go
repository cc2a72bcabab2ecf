package main

import (
	"context"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/upstream/btcpay/btcpayfake"
)

func parsedConfig(t *testing.T, args ...string) *config {
	t.Helper()
	var cfg config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.flags(fs)
	if err := parse(fs, args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return &cfg
}

func TestPaymentsFlagsAndTheirConventionalEnvironment(t *testing.T) {
	fake := btcpayfake.New(t, btcpayfake.Options{})
	o := fake.Options()
	t.Setenv("CRYPTOVPS_PAYMENTS", "btcpay")
	t.Setenv("BTCPAY_URL", fake.URL())
	t.Setenv("BTCPAY_API_KEY", o.APIKey)
	t.Setenv("BTCPAY_STORE_ID", o.StoreID)
	t.Setenv("BTCPAY_WEBHOOK_SECRET", o.WebhookSecret)
	ctx := context.Background()

	pay, err := parsedConfig(t).payments(ctx, nil)
	if err != nil || pay.Mode != domain.UpstreamBTCPay || pay.Payments == nil || pay.Webhooks == nil {
		t.Fatalf("btcpay from the environment: %+v, %v", pay, err)
	}
	// A refused key fails the start, saying what the key needs.
	_, err = parsedConfig(t, "--btcpay-api-key", "wrong").payments(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "btcpay.store.canviewinvoices") {
		t.Errorf("a refused key: %v", err)
	}
	// A missing setting is named.
	t.Setenv("BTCPAY_WEBHOOK_SECRET", "")
	_, err = parsedConfig(t).payments(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "BTCPAY_WEBHOOK_SECRET") {
		t.Errorf("no webhook secret: %v", err)
	}
	if _, err := parsedConfig(t, "--payments", "paypal").payments(ctx, nil); err == nil {
		t.Error("--payments paypal accepted")
	}
	if pay, err := parsedConfig(t, "--payments", "sandbox").payments(ctx, nil); err != nil || pay.Mode != domain.UpstreamSandbox || pay.Payments != nil {
		t.Errorf("sandbox: %+v, %v", pay, err)
	}
}

func TestARealCloudWithPlayMoneyNeedsTheUnsafeFlag(t *testing.T) {
	if err := checkPairing(domain.UpstreamVultr, domain.UpstreamSandbox, false); err == nil {
		t.Error("vultr with sandbox payments started")
	}
	for _, ok := range [][2]string{{domain.UpstreamVultr, domain.UpstreamBTCPay}, {domain.UpstreamSandbox, domain.UpstreamBTCPay},
		{domain.UpstreamSandbox, domain.UpstreamSandbox}} {
		if err := checkPairing(ok[0], ok[1], false); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
	if err := checkPairing(domain.UpstreamVultr, domain.UpstreamSandbox, true); err != nil {
		t.Errorf("with --unsafe-sandbox-payments: %v", err)
	}
}
