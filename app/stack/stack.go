// Package stack is the composition root: it wires one complete CryptoVPS
// process (read model and projector, runners, use cases, background work,
// HTTP API) on an event store, a cloud and a payment processor. `cryptovps
// serve`, the operator tools and every test that needs a whole stack build
// it here, so there is one wiring to keep right.
package stack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/health"
	"github.com/cryptovps/cryptovps/app/metrics"
	"github.com/cryptovps/cryptovps/app/work"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltcreds"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltkeys"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// Config is what a stack is built from. Store and Model are the caller's
// (it opens and closes them); the rest defaults to the sandbox.
type Config struct {
	Store eventstore.Store
	Model projections.Model
	Log   *slog.Logger
	// Mode is the cloud and payments the deployment runs against (the zero
	// Mode is the sandbox), recorded in the log: a log written in another
	// mode is refused. Only in the full sandbox is the clock movable and
	// /sandbox/* served.
	Mode domain.Mode
	// Sealer seals and opens the secrets kept in the log (root passwords);
	// nil generates a key for this stack alone (tests).
	Sealer *app.Sealer
	// Personal seals personal data with per-account keys kept in its key
	// store; nil keeps them in a key store of this stack alone, in a
	// temporary directory removed by Close (tests).
	Personal *app.Personal

	// Cloud is the provider; nil opens the sandbox cloud at SandboxCloud.
	Cloud domain.Provider
	// SandboxCloud is the sandbox cloud's state file, and its delays.
	SandboxCloud        string
	SandboxCloudOptions sandbox.CloudOptions
	// Payments is the payment processor; nil is the sandbox's.
	Payments domain.Payments
	// Webhooks reads the processor's webhooks (the BTCPay client); nil
	// leaves POST /webhooks/btcpay out.
	Webhooks api.Webhooks
	// Clock is the service clock; nil is, in the sandbox, the sandbox
	// clock (wall time plus the offsets the log records: the shared one,
	// movable by the operator through /admin/sandbox/clock/advance, and
	// each account's own, movable through /sandbox/clock/advance),
	// otherwise wall time.
	Clock domain.Clock
	// Wall is the real time, which ages Idempotency-Keys whatever the
	// service clock does; nil is the wall clock. Tests move it.
	Wall domain.Clock
	// NoSandboxAPI leaves /sandbox/* out even with the sandbox clock.
	NoSandboxAPI bool
	// Hasher hashes passwords; nil bounds hashing to the CPUs.
	Hasher *app.Hasher
	// Credentials is the credential store (password and API-key hashes,
	// outside the log); the caller opens and closes it. nil opens one in a
	// temporary directory for this stack alone, removed at Close (tests).
	Credentials domain.Credentials
	// Catalog is what can be deployed; the zero value is the default one.
	Catalog domain.Catalog
	// Leadership elects the process doing the background work; nil: this
	// process alone.
	Leadership work.Leadership
	// Snapshots keeps the accounts' snapshots (app.SnapshotEvery events
	// apart), so that a long account loads quickly after a restart; nil:
	// none (the read model's fold still gives the embedded store its
	// head start).
	Snapshots app.Snapshots
	// ReadSnapshot is the file of the read model's snapshot, for a model
	// that keeps one (projections/memory): loaded before the replay when
	// it matches the log (else the whole log is replayed), and written
	// again by Run every ReadSnapshotEvery (10 minutes when zero) when the
	// model moved, and when Run ends. Empty: none.
	ReadSnapshot      string
	ReadSnapshotEvery time.Duration

	App  app.Config
	Work work.Config
	API  api.Config
	// WorkInterval is how often the background work runs (1s when zero).
	WorkInterval time.Duration
	// ManualWork leaves the background work to the caller (Worker.RunDue):
	// Run keeps the read model and the clock up to date only. For tests that
	// step the work themselves.
	ManualWork bool
	// ReadyMaxLag is how far behind the log the read model may be while
	// /readyz says ready (health.DefaultMaxLag when zero).
	ReadyMaxLag time.Duration
}

