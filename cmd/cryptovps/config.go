package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/upstream/vultr"
)

// config is every knob of the service, parsed once here and passed down.
type config struct {
	Addr           string
	AdminAddr      string
	DataDir        string
	BaseURL        string
	SignupCredit   string
	ServerLimit    int
	ProvisionDelay time.Duration
	DestroyDelay   time.Duration
	BackupDelay    time.Duration
	TokenTTL       time.Duration
	JWTSecret      string
	AdminToken     string
	TrustedProxies string
	RateLimit      int
	AuthRateLimit  int
	WorkInterval   time.Duration
	LogFormat      string
	LogLevel       string
	DatabaseURL    string
	EventStoreURL  string
	SandboxCloud   string
	Cloud          string
	VultrAPIKey    string
	VultrURL       string
	VultrOSID      int
	VultrActivate  time.Duration
	SecretsKey     string

	// Payments: sandbox or btcpay, with BTCPay's settings.
	Payments              string
	BTCPayURL             string
	BTCPayAPIKey          string
	BTCPayStoreID         string
	BTCPayWebhookSecret   string
	BTCPayInvoiceExpiry   time.Duration
	UnsafeSandboxPayments bool
	ReadyMaxLag           time.Duration

	// AdminTokenPrevious is accepted beside AdminToken while the operator
	// token is rotated.
	AdminTokenPrevious string
	// JWTSecretPrevious is the secret being rotated away from: tokens it
	// signed are still accepted.
	JWTSecretPrevious string
}

// flags declares the shared flags of every subcommand that opens the data.
func (c *config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", ":8080", "listen address")
	fs.StringVar(&c.AdminAddr, "admin-addr", "", "listen address of the operator API (/admin, /metrics), which then answers 404 on --addr (default: "+defaultAdminAddr+" in production; in the sandbox, on --addr)")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "directory of the embedded event store and secrets")
	fs.StringVar(&c.BaseURL, "base-url", "", "public base URL printed in /llms.txt and /docs, never taken from a request (required in production, https; default in the sandbox: http://localhost:PORT of --addr)")
	fs.StringVar(&c.SignupCredit, "signup-credit", "", "credit for new accounts in USD (default 10.00 in sandbox mode, 0 otherwise)")
	fs.IntVar(&c.ServerLimit, "server-limit", 10, "live servers a new account may hold")
	fs.DurationVar(&c.ProvisionDelay, "provision-delay", 60*time.Second, "sandbox: time from deploy to ACTIVE")
	fs.DurationVar(&c.DestroyDelay, "destroy-delay", 5*time.Second, "sandbox: time from DESTROYING to DESTROYED")
	fs.DurationVar(&c.BackupDelay, "backup-delay", 3*time.Minute, "sandbox: time from backup request to AVAILABLE")
	fs.DurationVar(&c.TokenTTL, "token-ttl", 15*time.Minute, "access token lifetime")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "HS256 secret for access tokens (default: generated and kept in the data dir)")
	fs.StringVar(&c.JWTSecretPrevious, "jwt-secret-previous", "", "during a rotation of --jwt-secret: the secret before, whose tokens are still accepted (see README)")
	fs.StringVar(&c.AdminToken, "admin-token", "", "operator token for /admin and /metrics, at least 32 random bytes, e.g. from: openssl rand -hex 32 (default: generated and kept in the data dir)")
	fs.StringVar(&c.AdminTokenPrevious, "admin-token-previous", "", "the operator token being rotated out, still accepted until the next restart without it")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated CIDRs of proxies whose X-Forwarded-For is believed")
	fs.IntVar(&c.RateLimit, "rate-limit", 100, "requests per minute per account")
	fs.IntVar(&c.AuthRateLimit, "auth-rate-limit", 10, "requests per minute per client IP on /auth/*")
	fs.DurationVar(&c.WorkInterval, "work-interval", time.Second, "how often background work (provisioning, billing) runs")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL URL for the read models (env DATABASE_URL)")
	fs.StringVar(&c.EventStoreURL, "eventstore-url", "", "KurrentDB connection string (env EVENTSTORE_URL)")
	fs.StringVar(&c.Cloud, "cloud", domain.UpstreamSandbox, "where servers run: sandbox (simulated) or vultr (real, needs --vultr-api-key)")
	fs.StringVar(&c.VultrAPIKey, "vultr-api-key", "", "Vultr API key (env VULTR_API_KEY); kept in memory only, never logged")
	fs.StringVar(&c.VultrURL, "vultr-url", "https://api.vultr.com/", "Vultr API base URL, paths /v2/... below it (a proxy or a test double)")
	fs.IntVar(&c.VultrOSID, "vultr-os-id", vultr.DefaultOSID, "Vultr os_id of the image new servers get")
	fs.DurationVar(&c.VultrActivate, "vultr-activation-timeout", vultr.DefaultActivationTimeout, "a deploy Vultr has not made active by then ends in ERROR and is refunded")
	fs.StringVar(&c.SecretsKey, "secrets-key", "", "64 hex digits: the key sealing root passwords in the log, wrapping the data keys of personal data and keying the login index (default: generated and kept in the data dir; every process on one log needs the same)")
	fs.StringVar(&c.Payments, "payments", "sandbox", "payment processor: sandbox (simulated) or btcpay")
	fs.StringVar(&c.BTCPayURL, "btcpay-url", "", "BTCPay Server base URL (env BTCPAY_URL)")
	fs.StringVar(&c.BTCPayAPIKey, "btcpay-api-key", "", "BTCPay API key with btcpay.store.cancreateinvoice and btcpay.store.canviewinvoices (env BTCPAY_API_KEY)")
	fs.StringVar(&c.BTCPayStoreID, "btcpay-store-id", "", "BTCPay store id (env BTCPAY_STORE_ID)")
	fs.StringVar(&c.BTCPayWebhookSecret, "btcpay-webhook-secret", "", "secret of the store's webhook to /webhooks/btcpay (env BTCPAY_WEBHOOK_SECRET)")
	fs.DurationVar(&c.BTCPayInvoiceExpiry, "btcpay-invoice-expiry", 15*time.Minute, "how long a top-up's invoice can be paid (at most 24h)")
	fs.BoolVar(&c.UnsafeSandboxPayments, "unsafe-sandbox-payments", false, "allow a real cloud with simulated payments (never in production)")
	fs.DurationVar(&c.ReadyMaxLag, "ready-max-lag", 10*time.Second, "/readyz answers 503 while the read model is further behind the log than this")
	fs.StringVar(&c.SandboxCloud, "sandbox-cloud", "", "sandbox: file of the simulated cloud, shared by every API process on one event store (default <data-dir>/sandbox-cloud.json)")
}

