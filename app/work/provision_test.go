package work_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/work"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltcreds"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltkeys"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// flaky wraps the sandbox cloud with the failures a real provider has.
type flaky struct {
	*sandbox.Cloud
	// createdThenTimedOut: the instance is created but the answer is lost,
	// as in a timeout or a crash right after the call.
	createdThenTimedOut atomic.Int32
	// refuse: the provider refuses to create anything.
	refuse  atomic.Bool
	creates atomic.Int32
}

var errTimeout = errors.New("provider: context deadline exceeded")

func (f *flaky) CreateInstance(ctx context.Context, spec domain.InstanceSpec) (domain.Instance, error) {
	f.creates.Add(1)
	if f.refuse.Load() {
		return domain.Instance{}, errors.New("provider: 500 internal error")
	}
	inst, err := f.Cloud.CreateInstance(ctx, spec)
	if err == nil && f.createdThenTimedOut.Add(-1) >= 0 {
		return domain.Instance{}, errTimeout
	}
	return inst, err
}

type stack struct {
	svc      *node
	personal *app.Personal
	keys     *boltkeys.Store
	creds    *boltcreds.Store
	store    eventstore.Store
	cloud    *flaky
	clock    *sandbox.Clock
	model    *memory.Model
	proj     *projections.Projector
}

