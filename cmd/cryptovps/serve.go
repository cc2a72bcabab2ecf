package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/app/work"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore/aggsnap"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltcreds"
	"github.com/cryptovps/cryptovps/projections/postgres/pgcreds"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
	"github.com/cryptovps/cryptovps/upstream/vultr"
)

func newLogger(cfg config, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.LogFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: text or json", cfg.LogFormat)
}

func serve(args []string, stderr io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.flags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveWith(ctx, cfg, log)
}

func serveWith(ctx context.Context, cfg config, log *slog.Logger) error {
	mode := domain.Mode{Cloud: cfg.Cloud, Payments: cfg.Payments}
	if err := domain.ValidMode(mode); err != nil {
		return fmt.Errorf("--cloud, --payments: %w", err)
	}
	if err := checkPairing(mode.Cloud, mode.Payments, cfg.UnsafeSandboxPayments); err != nil {
		return err
	}
	// The upstreams are checked before anything else is opened: missing or
	// rejected credentials fail the start at once, with a message saying so.
	pay, err := cfg.payments(ctx, log)
	if err != nil {
		return err
	}
	signup, err := cfg.signupCredit(mode.Sandbox())
	if err != nil {
		return err
	}
	proxies, err := cfg.trustedProxies()
	if err != nil {
		return err
	}
	baseURL, err := cfg.publicBaseURL(mode)
	if err != nil {
		return err
	}
	adminAddr, err := cfg.adminListen(mode)
	if err != nil {
		return err
	}
	if err := ensureDataDir(cfg.DataDir, log); err != nil {
		return err
	}
	jwtSecret, err := secret(cfg.DataDir, "jwt-secret", cfg.JWTSecret)
	if err != nil {
		return err
	}
	adminToken, err := secret(cfg.DataDir, "admin-token", cfg.AdminToken)
	if err != nil {
		return err
	}
	if err := checkOperatorToken("the operator token (--admin-token, CRYPTOVPS_ADMIN_TOKEN or <data-dir>/admin-token)", adminToken); err != nil {
		return err
	}
	if cfg.AdminTokenPrevious != "" {
		if err := checkOperatorToken("--admin-token-previous", cfg.AdminTokenPrevious); err != nil {
			return err
		}
	}
	secretsKey, err := cfg.secretsKey()
	if err != nil {
		return err
	}
	sealer, err := app.NewSealer(secretsKey)
	if err != nil {
		return err
	}
	// The other files holding customer data: the embedded log and the
	// simulated cloud. Created 0600; refused when open to others.
	if cfg.EventStoreURL == "" {
		if err := checkPrivate(filepath.Join(cfg.DataDir, "events.db")); err != nil {
			return err
		}
	}
	if cfg.DatabaseURL == "" {
		// The key store of personal data (see openKeyStore) and the
		// credential store (see openCredentials).
		// And the in-memory read model's snapshot (every account's state).
		for _, f := range []string{keysFile, credentialsFile, readModelSnapshotFile} {
			if err := checkPrivate(filepath.Join(cfg.DataDir, f)); err != nil {
				return err
			}
		}
	}
	// Aggregate snapshots hold account states whatever the event store.
	if err := checkPrivate(filepath.Join(cfg.DataDir, aggregateSnapshotsFile)); err != nil {
		return err
	}
	if mode.Cloud == domain.UpstreamSandbox {
		if err := checkPrivate(cfg.sandboxCloudPath()); err != nil {
			return err
		}
	}
	// The upstreams are checked before anything else is opened: a missing
	// or rejected key fails the start at once, with a message saying so.
	cloud, pollEvery, err := openCloud(ctx, cfg, log)
	if err != nil {
		return err
	}
	store, err := openEventStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()

	model, closeModel, err := openReadModel(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeModel()
	creds, closeCreds, err := openCredentials(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeCreds()
	lead, lease, closeLead, err := openLeadership(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeLead()
	keys, closeKeys, err := openKeyStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeKeys()
	personal, err := app.NewPersonal(keys, secretsKey)
	if err != nil {
		return err
	}
	// Aggregate snapshots are this process's own (the log is read after
	// them and trusted over them): a file in the data dir whatever the
	// event store.
	snaps, err := aggsnap.Open(filepath.Join(cfg.DataDir, aggregateSnapshotsFile))
	if err != nil {
		return err
	}
	defer snaps.Close()
	// The in-memory read model keeps a snapshot of itself in the data dir
	// (a PostgreSQL one keeps its own checkpoint).
	var readSnapshot string
	if cfg.DatabaseURL == "" {
		readSnapshot = filepath.Join(cfg.DataDir, readModelSnapshotFile)
	}
	st, err := stack.New(ctx, stack.Config{Store: store, Model: model, Credentials: creds, Log: log, Mode: mode, Cloud: cloud,
		Sealer: sealer, Personal: personal,
		Payments: pay.Payments, Webhooks: pay.Webhooks, SandboxCloud: cfg.sandboxCloudPath(),
		SandboxCloudOptions: sandbox.CloudOptions{ProvisionDelay: cfg.ProvisionDelay, DestroyDelay: cfg.DestroyDelay,
			BackupDelay: cfg.BackupDelay},
		Leadership: lead, Snapshots: snaps, ReadSnapshot: readSnapshot, WorkInterval: cfg.WorkInterval, ReadyMaxLag: cfg.ReadyMaxLag,
		App:  app.Config{SignupCredit: signup, ServerLimit: cfg.ServerLimit},
		Work: work.Config{ProvisionLease: lease, PollInterval: pollEvery},
		API: api.Config{JWTSecret: []byte(jwtSecret), JWTPreviousSecrets: [][]byte{[]byte(cfg.JWTSecretPrevious)},
			TokenTTL: cfg.TokenTTL, AdminToken: adminToken,
			AdminTokenPrevious: cfg.AdminTokenPrevious, AdminListener: adminAddr != "",
			Snapshots: snapshotterOf(store), TrustedProxies: proxies, AccountRate: cfg.RateLimit,
			AuthRate: cfg.AuthRateLimit, BaseURL: baseURL, Log: log,
			Expected: expected(cfg),
			Guide: api.GuideParams{SignupCredit: signup, ProvisionDelay: cfg.ProvisionDelay,
				BackupDelay: cfg.BackupDelay, Image: imageOf(cfg)}},
	})
	if err != nil {
		return err
	}
	defer st.Close()
	switch {
	case mode.Sandbox():
		log.Warn("SANDBOX MODE: simulated cloud and payments, movable clock at /sandbox/clock/advance; nothing here is real",
			"mode", mode.String(), "data_dir", cfg.DataDir, "sandbox_cloud", cfg.sandboxCloudPath(),
			"signup_credit", signup.String(), "clock_offset", st.SandboxClock.Offset())
	default:
		log.Info("PRODUCTION MODE", "mode", mode.String(), "cloud_upstream", upstreamOf(cfg),
			"payments_upstream", paymentsUpstreamOf(cfg), "data_dir", cfg.DataDir, "signup_credit", signup.String())
		if mode.Cloud == domain.UpstreamSandbox {
			log.Warn("SANDBOX CLOUD: servers are simulated while payments are real", "sandbox_cloud", cfg.sandboxCloudPath())
		}
		if mode.Payments == domain.UpstreamSandbox {
			log.Warn("SANDBOX PAYMENTS with a real cloud (--unsafe-sandbox-payments): real servers for play money")
		}
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	// WriteTimeout leaves room for a long-poll, which holds an answer up to
	// 60 s.
	srvs := []*http.Server{{Handler: st.API, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 90 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}}
	lns := []net.Listener{ln}
	if adminAddr != "" {
		aln, err := net.Listen("tcp", adminAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--admin-addr: %w", err)
		}
		// The snapshot sets its own write deadline (it takes as long as
		// the store is big).
		srvs = append(srvs, &http.Server{Handler: st.API.Admin(), ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout: 30 * time.Second, WriteTimeout: 90 * time.Second, IdleTimeout: 120 * time.Second,
			MaxHeaderBytes: 64 << 10})
		lns = append(lns, aln)
	}

	stop := st.Start()
	errc := make(chan error, len(srvs))
	for i, srv := range srvs {
		go func() { errc <- srv.Serve(lns[i]) }()
	}
	log.Info("listening", "addr", ln.Addr().String(), "base_url", baseURL)
	switch {
	case adminAddr == "":
		log.Info("operator API (/admin, /metrics) on the public listener, behind the operator token")
	case loopback(adminAddr):
		log.Info("operator listening", "addr", lns[1].Addr().String())
	default:
		log.Warn("operator listening beyond this machine: firewall it to the operators' hosts", "addr", lns[1].Addr().String())
	}

	var errs []error
	select {
	case err := <-errc:
		errs = append(errs, err)
	case <-ctx.Done():
		log.Info("shutting down")
	}
	sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
	for _, srv := range srvs {
		errs = append(errs, srv.Shutdown(sctx))
	}
	scancel()
	stop()
	// A listener stopping as asked is no error.
	errs = slices.DeleteFunc(errs, func(err error) bool { return errors.Is(err, http.ErrServerClosed) })
	return errors.Join(append(errs, store.Close())...)
}

// credentialsFile is the embedded credential store's file in the data dir.
const credentialsFile = "credentials.db"

// aggregateSnapshotsFile keeps this process's aggregate snapshots (see
// eventstore/aggsnap) in the data dir.
const aggregateSnapshotsFile = "aggregate-snapshots.db"

// readModelSnapshotFile is the in-memory read model's snapshot (see
// projections/memory's snapshot.go) in the data dir: written on a clean
// stop and every few minutes, loaded at start when it matches the log.
const readModelSnapshotFile = "read-model.snap"

// openCredentials is the credential store: with PostgreSQL (--database-url)
// its tables there, the one copy every API process of the deployment
// shares; otherwise a file of its own in the data dir, credentials.db,
// beside the log but never in it (nor in its snapshots and backups).
func openCredentials(ctx context.Context, cfg config, log *slog.Logger) (domain.Credentials, func(), error) {
	if cfg.DatabaseURL != "" {
		c, err := pgcreds.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, nil, err
		}
		log.Info("credential store: PostgreSQL", "database", redactURL(cfg.DatabaseURL))
		return c, c.Close, nil
	}
	c, err := boltcreds.Open(filepath.Join(cfg.DataDir, credentialsFile))
	if err != nil {
		return nil, nil, err
	}
	return c, func() { _ = c.Close() }, nil
}

// openCloud is the provider of --cloud: nil for the sandbox (the stack opens
// it), or the Vultr adapter after one authenticated call has shown the key
// works. pollEvery is how often a server in transition is polled upstream.
func openCloud(ctx context.Context, cfg config, log *slog.Logger) (domain.Provider, time.Duration, error) {
	if cfg.Cloud != domain.UpstreamVultr {
		return nil, 0, nil
	}
	if cfg.VultrAPIKey == "" {
		return nil, 0, errors.New("--cloud vultr needs an API key: set VULTR_API_KEY (or --vultr-api-key)")
	}
	cloud, err := vultr.New(vultr.Config{APIKey: cfg.VultrAPIKey, BaseURL: cfg.VultrURL, OSID: cfg.VultrOSID,
		ActivationTimeout: cfg.VultrActivate}, log)
	if err != nil {
		return nil, 0, fmt.Errorf("vultr: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := cloud.Check(cctx); err != nil {
		return nil, 0, fmt.Errorf("vultr at %s: %w", cfg.VultrURL, err)
	}
	return cloud, vultrPollInterval, nil
}

// vultrPollInterval spaces the questions about one server in transition: a
// Vultr instance takes a minute or more to boot.
const vultrPollInterval = 10 * time.Second

func upstreamOf(cfg config) string {
	if cfg.Cloud == domain.UpstreamVultr {
		return cfg.VultrURL
	}
	return "sandbox"
}

// imageOf names the image new servers get, for /llms.txt.
func imageOf(cfg config) string {
	if cfg.Cloud != domain.UpstreamVultr {
		return ""
	}
	if cfg.VultrOSID == vultr.DefaultOSID {
		return fmt.Sprintf("Ubuntu 24.04 LTS x64 (Vultr os_id %d)", cfg.VultrOSID)
	}
	return fmt.Sprintf("Vultr os_id %d (see GET https://api.vultr.com/v2/os)", cfg.VultrOSID)
}

// expected is how long accepted operations usually take, for Retry-After.
func expected(cfg config) api.Expected {
	if cfg.Cloud == domain.UpstreamVultr {
		// A Vultr instance is typically up in one to two minutes; a
		// snapshot takes minutes, more for bigger disks.
		return api.Expected{Provision: 90 * time.Second, Destroy: 10 * time.Second, Backup: 5 * time.Minute}
	}
	return api.Expected{Provision: cfg.ProvisionDelay, Destroy: cfg.DestroyDelay, Backup: cfg.BackupDelay}
}

func paymentsUpstreamOf(cfg config) string {
	if cfg.Payments == domain.UpstreamBTCPay {
		return cfg.BTCPayURL
	}
	return "sandbox"
}
