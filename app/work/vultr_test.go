package work_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	wiring "github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/app/work"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/upstream/vultr"
	"github.com/cryptovps/cryptovps/upstream/vultr/vultrfake"
)

// vultrWorld is a store shared by processes that run against one fake
// Vultr, on one moved-by-hand clock, as a production deployment would.
type vultrWorld struct {
	t     *testing.T
	clock *vultrfake.Clock
	fake  *vultrfake.Server
	store *bbolt.Store
	logs  *syncBuffer
	key   []byte
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newVultrWorld(t *testing.T) *vultrWorld {
	t.Helper()
	clock := vultrfake.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	fake := vultrfake.New(t, vultrfake.Options{Clock: clock})
	store, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &vultrWorld{t: t, clock: clock, fake: fake, store: store, logs: &syncBuffer{}, key: bytes.Repeat([]byte{9}, 32)}
}

// process is one API process of the world: its own adapter, read model and
// runners, like another machine.
func (w *vultrWorld) process(signup string, wrap func(domain.Provider) domain.Provider) *wiring.Stack {
	w.t.Helper()
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cloud, err := vultr.New(vultr.Config{APIKey: "test-key", BaseURL: w.fake.URL, Clock: w.clock,
		RequestsPerSecond: 1000, Burst: 100, RetryBackoff: time.Millisecond, MaxRetryWait: 5 * time.Millisecond}, log)
	if err != nil {
		w.t.Fatal(err)
	}
	var p domain.Provider = cloud
	if wrap != nil {
		p = wrap(cloud)
	}
	sealer, err := app.NewSealer(w.key)
	if err != nil {
		w.t.Fatal(err)
	}
	st, err := wiring.New(context.Background(), wiring.Config{Store: w.store, Model: memory.New(w.store), Log: log,
		Mode:  domain.Mode{Cloud: domain.UpstreamVultr, Payments: domain.UpstreamSandbox},
		Cloud: p, Clock: w.clock, Sealer: sealer, Hasher: app.NewHasher(2),
		App:  app.Config{SignupCredit: domain.MustMoney(signup), ServerLimit: 10},
		Work: work.Config{ProvisionAttempts: 3, ProvisionLease: 2 * time.Minute},
		API:  api.Config{JWTSecret: []byte("secret")}, ManualWork: true})
	if err != nil {
		w.t.Fatal(err)
	}
	stop := st.Start()
	w.t.Cleanup(func() { stop(); st.Close() })
	return st
}

func (w *vultrWorld) deploy(p *wiring.Stack, email, plan string) (accountID, serverID string) {
	w.t.Helper()
	ctx := context.Background()
	id, _, err := p.App.Register(ctx, email, "correct horse battery", eventstore.Metadata{})
	if err != nil {
		w.t.Fatal(err)
	}
	res, err := p.App.Deploy(ctx, id, []app.ServerRequest{{Label: "bot", Plan: plan, Region: "ams"}}, false, app.Idempotency{}, eventstore.Metadata{})
	if err != nil {
		w.t.Fatal(err)
	}
	return id, res.Servers[0].ID
}

func (w *vultrWorld) server(p *wiring.Stack, accountID, serverID string) (domain.Server, domain.Account) {
	w.t.Helper()
	d, err := p.App.Accounts.Load(context.Background(), accountID)
	if err != nil {
		w.t.Fatal(err)
	}
	srv, _ := d.State.Server(serverID)
	return srv, d.State
}

// ledgerCount counts the account's ledger transactions of a kind.
func ledgerCount(t *testing.T, p *wiring.Stack, accountID string, kind domain.TxKind) int {
	t.Helper()
	entries, err := p.Read.Ledger(context.Background(), accountID, eventstore.Position{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func runDue(t *testing.T, p *wiring.Stack) {
	t.Helper()
	if err := p.Worker.RunDue(context.Background()); err != nil {
		t.Logf("background pass: %v", err)
	}
}

// A create whose answer is lost (the instance exists, the worker got a 500)
// is found by its tag on the next pass: one instance, one charge, and the
// server becomes ACTIVE with the instance's real address only when Vultr
// says it is running.
func TestVultrLostCreateAnswerMakesOneInstanceAndOneCharge(t *testing.T) {
	t.Parallel()
	w := newVultrWorld(t)
	p := w.process("10.00", nil)
	acct, srv := w.deploy(p, "lost@example.com", "vc2-1c-1gb")
	w.fake.Inject(vultrfake.Fault{Method: "POST", Path: "/v2/instances", Status: 500, After: true})
	runDue(t, p)
	runDue(t, p)
	if n := len(w.fake.Instances()); n != 1 {
		t.Fatalf("%d instances after a lost answer, want 1", n)
	}
	if n := w.fake.Count("POST", "/v2/instances"); n != 1 {
		t.Fatalf("%d creates, want 1", n)
	}
	s, _ := w.server(p, acct, srv)
	if s.InstanceID != w.fake.Instances()[0].ID || s.Status != domain.StatusProvisioning {
		t.Fatalf("server %+v, want PROVISIONING with the one instance", s)
	}
	w.clock.Advance(30 * time.Second)
	runDue(t, p)
	if s, _ := w.server(p, acct, srv); s.Status != domain.StatusProvisioning {
		t.Fatalf("ACTIVE before Vultr said so: %s", s.Status)
	}
	w.clock.Advance(time.Minute)
	runDue(t, p)
	s, _ = w.server(p, acct, srv)
	if s.Status != domain.StatusActive || s.IPv4 != w.fake.Instances()[0].MainIP || s.IPv4 == "0.0.0.0" {
		t.Fatalf("server %s %q, want ACTIVE at %s", s.Status, s.IPv4, w.fake.Instances()[0].MainIP)
	}
	if n := ledgerCount(t, p, acct, domain.TxCharge); n != 1 {
		t.Fatalf("%d charges, want 1", n)
	}
}

// crashAfterCreate is a process that dies right after Vultr created the
// instance, before it could record it.
type crashAfterCreate struct{ domain.Provider }

var errCrashed = errors.New("the process died here")

func (c crashAfterCreate) CreateInstance(ctx context.Context, spec domain.InstanceSpec) (domain.Instance, error) {
	if _, err := c.Provider.CreateInstance(ctx, spec); err != nil {
		return domain.Instance{}, err
	}
	return domain.Instance{}, errCrashed
}

// A crash between the create and its record, then another process taking
// over after the lease, and two processes working at once: never a second
// instance, never a second charge.
func TestVultrCrashAfterCreateAndTwoWorkersMakeOneInstance(t *testing.T) {
	t.Parallel()
	w := newVultrWorld(t)
	crashed := w.process("10.00", func(p domain.Provider) domain.Provider { return crashAfterCreate{p} })
	acct, srv := w.deploy(crashed, "crash@example.com", "vc2-1c-1gb")
	runDue(t, crashed)

	a, b := w.process("10.00", nil), w.process("10.00", nil)
	// Within the lease the survivors leave the attempt alone.
	runDue(t, a)
	if n := w.fake.Count("POST", "/v2/instances"); n != 1 {
		t.Fatalf("%d creates within the lease, want 1", n)
	}
	w.clock.Advance(3 * time.Minute)
	var wg sync.WaitGroup
	for _, p := range []*wiring.Stack{a, b, a, b} {
		wg.Go(func() { _ = p.Worker.RunDue(context.Background()) })
	}
	wg.Wait()
	runDue(t, a)
	if n := len(w.fake.Instances()); n != 1 {
		t.Fatalf("%d instances, want 1", n)
	}
	if n := w.fake.Count("POST", "/v2/instances"); n != 1 {
		t.Fatalf("%d creates, want 1: a lookup by tag must come before any second create", n)
	}
	s, _ := w.server(a, acct, srv)
	if s.InstanceID != w.fake.Instances()[0].ID {
		t.Fatalf("server took instance %q, the cloud has %q", s.InstanceID, w.fake.Instances()[0].ID)
	}
	if err := a.Projector.CatchUp(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if n := ledgerCount(t, a, acct, domain.TxCharge); n != 1 {
		t.Fatalf("%d charges, want 1", n)
	}
}

// A plan sold out where Vultr is asked is a 400 naming it before anything
// is charged; one that sells out between the deploy and the create ends in
// ERROR with Vultr's reason, refunded.
func TestVultrSoldOutPlans(t *testing.T) {
	t.Parallel()
	w := newVultrWorld(t)
	p := w.process("10.00", nil)
	ctx := context.Background()
	id, _, err := p.App.Register(ctx, "soldout@example.com", "correct horse battery", eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	w.fake.SetSoldOut("fra", "vc2-2c-4gb", true)
	_, err = p.App.Deploy(ctx, id, []app.ServerRequest{{Label: "x", Plan: "vc2-2c-4gb", Region: "fra"}}, false, app.Idempotency{}, eventstore.Metadata{})
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeInvalid || !strings.Contains(de.Fields["planId"], "vc2-2c-4gb") {
		t.Fatalf("deploy of a sold-out plan: %v, want a 400 naming planId", err)
	}
	if _, st := w.server(p, id, ""); st.Balance.Cmp(domain.MustMoney("10.00")) != 0 {
		t.Fatalf("balance %s after a refused deploy, want 10.00", st.Balance)
	}

	res, err := p.App.Deploy(ctx, id, []app.ServerRequest{{Label: "y", Plan: "vc2-1c-1gb", Region: "ams"}}, false, app.Idempotency{}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	w.fake.SetSoldOut("ams", "vc2-1c-1gb", true)
	runDue(t, p)
	s, st := w.server(p, id, res.Servers[0].ID)
	if s.Status != domain.StatusError || !strings.Contains(s.Error, "not available") {
		t.Fatalf("server %s error %q, want ERROR with Vultr's reason", s.Status, s.Error)
	}
	if st.Balance.Cmp(domain.MustMoney("10.00")) != 0 {
		t.Fatalf("balance %s, want the first hour refunded (10.00)", st.Balance)
	}
	if !strings.Contains(w.logs.String(), "refused a deploy") {
		t.Fatalf("the refusal is not in the log")
	}
}

// The root password Vultr sets is shown to the owner once, never written
// to the log, and kept in the event log only sealed.
func TestVultrRootPasswordShownOnceAndNeverInTheLog(t *testing.T) {
	t.Parallel()
	w := newVultrWorld(t)
	p := w.process("10.00", nil)
	acct, srv := w.deploy(p, "root@example.com", "vc2-1c-1gb")
	runDue(t, p)
	password := w.fake.Instances()[0].Password
	if password == "" {
		t.Fatal("the fake set no password")
	}
	ctx := context.Background()
	// A process whose secrets key is not the one that sealed it shows
	// nothing, and leaves the password showable.
	w.key = bytes.Repeat([]byte{1}, 32)
	other := w.process("10.00", nil)
	if got, ok, err := other.App.RevealRootPassword(ctx, acct, srv, eventstore.Metadata{}); ok || err != nil || got != "" {
		t.Fatalf("a process with another key revealed %q %v %v", got, ok, err)
	}
	got, ok, err := p.App.RevealRootPassword(ctx, acct, srv, eventstore.Metadata{})
	if err != nil || !ok || got != password {
		t.Fatalf("first reveal: %q %v %v, want the password", got, ok, err)
	}
	if _, ok, err := p.App.RevealRootPassword(ctx, acct, srv, eventstore.Metadata{}); ok || err != nil {
		t.Fatalf("second reveal: %v %v, want nothing", ok, err)
	}
	if strings.Contains(w.logs.String(), password) {
		t.Fatal("the root password is in the log output")
	}
	events, err := w.store.ReadAll(ctx, eventstore.Position{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if bytes.Contains(ev.Data, []byte(password)) {
			t.Fatalf("the root password is in the event log: %s %s", ev.Type, ev.Data)
		}
	}
}

// A server whose balance runs out is halted at Vultr (off but recoverable)
// and started again when a top-up covers it.
func TestVultrSuspensionHaltsAndResumeStarts(t *testing.T) {
	t.Parallel()
	w := newVultrWorld(t)
	p := w.process("0.02", nil) // the first hour, and two more of vc2-1c-1gb (0.007)
	acct, srv := w.deploy(p, "halt@example.com", "vc2-1c-1gb")
	runDue(t, p)
	w.clock.Advance(2 * time.Minute)
	runDue(t, p)
	w.clock.Advance(3 * time.Hour)
	runDue(t, p) // suspends
	runDue(t, p) // halts
	s, _ := w.server(p, acct, srv)
	if s.Status != domain.StatusSuspended || !s.Halted || !w.fake.Instances()[0].Halted {
		t.Fatalf("server %s halted=%v, cloud halted=%v: want SUSPENDED and halted", s.Status, s.Halted, w.fake.Instances()[0].Halted)
	}
	ctx := context.Background()
	opened, err := p.App.CreateTopup(ctx, acct, domain.MustMoney("5.00"), "BTC", app.Idempotency{}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.App.PayTopup(ctx, acct, opened.Topup.ID, app.Idempotency{}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	runDue(t, p)
	s, _ = w.server(p, acct, srv)
	if s.Status != domain.StatusActive || s.Halted || w.fake.Instances()[0].Halted {
		t.Fatalf("server %s halted=%v, cloud halted=%v: want ACTIVE and running", s.Status, s.Halted, w.fake.Instances()[0].Halted)
	}
}

// Backups are Vultr snapshots: taken, polled until complete, restored into
// a new instance, and deleted with the backup.
func TestVultrBackupsAreSnapshots(t *testing.T) {
	t.Parallel()
	w := newVultrWorld(t)
	p := w.process("10.00", nil)
	acct, srv := w.deploy(p, "snap@example.com", "vc2-1c-1gb")
	runDue(t, p)
	w.clock.Advance(2 * time.Minute)
	runDue(t, p)
	ctx := context.Background()
	created, err := p.App.RequestBackup(ctx, acct, srv, app.Idempotency{}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	backup := created.ID
	runDue(t, p)
	if n := len(w.fake.Snapshots()); n != 1 {
		t.Fatalf("%d snapshots, want 1", n)
	}
	w.clock.Advance(6 * time.Minute)
	runDue(t, p)
	b, err := p.App.Backups.Load(ctx, backup)
	if err != nil {
		t.Fatal(err)
	}
	if b.State.Status != domain.BackupAvailable || b.State.SnapshotID != w.fake.Snapshots()[0].ID {
		t.Fatalf("backup %s snapshot %q, want AVAILABLE with the snapshot", b.State.Status, b.State.SnapshotID)
	}
	res, err := p.App.RestoreBackup(ctx, acct, backup, app.ServerRequest{}, app.Idempotency{}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	runDue(t, p)
	restored, _ := w.server(p, acct, res.Servers[0].ID)
	var from string
	for _, in := range w.fake.Instances() {
		if in.ID == restored.InstanceID {
			from = in.Snapshot
		}
	}
	if from != b.State.SnapshotID {
		t.Fatalf("restored instance made from snapshot %q, want %q", from, b.State.SnapshotID)
	}
	if _, err := p.App.DeleteBackup(ctx, acct, backup, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if n := len(w.fake.Snapshots()); n != 0 {
		t.Fatalf("%d snapshots after the backup was deleted, want 0", n)
	}
}