// Stack is one wired process.
type Stack struct {
	Store     eventstore.Store
	Read      projections.Reader
	Projector *projections.Projector
	Clock     domain.Clock
	// SandboxClock is the movable clock, nil when Config.Clock was given.
	SandboxClock *sandbox.Clock
	Cloud        domain.Provider
	Payments     domain.Payments
	App          *app.Service
	Worker       *work.Worker
	API          *api.Server
	// Metrics is the process's one metrics registry, served at /metrics.
	Metrics *prometheus.Registry
	// Health says whether the process can serve (/readyz).
	Health *health.Checker
	// Credentials is the credential store the stack uses.
	Credentials domain.Credentials

	// snap keeps the read model's snapshot at snapPath (Config.ReadSnapshot);
	// snapAt is the position the model was at when it was last written or
	// loaded.
	snap      snapshotter
	snapPath  string
	snapEvery time.Duration
	snapAt    eventstore.Position

	// followFrom is where following the log starts (Worker.Follow).
	followFrom eventstore.Position
	interval   time.Duration
	manual     bool
	log        *slog.Logger
	closers    []func() error

	// imported is closed once Run has moved the password hashes older
	// builds left in the log to the credential store.
	imported     chan struct{}
	importedOnce sync.Once
}

// New wires a stack and brings its read model up to the log.
func New(ctx context.Context, cfg Config) (*Stack, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stack{Store: cfg.Store, Read: cfg.Model, log: log, interval: cfg.WorkInterval, manual: cfg.ManualWork,
		imported: make(chan struct{})}
	if s.interval <= 0 {
		s.interval = time.Second
	}
	mode := cfg.Mode
	if mode == (domain.Mode{}) {
		mode = domain.Mode{Cloud: domain.UpstreamSandbox, Payments: domain.UpstreamSandbox}
	}
	// The one registry of the process: everything below that is measured
	// is registered here, nothing on a global.
	s.Metrics = prometheus.NewRegistry()
	s.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(s.Metrics)
	store := m.Store(cfg.Store)
	if err := app.CheckMode(ctx, store, app.WallClock{}, mode); err != nil {
		return nil, err
	}
	clock := cfg.Clock
	clocks := app.NewClocks(store, nil)
	if clock == nil && !mode.Sandbox() {
		clock = app.WallClock{}
	}
	// The background work follows the log from here on (Worker.Follow):
	// the sandbox clock, so that an advance made through another process
	// moves it too, and the due-time index of the work.
	from, err := cfg.Store.Head(ctx)
	if err != nil {
		return nil, err
	}
	s.followFrom = from
	if clock == nil {
		st, err := work.LoadClock(ctx, clocks)
		if err != nil {
			return nil, err
		}
		s.SandboxClock = sandbox.NewClock(time.Now, st.OffsetDuration())
		work.SetClock(s.SandboxClock, st)
		clock = s.SandboxClock
	}
	s.Clock = clock
	clocks = app.NewClocks(store, clock)

	s.Cloud = cfg.Cloud
	if s.Cloud == nil && mode.Cloud != domain.UpstreamSandbox {
		return nil, fmt.Errorf("mode %s needs its cloud adapter", mode)
	}
	if s.Cloud == nil {
		c, err := sandbox.OpenCloud(cfg.SandboxCloud, clock, cfg.SandboxCloudOptions)
		if err != nil {
			return nil, err
		}
		s.closers = append(s.closers, c.Close)
		s.Cloud = c
	}
	sandboxPayments := mode.Payments == domain.UpstreamSandbox
	pay := cfg.Payments
	if pay == nil {
		if !sandboxPayments {
			return nil, fmt.Errorf("payments %s: no processor given", mode.Payments)
		}
		// Sandbox invoices never expire: a sandbox top-up can be paid at
		// any time, as it always could.
		pay = sandbox.NewPayments(clock, sandbox.PaymentsOptions{})
	}
	s.Payments = pay
	pay = m.Payments(pay, mode.Payments)
	cloud := m.Provider(s.Cloud, mode.Cloud)
	hasher := cfg.Hasher
	if hasher == nil {
		hasher = app.NewHasher(runtime.NumCPU())
	}
	catalog := cfg.Catalog
	if catalog.Plans == nil {
		catalog = domain.DefaultCatalog()
	}

	s.Projector = projections.NewProjector(store, cfg.Model, log)
	start := time.Now()
	s.loadSnapshot(ctx, cfg)
	if err := s.Projector.CatchUp(ctx, nil); err != nil {
		s.Close()
		return nil, fmt.Errorf("replay the log into the read models: %w", err)
	}
	log.Info("read models caught up with the log", "position", s.Projector.Applied().String(), "took", time.Since(start))

	sealer := cfg.Sealer
	if sealer == nil {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		var err error
		if sealer, err = app.NewSealer(key); err != nil {
			return nil, err
		}
	}
	s.Credentials = cfg.Credentials
	if s.Credentials == nil {
		if err := s.temporaryCredentials(); err != nil {
			s.Close()
			return nil, err
		}
	}
	personal := cfg.Personal
	if personal == nil {
		var err error
		if personal, err = s.ownKeys(); err != nil {
			s.Close()
			return nil, err
		}
	}
	accounts, backups := app.NewAccounts(store, clock), app.NewBackups(store, clock)
	// A read model that folds every stream in this process (the embedded
	// one) gives the runners their head start: one copy of each account.
	src, local := cfg.Model.(stateSource)
	if local {
		accounts.SetSource(src.AccountState)
		backups.SetSource(src.BackupState)
	}
	if cfg.Snapshots != nil {
		accounts.SetSnapshots(cfg.Snapshots, app.SnapshotEvery)
	}
	workCfg := cfg.Work
	if workCfg.ReadTimeout == 0 {
		workCfg.ReadTimeout = cfg.App.ReadTimeout
	}
	var movable work.MovableClock
	if s.SandboxClock != nil {
		movable = s.SandboxClock
	}
	s.Worker = work.New(work.Deps{Accounts: accounts, Backups: backups, Clocks: clocks, Store: store,
		Read: cfg.Model, Projector: s.Projector, Clock: clock, Sandbox: movable, Cloud: cloud, Sealer: sealer, Log: log,
		Leadership: cfg.Leadership, Payments: pay, Observer: m, LocalProjector: local}, workCfg)
	s.App = app.New(app.Deps{Accounts: accounts, Backups: backups, Projector: s.Projector, Cloud: cloud,
		Payments: pay, Hasher: hasher, Credentials: s.Credentials, Catalog: catalog, Clock: clock, Log: log, Sealer: sealer,
		Personal: personal, Work: s.Worker, Wall: cfg.Wall}, cfg.App)
	// Before anything is served: accounts of an older log get their keys
	// and sealed emails, forgotten ones lose a key (and credentials) a
	// crash left behind.
	if err := s.App.ReconcilePersonalData(ctx, cfg.Model); err != nil {
		s.Close()
		return nil, fmt.Errorf("personal data: %w", err)
	}
	deps := api.Deps{App: s.App, Read: cfg.Model, Feed: store, Webhooks: cfg.Webhooks,
		SandboxPayments: sandboxPayments && !cfg.NoSandboxAPI}
	// The clock moves only in the full sandbox (mode.Sandbox: both upstreams
	// simulated), which is also the only time there is a sandbox clock.
	if s.SandboxClock != nil && !cfg.NoSandboxAPI {
		deps.Sandbox = s.Worker
	}
	apiCfg := cfg.API
	if apiCfg.Log == nil {
		apiCfg.Log = log
	}
	// Tokens expire on the clock of the account they are for.
	if apiCfg.Now == nil {
		apiCfg.Now = s.App.Now
	}
	m.WatchReadModel(cfg.Store, cfg.Model, modelName(cfg.Model))
	hc := health.Config{Store: cfg.Store, Model: cfg.Model, MaxLag: cfg.ReadyMaxLag, Log: log}
	if k, ok := cfg.Leadership.(health.LeaderKnower); ok {
		hc.Leader = k
	}
	s.Health = health.New(hc)
	apiCfg.Observer, apiCfg.Readiness, apiCfg.Metrics = m, s.Health, m.Handler()
	s.API = api.New(deps, apiCfg)
	return s, nil
}