func newStack(t *testing.T, dir string) *stack {
	t.Helper()
	ctx := context.Background()
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	offset, err := clockOffset(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	clock := sandbox.NewClock(time.Now, offset)
	cloud, err := sandbox.OpenCloud(filepath.Join(dir, "cloud.json"), clock, sandbox.CloudOptions{
		ProvisionDelay: time.Minute, DestroyDelay: 5 * time.Second, BackupDelay: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	model := memory.New(store)
	proj := projections.NewProjector(store, model, log)
	if err := proj.CatchUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	keys, err := boltkeys.Open(filepath.Join(dir, "keys.db"), boltkeys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := boltcreds.Open(filepath.Join(dir, "credentials.db"))
	if err != nil {
		t.Fatal(err)
	}
	personal, err := app.NewPersonal(keys, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{Cloud: cloud}
	svc := newNode(store, model, proj, creds, clock, f, nil, personal, work.Config{ProvisionAttempts: 3})
	bg, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = proj.Run(bg); close(done) }()
	t.Cleanup(func() { cancel(); <-done; store.Close(); keys.Close(); creds.Close() })
	return &stack{svc: svc, personal: personal, keys: keys, creds: creds, store: store, cloud: f, clock: clock, model: model, proj: proj}
}

func (s *stack) deploy(t *testing.T, label string) (accountID, serverID string) {
	t.Helper()
	ctx := context.Background()
	id, _, err := s.svc.Register(ctx, label+"@example.com", "correct horse battery", eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.svc.Deploy(ctx, id, []app.ServerRequest{{Label: label, Plan: "vc2-1c-1gb", Region: "ams"}}, false, app.Idempotency{}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	return id, res.Servers[0].ID
}

func (s *stack) server(t *testing.T, accountID, serverID string) domain.Server {
	t.Helper()
	a, err := s.svc.Account(context.Background(), accountID)
	if err != nil {
		t.Fatal(err)
	}
	srv, ok := a.Server(serverID)
	if !ok {
		t.Fatalf("server %s missing", serverID)
	}
	return srv
}

func (s *stack) advance(t *testing.T, d time.Duration) {
	t.Helper()
	if _, err := s.svc.AdvanceClock(context.Background(), int64(d/time.Second), eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
}

func TestProvisionAfterALostCreateAnswerFindsTheInstanceInsteadOfCreatingASecond(t *testing.T) {
	t.Parallel()
	s := newStack(t, t.TempDir())
	s.cloud.createdThenTimedOut.Store(1)
	acct, srv := s.deploy(t, "lost-answer")
	_ = s.svc.RunDue(context.Background()) // creates, answer lost
	s.advance(t, time.Minute)
	got := s.server(t, acct, srv)
	if got.Status != domain.StatusActive || got.IPv4 == "" {
		t.Fatalf("server %s, want ACTIVE with an address", got.Status)
	}
	if n := s.cloud.creates.Load(); n != 1 {
		t.Fatalf("provider asked to create %d times, want 1", n)
	}
	inst, err := s.cloud.FindInstance(context.Background(), srv)
	if err != nil || inst.ID != got.InstanceID {
		t.Fatalf("instance at provider %+v (%v), recorded %s", inst, err, got.InstanceID)
	}
}

func TestProvisionResumesAfterACrashBetweenIntentAndCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStack(t, dir)
	acct, srv := s.deploy(t, "crashed")
	// The intent is recorded, then the process dies before the provider is called.
	if _, err := s.svc.AdminCommand(context.Background(), acct, domain.StartProvision{ServerID: srv}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(s.store.Close(), s.keys.Close(), s.creds.Close()); err != nil {
		t.Fatal(err)
	}
	s2 := newStack(t, dir)
	s2.advance(t, time.Minute)
	got := s2.server(t, acct, srv)
	if got.Status != domain.StatusActive {
		t.Fatalf("server %s after restart, want ACTIVE", got.Status)
	}
	if got.Attempts != 2 || s2.cloud.creates.Load() != 1 {
		t.Fatalf("attempts %d, creates %d: want the lookup then exactly one create", got.Attempts, s2.cloud.creates.Load())
	}
}

func TestProvisionGivesUpAfterRepeatedProviderErrorsAndRefunds(t *testing.T) {
	t.Parallel()
	s := newStack(t, t.TempDir())
	s.cloud.refuse.Store(true)
	acct, srv := s.deploy(t, "refused")
	for range 5 {
		_ = s.svc.RunDue(context.Background())
	}
	got := s.server(t, acct, srv)
	if got.Status != domain.StatusError {
		t.Fatalf("server %s, want ERROR after the provider kept failing", got.Status)
	}
	a, _ := s.svc.Account(context.Background(), acct)
	if a.Balance.Cmp(domain.MustMoney("10.00")) != 0 {
		t.Fatalf("balance %s, want the first hour refunded (10.00)", a.Balance)
	}
	if n := s.cloud.creates.Load(); n != 3 {
		t.Fatalf("provider asked %d times, want ProvisionAttempts = 3", n)
	}
}

func TestDestroyDuringProvisioningDeletesTheInstanceAndStopsBilling(t *testing.T) {
	t.Parallel()
	s := newStack(t, t.TempDir())
	acct, srv := s.deploy(t, "short-lived")
	_ = s.svc.RunDue(context.Background())
	if _, err := s.svc.Destroy(context.Background(), acct, srv, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	s.advance(t, 3*time.Hour)
	got := s.server(t, acct, srv)
	if got.Status != domain.StatusDestroyed {
		t.Fatalf("server %s, want DESTROYED", got.Status)
	}
	if _, err := s.cloud.Instance(context.Background(), got.InstanceID); !errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("instance still at the provider: %v", err)
	}
	a, _ := s.svc.Account(context.Background(), acct)
	if a.Balance.Cmp(domain.MustMoney("9.986")) != 0 {
		t.Fatalf("balance %s, want only the first hour charged", a.Balance)
	}
}

// node is one process's use cases and background work on a shared store,
// read model and projector: the pieces a whole stack (app/stack) wires, put
// together here so tests can give each process a provider, a clock and a
// leadership of its own.
type node struct {
	*app.Service
	*work.Worker
}

func newNode(store eventstore.Store, read projections.Reader, proj *projections.Projector, creds domain.Credentials,
	clock *sandbox.Clock, cloud domain.Provider, lead work.Leadership, personal *app.Personal, cfg work.Config) *node {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	accounts, backups, clocks := app.NewAccounts(store, clock), app.NewBackups(store, clock), app.NewClocks(store, clock)
	w := work.New(work.Deps{Accounts: accounts, Backups: backups, Clocks: clocks, Store: store, Read: read,
		Projector: proj, Clock: clock, Sandbox: clock, Cloud: cloud, Log: log, Leadership: lead}, cfg)
	svc := app.New(app.Deps{Accounts: accounts, Backups: backups, Projector: proj, Cloud: cloud,
		Payments: sandbox.Payments{}, Hasher: app.NewHasher(2), Catalog: domain.DefaultCatalog(), Clock: clock,
		Log: log, Personal: personal, Work: w, Credentials: creds}, app.Config{SignupCredit: domain.MustMoney("10.00"), ServerLimit: 10})
	return &node{Service: svc, Worker: w}
}

// Account is the account's authoritative state.
func (n *node) Account(ctx context.Context, id string) (domain.Account, error) {
	d, err := n.Accounts.Load(ctx, id)
	return d.State, err
}

func clockOffset(ctx context.Context, store eventstore.Store) (time.Duration, error) {
	return work.ClockOffset(ctx, app.NewClocks(store, nil))
}
