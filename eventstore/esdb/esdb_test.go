package esdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	kurrent "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/eventstore/esdb/esdbtest"
	"github.com/cryptovps/cryptovps/eventstore/storetest"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// startDouble starts the KurrentDB test double. Appends up to 16 MiB are
// allowed, as the README asks of a real server used for the contract suite
// (its LargeEvents case appends over 2 MiB at once).
func startDouble(t testing.TB, opts esdbtest.Options) *esdbtest.Server {
	t.Helper()
	if opts.MaxAppendSize == 0 {
		opts.MaxAppendSize = 16 << 20
	}
	srv, err := esdbtest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return nil
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func openStore(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// TestContract runs the event-store contract suite against the adapter
// connected to the in-process KurrentDB test double, with system events
// written all along as a real node does.
func TestContract(t *testing.T) {
	srv := startDouble(t, esdbtest.Options{StatsInterval: 20 * time.Millisecond})
	storetest.Run(t, func(t *testing.T) eventstore.Store { return openStore(t, srv.URL(), Options{}) })
}

// TestContractRealServer runs the same suite against a real KurrentDB when
// CRYPTOVPS_TEST_ESDB_URL names one (see the README: a single insecure node
// started with a 16 MiB maximum append size).
func TestContractRealServer(t *testing.T) {
	url := os.Getenv("CRYPTOVPS_TEST_ESDB_URL")
	if url == "" {
		t.Skip("CRYPTOVPS_TEST_ESDB_URL not set: no real KurrentDB to test against")
	}
	storetest.Run(t, func(t *testing.T) eventstore.Store { return openStore(t, url, Options{}) })
}

func ev(typ string, n int) eventstore.Proposed {
	return eventstore.Proposed{ID: uuid.New(), Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		Meta: eventstore.Metadata{Actor: "test", RequestID: fmt.Sprint("req-", n)}}
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// collector is a subscriber that checks order and remembers what it got.
type collector struct {
	mu     sync.Mutex
	last   eventstore.Position
	ids    []uuid.UUID
	seen   map[uuid.UUID]bool
	err    error
	notify chan struct{}
}

func newCollector() *collector {
	return &collector{seen: map[uuid.UUID]bool{}, notify: make(chan struct{}, 1)}
}

func (c *collector) fn(batch []eventstore.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(batch) == 0 {
		c.err = errors.New("empty batch")
		return c.err
	}
	for _, e := range batch {
		if !c.last.Less(e.Position) {
			c.err = fmt.Errorf("event at %v delivered after %v", e.Position, c.last)
			return c.err
		}
		if c.seen[e.ID] {
			c.err = fmt.Errorf("event %s delivered twice", e.ID)
			return c.err
		}
		if strings.HasPrefix(e.Stream, "$") || strings.HasPrefix(e.Type, "$") {
			c.err = fmt.Errorf("system event %s/%s delivered", e.Stream, e.Type)
			return c.err
		}
		c.last = e.Position
		c.seen[e.ID] = true
		c.ids = append(c.ids, e.ID)
	}
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return nil
}

// waitFor waits until the collector has every id in want.
func (c *collector) waitFor(t *testing.T, want []uuid.UUID, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		c.mu.Lock()
		err, missing := c.err, 0
		for _, id := range want {
			if !c.seen[id] {
				missing++
			}
		}
		c.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if missing == 0 {
			return
		}
		select {
		case <-c.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("%d of %d events not delivered within %s", missing, len(want), within)
		}
	}
}

func appendN(t *testing.T, s *Store, stream string, n, from int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for i := range n {
		p := ev("X", from+i)
		if _, err := s.Append(ctxT(t, 20*time.Second), stream, eventstore.Any, []eventstore.Proposed{p}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	return ids
}

// waitReachable waits until the store's probe has found KurrentDB again
// after calls started failing fast.
func waitReachable(t *testing.T, s *Store) {
	t.Helper()
	select {
	case <-s.reachable():
	case <-time.After(20 * time.Second):
		t.Fatal("the store did not find KurrentDB again within 20s")
	}
}

func fastOptions() Options {
	return Options{RetryMin: 20 * time.Millisecond, RetryMax: 300 * time.Millisecond, Timeout: 3 * time.Second}
}

// TestSubscriptionResumesAfterDrop: the server ends every subscription
// (a leader change does that); the adapter resubscribes from the last
// delivered position and the subscriber sees everything once, in order.
func TestSubscriptionResumesAfterDrop(t *testing.T) {
	srv := startDouble(t, esdbtest.Options{})
	s := openStore(t, srv.URL(), fastOptions())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newCollector()
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, eventstore.Position{}, c.fn) }()

	var want []uuid.UUID
	for round := range 5 {
		want = append(want, appendN(t, s, fmt.Sprint("drop-", round%2), 20, round*20)...)
		srv.AppendSystemEvent("$stats-test", "$statsCollected", []byte(`{}`))
		c.waitFor(t, want, 20*time.Second)
		srv.DropSubscriptions()
	}
	want = append(want, appendN(t, s, "drop-0", 5, 100)...)
	c.waitFor(t, want, 20*time.Second)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe returned %v, want context.Canceled", err)
	}
	if len(c.ids) != len(want) {
		t.Errorf("delivered %d events, want %d", len(c.ids), len(want))
	}
}

// TestSurvivesServerRestart kills the server (every connection cut) and
// starts it again on the same port: appends meanwhile fail with
// ErrUnavailable, quickly and without panicking, and afterwards both
// appends and the subscription carry on where they were.
func TestSurvivesServerRestart(t *testing.T) {
	srv := startDouble(t, esdbtest.Options{})
	s := openStore(t, srv.URL(), fastOptions())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newCollector()
	done := make(chan error, 1)
	go func() { done <- s.Subscribe(ctx, eventstore.Position{}, c.fn) }()

	want := appendN(t, s, "restart-a", 10, 0)
	c.waitFor(t, want, 20*time.Second)

	for round := range 2 {
		srv.Stop()
		for i := range 3 {
			start := time.Now()
			_, err := s.Append(ctxT(t, 20*time.Second), "restart-a", eventstore.Any, []eventstore.Proposed{ev("X", 1000+i)})
			if !errors.Is(err, eventstore.ErrUnavailable) {
				t.Fatalf("append while the server is down: %v, want ErrUnavailable", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("append while down took %s", d)
			}
			if _, err := s.ReadStream(ctxT(t, 20*time.Second), "restart-a", 0); !errors.Is(err, eventstore.ErrUnavailable) {
				t.Fatalf("read while the server is down: %v, want ErrUnavailable", err)
			}
		}
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		// The store finds the server again by itself.
		waitReachable(t, s)
		p := ev("X", 2000+round)
		if _, err := s.Append(ctxT(t, 20*time.Second), "restart-a", eventstore.Any, []eventstore.Proposed{p}); err != nil {
			t.Fatalf("append after restart: %v", err)
		}
		want = append(want, p.ID)
		want = append(want, appendN(t, s, "restart-b", 10, round*10)...)
		c.waitFor(t, want, 20*time.Second)
	}
	evs, err := s.ReadStream(ctxT(t, 20*time.Second), "restart-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 12 {
		t.Errorf("restart-a has %d events, want 12 (no failed append written)", len(evs))
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe returned %v", err)
	}
}

// TestUnavailable: an unreachable or not-ready KurrentDB is ErrUnavailable
// for every call, never a panic or a hang.
func TestUnavailable(t *testing.T) {
	// Nothing listens on a port just released.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	start := time.Now()
	_, err = Open(ctxT(t, 30*time.Second), "esdb://"+addr+"?tls=false", fastOptions())
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("Open on a closed port: %v, want ErrUnavailable", err)
	}
	t.Logf("Open on a closed port failed after %s: %v", time.Since(start), err)

	srv := startDouble(t, esdbtest.Options{})
	s := openStore(t, srv.URL(), fastOptions())
	if _, err := s.Append(ctxT(t, 10*time.Second), "u", eventstore.NoStream, []eventstore.Proposed{ev("X", 0)}); err != nil {
		t.Fatal(err)
	}
	srv.SetNotReady(true)
	_, err = s.Append(ctxT(t, 10*time.Second), "u", 0, []eventstore.Proposed{ev("X", 1)})
	if !errors.Is(err, eventstore.ErrUnavailable) || !strings.Contains(err.Error(), "Not Ready") {
		t.Fatalf("append to a node that is not ready: %v", err)
	}
	for name, call := range map[string]func(context.Context) error{
		"ReadStream": func(ctx context.Context) error { _, err := s.ReadStream(ctx, "u", 0); return err },
		"ReadAll":    func(ctx context.Context) error { _, err := s.ReadAll(ctx, eventstore.Position{}, 10); return err },
		"Head":       func(ctx context.Context) error { _, err := s.Head(ctx); return err },
		"Append": func(ctx context.Context) error {
			_, err := s.Append(ctx, "u", 0, []eventstore.Proposed{ev("X", 1)})
			return err
		},
	} {
		if err := call(ctxT(t, 10*time.Second)); !errors.Is(err, eventstore.ErrUnavailable) {
			t.Errorf("%s while not ready: %v, want ErrUnavailable", name, err)
		}
	}
	srv.SetNotReady(false)
	waitReachable(t, s)
	if _, err := s.Append(ctxT(t, 10*time.Second), "u", 0, []eventstore.Proposed{ev("X", 1)}); err != nil {
		t.Fatalf("append once ready again: %v", err)
	}

	// A cancelled caller gets its own error back, not an outage.
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := s.ReadStream(cctx, "u", 0); !errors.Is(err, context.Canceled) {
		t.Errorf("read with a cancelled context: %v", err)
	}
}

// TestSystemEventsLeftOut: $all holds KurrentDB's own events; ReadAll, Head
// and Subscribe never show them.
func TestSystemEventsLeftOut(t *testing.T) {
	srv := startDouble(t, esdbtest.Options{})
	s := openStore(t, srv.URL(), fastOptions())
	ctx := ctxT(t, 30*time.Second)
	if head, err := s.Head(ctx); err != nil || !head.IsZero() {
		t.Fatalf("head of a log of system events only: %v, %v", head, err)
	}
	var want []eventstore.AppendResult
	for i := range 10 {
		res, err := s.Append(ctx, "sys", eventstore.Any, []eventstore.Proposed{ev("X", i)})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, res)
		for range 40 { // more than a page of system events between ours
			srv.AppendSystemEvent("$stats-x", "$statsCollected", []byte(`{}`))
		}
		srv.AppendSystemEvent("sys-metadata-looking", "$metadata", []byte(`{}`))
	}
	head, err := s.Head(ctx)
	if err != nil || head != want[9].Position {
		t.Fatalf("head %v (%v), want %v", head, err, want[9].Position)
	}
	all, err := s.ReadAll(ctx, eventstore.Position{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 10 {
		t.Fatalf("ReadAll returned %d events, want our 10", len(all))
	}
	for i, e := range all {
		if e.Position != want[i].Position {
			t.Errorf("event %d at %v, want %v", i, e.Position, want[i].Position)
		}
	}
	page, err := s.ReadAll(ctx, want[3].Position, 2)
	if err != nil || len(page) != 2 || page[0].Position != want[4].Position || page[1].Position != want[5].Position {
		t.Errorf("ReadAll after the 4th event, limit 2: %v, %v", page, err)
	}
	c := newCollector()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = s.Subscribe(sctx, want[1].Position, c.fn) }()
	var ids []uuid.UUID
	for _, e := range all[2:] {
		ids = append(ids, e.ID)
	}
	c.waitFor(t, ids, 20*time.Second)
}

func TestAppendDetails(t *testing.T) {
	srv := startDouble(t, esdbtest.Options{MaxAppendSize: 1 << 20})
	s := openStore(t, srv.URL(), fastOptions())
	ctx := ctxT(t, 30*time.Second)

	// The conflict names the stream, what was expected and what is there.
	if _, err := s.Append(ctx, "vm-1", eventstore.NoStream, []eventstore.Proposed{ev("X", 0), ev("X", 1)}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(ctx, "vm-1", 4, []eventstore.Proposed{ev("X", 2)})
	if !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatal(err)
	}
	for _, want := range []string{"vm-1", "4", "'1'"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	// Names and types KurrentDB keeps for itself are refused up front.
	if _, err := s.Append(ctx, "$ours", eventstore.Any, []eventstore.Proposed{ev("X", 0)}); err == nil {
		t.Error("append to a $ stream succeeded")
	}
	if _, err := s.Append(ctx, "a", eventstore.Any, []eventstore.Proposed{ev("$X", 0)}); err == nil {
		t.Error("append of a $ type succeeded")
	}
	bad := ev("X", 0)
	bad.Data = json.RawMessage(`{"n":`)
	if _, err := s.Append(ctx, "a", eventstore.Any, []eventstore.Proposed{bad}); err == nil {
		t.Error("append with invalid JSON succeeded")
	}

	// An append over the server's limit is refused as a request error, not
	// an outage, and nothing of it is written.
	big := ev("Big", 0)
	big.Data = json.RawMessage(`"` + strings.Repeat("x", 700<<10) + `"`)
	big2 := ev("Big", 1)
	big2.Data = big.Data
	before := srv.Count()
	_, err = s.Append(ctx, "big", eventstore.NoStream, []eventstore.Proposed{big, big2})
	if err == nil || errors.Is(err, eventstore.ErrUnavailable) || !strings.Contains(err.Error(), "Maximum Append Size") {
		t.Errorf("oversized append: %v", err)
	}
	if srv.Count() != before {
		t.Error("oversized append wrote something")
	}
	if evs, _ := s.ReadStream(ctx, "big", 0); len(evs) != 0 {
		t.Errorf("oversized append left %d events", len(evs))
	}

	// Import keeps the original recording time; Append takes the server's.
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	orig := eventstore.Event{ID: uuid.New(), Type: "Old", Data: json.RawMessage(`{"old":true}`),
		Meta: eventstore.Metadata{Actor: "someone", Causation: "c"}, RecordedAt: at}
	res, err := s.Import(ctx, "imported", eventstore.NoStream, []eventstore.Event{orig})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := s.ReadStream(ctx, "imported", 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("%v %v", evs, err)
	}
	if got := evs[0]; !got.RecordedAt.Equal(at) || got.Meta != orig.Meta || got.ID != orig.ID || got.Position != res.Position {
		t.Errorf("imported event read back as %+v", got)
	}
	fresh, err := s.ReadStream(ctx, "vm-1", 0)
	if err != nil || time.Since(fresh[0].RecordedAt) > time.Minute || fresh[0].RecordedAt.Location() != time.UTC {
		t.Errorf("RecordedAt of a new event: %v (%v)", fresh[0].RecordedAt, err)
	}
}

// TestRetryRecognised: a retry is answered with the original result, whether
// KurrentDB recognises it (same expected revision) or the adapter does (the
// ids are the tail), and nothing is written twice.
func TestRetryRecognised(t *testing.T) {
	srv := startDouble(t, esdbtest.Options{IdempotencyWindow: 1})
	s := openStore(t, srv.URL(), fastOptions())
	ctx := ctxT(t, 30*time.Second)
	first := []eventstore.Proposed{ev("X", 0), ev("X", 1), ev("X", 2)}
	res, err := s.Append(ctx, "r", eventstore.NoStream, first)
	if err != nil {
		t.Fatal(err)
	}
	// Push the ids out of the server's small idempotency window.
	appendN(t, s, "other", 3, 0)
	for _, expected := range []int64{eventstore.NoStream, eventstore.Any, 2} {
		again, err := s.Append(ctx, "r", expected, first)
		if err != nil || again != res {
			t.Errorf("retry with expected %d: %+v, %v; want %+v", expected, again, err, res)
		}
	}
	evs, err := s.ReadStream(ctx, "r", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 {
		t.Errorf("stream has %d events after retries, want 3", len(evs))
	}
}

func TestCloseEndsSubscription(t *testing.T) {
	srv := startDouble(t, esdbtest.Options{})
	s := openStore(t, srv.URL(), fastOptions())
	appendN(t, s, "c", 3, 0)
	got := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(context.Background(), eventstore.Position{}, func([]eventstore.Event) error {
			select {
			case got <- struct{}{}:
			default:
			}
			return nil
		})
	}()
	<-got
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("Subscribe returned %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the subscription")
	}
}

// ---- positions as projection checkpoints ----

// logStep is one append of the scripted history both stores receive.
type logStep struct {
	stream string
	events []eventstore.Proposed
}

func history(t *testing.T, accounts, from int) []logStep {
	t.Helper()
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func(e domain.Event) eventstore.Proposed {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return eventstore.Proposed{ID: uuid.New(), Type: e.EventType(), Data: b, Meta: eventstore.Metadata{Actor: "test"}}
	}
	var steps []logStep
	for i := from; i < from+accounts; i++ {
		id := fmt.Sprintf("acc%03d", i)
		at = at.Add(time.Minute)
		steps = append(steps, logStep{domain.AccountStream(id), []eventstore.Proposed{
			mk(domain.AccountRegistered{AccountID: id, Email: id + "@example.com", PasswordHash: "x", ServerLimit: 10, At: at}),
		}})
		steps = append(steps, logStep{domain.AccountStream(id), []eventstore.Proposed{
			mk(domain.ServerLimitSet{Limit: i % 7, Actor: "op", At: at}),
			mk(domain.TopupCreated{TopupID: id + "-t1", Amount: domain.MustMoney("12.50"), Currency: "USDC", PayAddress: "addr", ProviderRef: "p", At: at}),
		}})
		if i%3 == 0 {
			steps = append(steps, logStep{domain.AccountStream(id), []eventstore.Proposed{
				mk(domain.AccountSuspended{Reason: "abuse", Actor: "op", At: at}),
				mk(domain.TopupPaid{TopupID: id + "-t1", At: at}),
			}})
		}
	}
	return steps
}

// play appends the steps in order, each at the exact expected version.
func play(t *testing.T, s eventstore.Store, steps []logStep, versions map[string]int64, between func()) {
	t.Helper()
	ctx := ctxT(t, 60*time.Second)
	for _, st := range steps {
		v, ok := versions[st.stream]
		if !ok {
			v = eventstore.NoStream
		}
		res, err := s.Append(ctx, st.stream, v, st.events)
		if err != nil {
			t.Fatal(err)
		}
		versions[st.stream] = int64(res.Version)
		if between != nil {
			between()
		}
	}
}

func waitApplied(t *testing.T, p *projections.Projector, s eventstore.Store) {
	t.Helper()
	head, err := s.Head(ctxT(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WaitFor(ctxT(t, 30*time.Second), head, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestPositionsAsProjectionCheckpoints runs the projector with the memory
// read model over KurrentDB (through the test double, with system events in
// between, a dropped subscription, and a restart of the projector from the
// model's KurrentDB checkpoint) and over bbolt, on the same history: both
// read models must come out the same.
func TestPositionsAsProjectionCheckpoints(t *testing.T) {
	srv := startDouble(t, esdbtest.Options{StatsInterval: 5 * time.Millisecond})
	kdb := openStore(t, srv.URL(), fastOptions())
	embedded, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer embedded.Close()
	log := slog.New(slog.DiscardHandler)

	part1, part2, part3 := history(t, 20, 0), history(t, 20, 20), history(t, 20, 40)
	kv, bv := map[string]int64{}, map[string]int64{}

	run := func(store eventstore.Store, model *memory.Model) (*projections.Projector, context.CancelFunc, chan error) {
		p := projections.NewProjector(store, model, log)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		return p, cancel, done
	}

	kModel, bModel := memory.New(kdb), memory.New(embedded)
	play(t, kdb, part1, kv, func() { srv.AppendSystemEvent("$settings", "$settings", []byte(`{}`)) })
	play(t, embedded, part1, bv, nil)
	// Catch up by reading, as a starting server does.
	for _, c := range []struct {
		s eventstore.Store
		m *memory.Model
	}{{kdb, kModel}, {embedded, bModel}} {
		if err := projections.NewProjector(c.s, c.m, log).CatchUp(ctxT(t, 30*time.Second), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Then live, through a dropped subscription.
	kp, kcancel, kdone := run(kdb, kModel)
	bp, bcancel, bdone := run(embedded, bModel)
	n := 0
	play(t, kdb, part2, kv, func() {
		if n++; n%10 == 0 {
			srv.DropSubscriptions()
		}
	})
	play(t, embedded, part2, bv, nil)
	waitApplied(t, kp, kdb)
	waitApplied(t, bp, embedded)
	kcancel()
	bcancel()
	<-kdone
	<-bdone

	// A new projector resumes from the KurrentDB position kept in the model.
	cp, _ := kModel.Checkpoint(context.Background())
	if head, _ := kdb.Head(context.Background()); cp != head {
		t.Fatalf("model checkpoint %v, head of the log %v", cp, head)
	}
	play(t, kdb, part3, kv, nil)
	play(t, embedded, part3, bv, nil)
	kp, kcancel, kdone = run(kdb, kModel)
	bp, bcancel, bdone = run(embedded, bModel)
	waitApplied(t, kp, kdb)
	waitApplied(t, bp, embedded)
	kcancel()
	bcancel()
	<-kdone
	<-bdone

	ctx := context.Background()
	for i := range 60 {
		id := fmt.Sprintf("acc%03d", i)
		ka, kerr := kModel.Account(ctx, id)
		ba, berr := bModel.Account(ctx, id)
		if kerr != nil || berr != nil || ka != ba {
			t.Errorf("account %s: KurrentDB model %+v (%v), bbolt model %+v (%v)", id, ka, kerr, ba, berr)
		}
		kt, _ := kModel.Topups(ctx, id)
		bt, _ := bModel.Topups(ctx, id)
		if fmt.Sprint(kt) != fmt.Sprint(bt) || len(kt) != 1 {
			t.Errorf("account %s topups: %v vs %v", id, kt, bt)
		}
	}
}

// TestLeaderChange: a node that is no longer the leader answers "not
// leader" with the new leader's address; the call is made again there, and a
// subscription carries on.
func TestLeaderChange(t *testing.T) {
	srv := startDouble(t, esdbtest.Options{})
	s := openStore(t, srv.URL(), fastOptions())
	ctx := ctxT(t, 30*time.Second)
	c := newCollector()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = s.Subscribe(sctx, eventstore.Position{}, c.fn) }()
	want := appendN(t, s, "leader", 3, 0)
	c.waitFor(t, want, 20*time.Second)

	srv.FailAsNotLeader(1)
	p := ev("X", 10)
	if _, err := s.Append(ctx, "leader-new", eventstore.NoStream, []eventstore.Proposed{p}); err != nil {
		t.Fatalf("append across a leader change: %v", err)
	}
	want = append(want, p.ID)
	// Every call fails while the election lasts, so a subscription
	// reconnecting meanwhile cannot use up the failures meant for the append.
	srv.FailAsNotLeader(1 << 20)
	_, err := s.Append(ctx, "leader-other", eventstore.NoStream, []eventstore.Proposed{ev("X", 11)})
	if !errors.Is(err, eventstore.ErrUnavailable) || !strings.Contains(err.Error(), "leader") {
		t.Errorf("append during a long election: %v, want ErrUnavailable", err)
	}
	srv.FailAsNotLeader(0)
	srv.FailAsNotLeader(1)
	srv.DropSubscriptions()
	want = append(want, appendN(t, s, "leader", 3, 20)...)
	c.waitFor(t, want, 20*time.Second)

	// Nothing was written twice, and the refused append not at all.
	for stream, n := range map[string]int{"leader": 6, "leader-new": 1, "leader-other": 0} {
		evs, err := s.ReadStream(ctx, stream, 0)
		if err != nil || len(evs) != n {
			t.Errorf("stream %s: %d events (%v), want %d", stream, len(evs), err, n)
		}
	}
}

// TestAppendCutShortByNotLeader: a follower answers "not leader" as soon as
// an append starts, while the client is still sending it; gRPC then reports
// the end of the call to the client as io.EOF, and the client (v4.2.0)
// neither reads the answer nor turns to the leader. The adapter takes that
// as the leader change it is: the append is made again, once, and written
// once. (Whether a given append is cut short or answered after it is sent
// is a race in gRPC; many events make the first more likely, and both must
// end the same way.)
func TestAppendCutShortByNotLeader(t *testing.T) {
	srv := startDouble(t, esdbtest.Options{})
	s := openStore(t, srv.URL(), fastOptions())
	ctx := ctxT(t, 60*time.Second)
	for round := range 5 {
		stream := fmt.Sprint("cut-", round)
		events := make([]eventstore.Proposed, 200)
		for i := range events {
			events[i] = ev("X", i)
		}
		srv.FailAsNotLeader(1)
		res, err := s.Append(ctx, stream, eventstore.NoStream, events)
		if err != nil {
			t.Fatalf("round %d: append across a leader change: %v", round, err)
		}
		evs, err := s.ReadStream(ctx, stream, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != len(events) || res.Version != uint64(len(events)-1) || evs[len(evs)-1].Position != res.Position {
			t.Fatalf("round %d: %d events, result %+v, want %d events ending at the result", round, len(evs), res, len(events))
		}
	}
}

// TestAppendAnswerLostAtLeaderChange: the leader writes an append and steps
// down before acknowledging it; the client is told "not leader". The adapter
// makes the append again on the new leader and must find it written, never
// write it twice, and return where it was written, whatever the expected
// version. The server's own idempotency window is one event, so that for
// Any the recognition is the adapter's.
func TestAppendAnswerLostAtLeaderChange(t *testing.T) {
	srv := startDouble(t, esdbtest.Options{IdempotencyWindow: 1})
	s := openStore(t, srv.URL(), fastOptions())
	ctx := ctxT(t, 60*time.Second)

	check := func(t *testing.T, stream string, want int, res eventstore.AppendResult) {
		t.Helper()
		evs, err := s.ReadStream(ctx, stream, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != want {
			t.Fatalf("stream %s has %d events, want %d", stream, len(evs), want)
		}
		if last := evs[len(evs)-1]; res.Version != last.Version || res.Position != last.Position {
			t.Errorf("stream %s: append returned %+v, its last event is at %d/%v", stream, res, last.Version, last.Position)
		}
		seen := map[uuid.UUID]bool{}
		for _, e := range evs {
			if seen[e.ID] {
				t.Errorf("stream %s: event %s written twice", stream, e.ID)
			}
			seen[e.ID] = true
		}
	}
	for _, tc := range []struct {
		name     string
		expected int64
		before   int // events already in the stream
	}{
		{"no stream", eventstore.NoStream, 0},
		{"exact", 1, 2},
		{"any", eventstore.Any, 2},
		{"any, new stream", eventstore.Any, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := "lost-" + strings.ReplaceAll(tc.name, " ", "-")
			if tc.before > 0 {
				appendN(t, s, stream, tc.before, 0)
			}
			events := []eventstore.Proposed{ev("X", 100), ev("X", 101), ev("X", 102)}
			srv.LoseAppendAnswers(1)
			requests := srv.AppendRequests()
			res, err := s.Append(ctx, stream, tc.expected, events)
			if err != nil {
				t.Fatalf("append whose answer was lost: %v", err)
			}
			if n := srv.AppendRequests() - requests; n < 1 || n > 2 {
				t.Errorf("%d append requests, want the lost one and at most one retry", n)
			}
			check(t, stream, tc.before+len(events), res)
			// The caller, not knowing, retries too: same answer, no write.
			again, err := s.Append(ctx, stream, tc.expected, events)
			if err != nil || again != res {
				t.Errorf("caller's retry: %+v, %v; want %+v", again, err, res)
			}
			check(t, stream, tc.before+len(events), res)
		})
	}

	// Every answer lost until the adapter gives up: the caller gets
	// ErrUnavailable (never a raw io.EOF), and its own retry later finds
	// the events written once. Import relies on KurrentDB's recognition of
	// the retry alone (exact expected version).
	src := eventstore.Event{ID: uuid.New(), Type: "X", Data: json.RawMessage(`{}`), RecordedAt: time.Now().UTC()}
	srv.LoseAppendAnswers(callAttempts)
	_, err := s.Import(ctx, "lost-import", eventstore.NoStream, []eventstore.Event{src})
	if !errors.Is(err, eventstore.ErrUnavailable) || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "leader") {
		t.Fatalf("import whose answers were all lost: %v, want ErrUnavailable naming the leader change", err)
	}
	res, err := s.Import(ctx, "lost-import", eventstore.NoStream, []eventstore.Event{src})
	if err != nil {
		t.Fatalf("caller's retry of the import: %v", err)
	}
	check(t, "lost-import", 1, res)
}

// TestLeaderChangeErrors: which client errors the adapter takes for a call
// caught in a leader change, and that none of them leaks io.EOF.
func TestLeaderChangeErrors(t *testing.T) {
	s := &Store{}
	bg := context.Background()
	eof, _ := kurrent.FromError(fmt.Errorf("could not send append request header. Reason: %w", io.EOF))
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"cut short", fmt.Errorf("could not send append request header. Reason: %w", eof), true},
		{"connection closing", status.Error(codes.Canceled, "grpc: the client connection is closing"), true},
		{"stream cut by the closing connection", status.Error(codes.Unavailable, "rpc error: code = Canceled desc = grpc: the client connection is closing"), true},
		{"transport closing", fmt.Errorf("wrapped: %w", status.Error(codes.Unavailable, "transport is closing")), true},
		{"not ready", status.Error(codes.Unavailable, "Server Is Not Ready"), false},
		{"unavailable", status.Error(codes.Unavailable, "connection refused"), false},
		{"other", errors.New("boom"), false},
	} {
		err := s.leaderChange(bg, bg, tc.err)
		if ok := err != nil; ok != tc.want {
			t.Errorf("%s: leader change %v, want %v", tc.name, ok, tc.want)
		}
		if err != nil && (errors.Is(err, io.EOF) || !errors.Is(err, errLeaderChange)) {
			t.Errorf("%s: %v wraps io.EOF or not errLeaderChange", tc.name, err)
		}
	}
	cancelled, cancel := context.WithCancel(bg)
	cancel()
	if err := s.leaderChange(bg, cancelled, status.Error(codes.Canceled, "context canceled")); err != nil {
		t.Error("a call whose own context ended was taken for a leader change")
	}
}