// sandboxCloudPath is the simulated cloud's file.
func (c *config) sandboxCloudPath() string {
	if c.SandboxCloud != "" {
		return c.SandboxCloud
	}
	return filepath.Join(c.DataDir, "sandbox-cloud.json")
}

// parse reads flags, then fills every flag not given on the command line from
// its environment variable: CRYPTOVPS_<NAME>, or the conventional
// DATABASE_URL and EVENTSTORE_URL.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		names := []string{"CRYPTOVPS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))}
		switch f.Name {
		case "database-url":
			names = append(names, "DATABASE_URL")
		case "eventstore-url":
			names = append(names, "EVENTSTORE_URL")
		case "vultr-api-key":
			names = append(names, "VULTR_API_KEY")
		case "btcpay-url", "btcpay-api-key", "btcpay-store-id", "btcpay-webhook-secret":
			names = append(names, strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")))
		}
		for _, env := range names {
			if v, ok := os.LookupEnv(env); ok && v != "" {
				if err := f.Value.Set(v); err != nil {
					errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
				}
				return
			}
		}
	})
	return errors.Join(errs...)
}

func (c *config) signupCredit(sandbox bool) (domain.Money, error) {
	s := c.SignupCredit
	if s == "" {
		s = "0"
		if sandbox {
			s = "10.00"
		}
	}
	m, err := domain.ParseMoney(s)
	if err != nil || m.Sign() < 0 {
		return domain.Money{}, fmt.Errorf("--signup-credit %q: must be a non-negative decimal", s)
	}
	return m, nil
}

func (c *config) trustedProxies() ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, part := range strings.Split(c.TrustedProxies, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "/") {
			if ip := net.ParseIP(part); ip != nil && ip.To4() != nil {
				part += "/32"
			} else {
				part += "/128"
			}
		}
		_, n, err := net.ParseCIDR(part)
		if err != nil {
			return nil, fmt.Errorf("--trusted-proxies: %w", err)
		}
		out = append(out, n)
	}
	return out, nil
}

// secret returns value, or the secret kept in the data dir under name,
// generating it (0600) on first use. A kept file other users can read is
// refused.
func secret(dataDir, name, value string) (string, error) {
	if value != "" {
		return value, nil
	}
	path := filepath.Join(dataDir, name)
	if err := checkPrivate(path); err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	v := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return v, nil
}
