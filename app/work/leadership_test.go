package work_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/work"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// paused is a provider whose CreateInstance stops, once armed, until
// released: a worker frozen in the middle of a create (a long GC pause, a
// stopped VM) while another worker carries on.
type paused struct {
	*sandbox.Cloud
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
	creates atomic.Int32
}

func (p *paused) CreateInstance(ctx context.Context, spec domain.InstanceSpec) (domain.Instance, error) {
	p.creates.Add(1)
	if p.armed.CompareAndSwap(true, false) {
		close(p.entered)
		<-p.release
	}
	return p.Cloud.CreateInstance(ctx, spec)
}

// worker is a second Service on the stack's store, read model and clock,
// with a provider of its own over the same cloud, as another API process.
func (s *stack) worker(t *testing.T, lease time.Duration, lead work.Leadership) (*node, *paused) {
	t.Helper()
	p := &paused{Cloud: s.cloud.Cloud, entered: make(chan struct{}), release: make(chan struct{})}
	svc := newNode(s.store, s.model, s.proj, s.creds, s.clock, p, lead, s.personal, work.Config{ProvisionAttempts: 3, ProvisionLease: lease})
	return svc, p
}

// Two workers that both believe they lead (the old leader paused past its
// session, the new one elected): the new one leaves the old one's attempt
// alone for the lease, then provisions; the old one, resuming, finds its
// instance refused and deletes it. One instance is left, the recorded one.
func TestAWorkerPausedInACreateAndItsSuccessorLeaveOneInstance(t *testing.T) {
	t.Parallel()
	s := newStack(t, t.TempDir())
	old, oldCloud := s.worker(t, 2*time.Minute, nil)
	successor, newCloud := s.worker(t, 2*time.Minute, nil)
	ctx := context.Background()
	acct, srv := s.deploy(t, "contended")

	oldCloud.armed.Store(true)
	oldDone := make(chan error, 1)
	go func() { oldDone <- old.RunDue(ctx) }()
	<-oldCloud.entered // attempt 1 recorded, the create under way and frozen

	for range 3 {
		if err := successor.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := newCloud.creates.Load(); n != 0 {
		t.Fatalf("the successor created %d instances within the lease of another worker's attempt", n)
	}
	if got := s.server(t, acct, srv); got.Attempts != 1 {
		t.Fatalf("attempts %d within the lease, want 1", got.Attempts)
	}

	// Past the lease the successor looks the instance up, finds none (the
	// frozen create has not reached the provider) and makes attempt 2.
	if _, err := successor.AdvanceClock(ctx, int64((3 * time.Minute).Seconds()), eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	got := s.server(t, acct, srv)
	if got.Attempts != 2 || got.InstanceID == "" || newCloud.creates.Load() != 1 {
		t.Fatalf("after the lease: attempts %d, instance %q, creates %d", got.Attempts, got.InstanceID, newCloud.creates.Load())
	}

	close(oldCloud.release)
	if err := <-oldDone; err != nil {
		t.Fatal(err)
	}
	if after := s.server(t, acct, srv); after.InstanceID != got.InstanceID {
		t.Fatalf("the recorded instance changed from %s to %s", got.InstanceID, after.InstanceID)
	}
	// The frozen worker's instance, the newest with the server's tag, is
	// being deleted; the recorded one is not.
	orphan, err := s.cloud.FindInstance(ctx, srv)
	if err != nil || orphan.ID == got.InstanceID || orphan.Status != domain.InstanceDestroying {
		t.Fatalf("newest instance with the tag %+v (%v): want the old worker's, being destroyed", orphan, err)
	}
	if kept, err := s.cloud.Instance(ctx, got.InstanceID); err != nil || kept.Status == domain.InstanceDestroying {
		t.Fatalf("the recorded instance %+v (%v) must stay", kept, err)
	}
	if oldCloud.creates.Load() != 1 {
		t.Fatalf("the old worker created %d instances", oldCloud.creates.Load())
	}
}

// A worker that decided on a stale state names an attempt that is no
// longer next: the domain refuses it and no instance is created.
func TestAWorkerOnAStaleAttemptIsRefused(t *testing.T) {
	t.Parallel()
	s := newStack(t, t.TempDir())
	ctx := context.Background()
	acct, srv := s.deploy(t, "stale")
	if _, err := s.svc.AdminCommand(ctx, acct, domain.StartProvision{ServerID: srv, Attempt: 1}, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	_, err := s.svc.AdminCommand(ctx, acct, domain.StartProvision{ServerID: srv, Attempt: 1}, eventstore.Metadata{})
	if !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("a second attempt 1: %v, want a StateError", err)
	}
}

// election is an in-memory Leadership shared by the workers of a test.
type election struct {
	mu     sync.Mutex
	holder string
	round  work.Round
}

// member is one worker's side of an election.
type member struct {
	e    *election
	name string
}

func (m member) Held(context.Context) bool {
	m.e.mu.Lock()
	defer m.e.mu.Unlock()
	if m.e.holder == "" {
		m.e.holder = m.name
	}
	return m.e.holder == m.name
}

func (m member) Completed(_ context.Context, r work.Round) error {
	m.e.mu.Lock()
	defer m.e.mu.Unlock()
	if m.e.holder != m.name {
		return errors.New("not the leader")
	}
	m.e.round = r
	return nil
}

func (m member) LastCompleted(context.Context) (work.Round, error) {
	m.e.mu.Lock()
	defer m.e.mu.Unlock()
	return m.e.round, nil
}

// die ends the holder's lead, as its database session ending would.
func (e *election) die() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.holder = ""
}

func deployThrough(t *testing.T, svc *node, label string) (accountID, serverID string) {
	t.Helper()
	ctx := context.Background()
	id, _, err := svc.Register(ctx, label+"@example.com", "correct horse battery", eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.Deploy(ctx, id, []app.ServerRequest{{Label: label, Plan: "vc2-1c-1gb", Region: "ams"}}, false, app.Idempotency{}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	return id, res.Servers[0].ID
}

// A clock advance through a process that does not lead returns once the
// leader has done everything due, and that process does none of it.
func TestAnAdvanceThroughAFollowerWaitsForTheLeadersWork(t *testing.T) {
	t.Parallel()
	s := newStack(t, t.TempDir())
	e := &election{}
	leader, leaderCloud := s.worker(t, 2*time.Minute, member{e, "leader"})
	follower, followerCloud := s.worker(t, 2*time.Minute, member{e, "follower"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = leader.Run(ctx, 20*time.Millisecond); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	acct, srv := deployThrough(t, follower, "waits")
	// 90 s: the provisioning delay is a minute, counted from the create,
	// which the leader makes before the clock moves.
	if _, err := follower.AdvanceClock(context.Background(), 90, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	got := s.server(t, acct, srv)
	if got.Status != domain.StatusActive || got.IPv4 == "" {
		t.Fatalf("server %s right after the advance, want ACTIVE", got.Status)
	}
	if l, f := leaderCloud.creates.Load(), followerCloud.creates.Load(); l != 1 || f != 0 {
		t.Fatalf("creates: leader %d, follower %d; want 1 and 0", l, f)
	}
}

// If the leader dies while a follower waits on it for a clock advance, the
// follower takes the lead and does the work itself.
func TestAnAdvanceWaitingOnADeadLeaderTakesOver(t *testing.T) {
	t.Parallel()
	s := newStack(t, t.TempDir())
	e := &election{holder: "leader"} // it leads, but does no work: frozen, then dead
	follower, followerCloud := s.worker(t, 2*time.Minute, member{e, "follower"})
	acct, srv := deployThrough(t, follower, "takeover")
	time.AfterFunc(200*time.Millisecond, e.die)
	start := time.Now()
	if _, err := follower.AdvanceClock(context.Background(), 90, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("the advance returned after %s, before the leader died", took)
	}
	if got := s.server(t, acct, srv); got.Status != domain.StatusActive {
		t.Fatalf("server %s, want ACTIVE", got.Status)
	}
	if n := followerCloud.creates.Load(); n != 1 {
		t.Fatalf("the follower created %d instances, want 1", n)
	}
}

// Every process's clock follows the clock stream, and advances made through
// two processes at once add up rather than one overwriting the other.
func TestClockAdvancesReachEveryProcessAndAddUp(t *testing.T) {
	t.Parallel()
	s := newStack(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	other := func() (*node, *sandbox.Clock) {
		head, err := s.store.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		off, err := clockOffset(ctx, s.store)
		if err != nil {
			t.Fatal(err)
		}
		clock := sandbox.NewClock(time.Now, off)
		svc := newNode(s.store, s.model, s.proj, s.creds, clock, s.cloud, nil, s.personal, work.Config{})
		go func() { _ = svc.FollowClock(ctx, clock, head) }()
		return svc, clock
	}
	a, clockA := other()
	b, clockB := other()
	waitOffset := func(c *sandbox.Clock, want time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); c.Offset() != want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("clock offset %s, want %s", c.Offset(), want)
			}
		}
	}

	if _, err := a.AdvanceClock(ctx, 3600, eventstore.Metadata{}); err != nil {
		t.Fatal(err)
	}
	waitOffset(clockB, time.Hour)

	var wg sync.WaitGroup
	for _, p := range []struct {
		svc   *node
		clock *sandbox.Clock
	}{{a, clockA}, {b, clockB}} {
		wg.Go(func() {
			if _, err := p.svc.AdvanceClock(ctx, 3600, eventstore.Metadata{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	off, err := clockOffset(ctx, s.store)
	if err != nil {
		t.Fatal(err)
	}
	if off != 3*time.Hour {
		t.Fatalf("offset in the log %s after three advances of an hour, want 3h", off)
	}
	waitOffset(clockA, 3*time.Hour)
	waitOffset(clockB, 3*time.Hour)
}
