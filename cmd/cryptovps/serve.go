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
	"syscall"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/app/work"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
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
	// No cloud credentials can be configured yet: a sandbox cloud.
	const sandboxMode = true
	if err := checkPairing(domain.UpstreamSandbox, cfg.Payments, cfg.UnsafeSandboxPayments); err != nil {
		return err
	}
	pay, err := cfg.payments(ctx, log)
	if err != nil {
		return err
	}
	signup, err := cfg.signupCredit(sandboxMode && pay.Mode == domain.UpstreamSandbox)
	if err != nil {
		return err
	}
	proxies, err := cfg.trustedProxies()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	jwtSecret, err := secret(cfg.DataDir, "jwt-secret", cfg.JWTSecret)
	if err != nil {
		return err
	}
	adminToken, err := secret(cfg.DataDir, "admin-token", cfg.AdminToken)
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
	lead, lease, closeLead, err := openLeadership(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeLead()
	st, err := stack.New(ctx, stack.Config{Store: store, Model: model, Log: log,
		SandboxCloud: cfg.sandboxCloudPath(), PaymentsMode: pay.Mode, Payments: pay.Payments, Webhooks: pay.Webhooks,
		SandboxCloudOptions: sandbox.CloudOptions{ProvisionDelay: cfg.ProvisionDelay, DestroyDelay: cfg.DestroyDelay,
			BackupDelay: cfg.BackupDelay},
		Leadership: lead, WorkInterval: cfg.WorkInterval,
		App:  app.Config{SignupCredit: signup, ServerLimit: cfg.ServerLimit},
		Work: work.Config{ProvisionLease: lease},
		API: api.Config{JWTSecret: []byte(jwtSecret), TokenTTL: cfg.TokenTTL, AdminToken: adminToken,
			Snapshots: snapshotterOf(store), TrustedProxies: proxies, AccountRate: cfg.RateLimit,
			AuthRate: cfg.AuthRateLimit, BaseURL: cfg.BaseURL, Log: log,
			Guide: api.GuideParams{SignupCredit: signup.Fixed(2), ProvisionDelay: cfg.ProvisionDelay.String(),
				BackupDelay: cfg.BackupDelay.String()}},
	})
	if err != nil {
		return err
	}
	defer st.Close()
	if pay.Mode == domain.UpstreamSandbox {
		log.Warn("SANDBOX MODE: simulated cloud and payments, movable clock at /sandbox/clock/advance",
			"data_dir", cfg.DataDir, "sandbox_cloud", cfg.sandboxCloudPath(), "signup_credit", signup.String(),
			"clock_offset", st.SandboxClock.Offset())
	} else {
		log.Warn("SANDBOX CLOUD with real payments through BTCPay Server: webhooks at /webhooks/btcpay",
			"data_dir", cfg.DataDir, "sandbox_cloud", cfg.sandboxCloudPath(), "btcpay", cfg.BTCPayURL)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: st.API, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}

	stop := st.Start()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("shutting down")
		sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
		err = srv.Shutdown(sctx)
		scancel()
	}
	stop()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, store.Close())
}