// Run runs the stack's background loops until ctx ends: the projector, the
// background work following the log (the sandbox clock, the due-time
// index), and the background work.
func (s *Stack) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Projector.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("projector stopped", "err", err)
		}
	})
	wg.Go(func() {
		var clock work.MovableClock
		if s.SandboxClock != nil {
			clock = s.SandboxClock
		}
		if err := s.Worker.Follow(ctx, clock, s.followFrom); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error("the background work stopped following the log", "err", err)
		}
	})
	if !s.manual {
		wg.Go(func() { _ = s.Worker.Run(ctx, s.interval) })
	}
	if s.snap != nil {
		wg.Go(func() { s.keepSnapshot(ctx) })
	}
	wg.Go(func() {
		// In the background: the first start on a long log written by an
		// older build reads all of it once, and serving need not wait
		// (a login moves its account's hash itself if it comes first).
		if _, err := app.ImportLegacyPasswords(ctx, s.Store, s.Credentials, s.log); err != nil && ctx.Err() == nil {
			s.log.Error("moving password hashes from the log to the credential store stopped; logins move their own", "err", err)
		}
		s.importedOnce.Do(func() { close(s.imported) })
	})
	wg.Wait()
}

// snapshotter is a read model that keeps snapshots of itself
// (projections/memory).
type snapshotter interface {
	LoadSnapshot(ctx context.Context, store eventstore.Store, path string) (eventstore.Position, error)
	WriteSnapshot(ctx context.Context, store eventstore.Store, path string) (eventstore.Position, bool, error)
}

// loadSnapshot fills the read model from its snapshot, when there is one
// that matches the log; the replay then folds only the log after it. Any
// failure is only a longer start: the whole log is replayed.
func (s *Stack) loadSnapshot(ctx context.Context, cfg Config) {
	snap, ok := cfg.Model.(snapshotter)
	if !ok || cfg.ReadSnapshot == "" {
		return
	}
	s.snap, s.snapPath, s.snapEvery = snap, cfg.ReadSnapshot, cfg.ReadSnapshotEvery
	if s.snapEvery <= 0 {
		s.snapEvery = 10 * time.Minute
	}
	start := time.Now()
	pos, err := snap.LoadSnapshot(ctx, cfg.Store, cfg.ReadSnapshot)
	switch {
	case err == nil:
		s.snapAt = pos
		s.log.Info("read models loaded from their snapshot; replaying the log after it", "position", pos.String(),
			"file", cfg.ReadSnapshot, "took", time.Since(start))
	case errors.Is(err, fs.ErrNotExist):
		s.log.Info("no read-model snapshot: replaying the whole log", "file", cfg.ReadSnapshot)
	default:
		s.log.Warn("read-model snapshot not used: replaying the whole log", "file", cfg.ReadSnapshot, "err", err)
	}
}

// keepSnapshot writes the read model's snapshot every snapEvery when the
// model moved, and once more when ctx ends (a clean stop), so that the
// next start folds only what came after.
func (s *Stack) keepSnapshot(ctx context.Context) {
	t := time.NewTicker(s.snapEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.writeSnapshot(ctx)
		case <-ctx.Done():
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			s.writeSnapshot(wctx)
			cancel()
			return
		}
	}
}

func (s *Stack) writeSnapshot(ctx context.Context) {
	applied := s.Projector.Applied()
	if applied == s.snapAt {
		return
	}
	start := time.Now()
	pos, ok, err := s.snap.WriteSnapshot(ctx, s.Store, s.snapPath)
	if err != nil {
		s.log.Warn("read-model snapshot not written (the next start replays more of the log)", "err", err)
		return
	}
	if ok {
		s.snapAt = applied
		s.log.Info("read-model snapshot written", "position", pos.String(), "file", s.snapPath, "took", time.Since(start))
	}
}

// CredentialsImported is closed once Run has moved the password hashes
// older builds left in the log to the credential store (or stopped trying).
func (s *Stack) CredentialsImported() <-chan struct{} { return s.imported }

// temporaryCredentials opens a credential store of this stack alone, in a
// directory removed at Close.
func (s *Stack) temporaryCredentials() error {
	dir, err := os.MkdirTemp("", "cryptovps-credentials-")
	if err != nil {
		return fmt.Errorf("credential store: %w", err)
	}
	c, err := boltcreds.Open(filepath.Join(dir, "credentials.db"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	s.Credentials = c
	s.closers = append(s.closers, func() error { return errors.Join(c.Close(), os.RemoveAll(dir)) })
	return nil
}

// Start runs the background loops until Stop; for callers that hold a
// stack for a while (tests, tools).
func (s *Stack) Start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	// The due-time index is seeded before Start returns, so that the
	// caller's first pass (Worker.RunDue) already uses it; Run retries
	// should this fail.
	s.Worker.Seed(ctx, s.followFrom)
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// Close releases what New opened (not the caller's store and model).
func (s *Stack) Close() error {
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// ownKeys is a key store for this stack alone: a bbolt file in a
// temporary directory that Close removes.
func (s *Stack) ownKeys() (*app.Personal, error) {
	dir, err := os.MkdirTemp("", "cryptovps-keys-*")
	if err != nil {
		return nil, err
	}
	ks, err := boltkeys.Open(filepath.Join(dir, "keys.db"), boltkeys.Options{})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	s.closers = append(s.closers, func() error { return errors.Join(ks.Close(), os.RemoveAll(dir)) })
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	return app.NewPersonal(ks, secret)
}

// stateSource is a read model that holds the aggregates' states, folded
// with the domain's Evolve (projections/memory): a model of this process
// alone, whose projector applies every event of the log.
type stateSource interface {
	AccountState(id string) (domain.Account, int64, eventstore.Position, int64, bool)
	BackupState(id string) (domain.Backup, int64, eventstore.Position, int64, bool)
}

// modelName names a read model for the metrics by its package: memory,
// postgres.
func modelName(m projections.Model) string {
	t := reflect.TypeOf(m)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return path.Base(t.PkgPath())
}
