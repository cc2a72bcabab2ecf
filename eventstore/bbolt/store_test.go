package bbolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/storetest"
	"github.com/google/uuid"
)

func openTemp(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "events.db"), opts)
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

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store { return openTemp(t, Options{}) })
}

func ev(typ string, n int) eventstore.Proposed {
	return eventstore.Proposed{ID: uuid.New(), Type: typ, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		stream := fmt.Sprint("s", i%3)
		if _, err := s.Append(ctx, stream, eventstore.Any, []eventstore.Proposed{ev("X", i)}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.ReadAll(ctx, eventstore.Position{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, err := s.ReadAll(ctx, eventstore.Position{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 30 {
		t.Fatalf("reopened log has %d events, want 30", len(after))
	}
	for i := range after {
		a, b := after[i], before[i]
		if a.ID != b.ID || a.Stream != b.Stream || a.Version != b.Version || a.Position != b.Position ||
			!a.RecordedAt.Equal(b.RecordedAt) || string(a.Data) != string(b.Data) {
			t.Errorf("event %d changed across reopen:\n %+v\n %+v", i, b, a)
		}
		if a.Position.Commit != uint64(i+1) {
			t.Errorf("event %d at %v, want sequence %d", i, a.Position, i+1)
		}
	}
	head, _ := s.Head(ctx)
	if head.Commit != 30 {
		t.Errorf("head after reopen %v, want 30", head)
	}
	_, err = s.Append(ctx, "s0", eventstore.NoStream, []eventstore.Proposed{ev("X", 0)})
	if !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Errorf("NoStream on reopened stream: %v", err)
	}
	res, err := s.Append(ctx, "s0", 9, []eventstore.Proposed{ev("X", 30)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 10 || res.Position != (eventstore.Position{Commit: 31, Prepare: 31}) {
		t.Errorf("append after reopen: %+v, want version 10 at 31", res)
	}
	// A retry of an append made before the restart is still recognised.
	last := before[len(before)-1]
	retry := eventstore.Proposed{ID: last.ID, Type: last.Type, Data: last.Data}
	if res, err := s.Append(ctx, last.Stream, eventstore.Any, []eventstore.Proposed{retry}); err != nil || res.Position != last.Position {
		t.Errorf("retry across restart: %+v, %v", res, err)
	}
}

func TestSecondOpenFailsQuickly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s2, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second Open succeeded while the file is in use")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second Open took %v to fail", d)
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open error %q does not say the file is locked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestCloseWakesSubscriber(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	live := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Subscribe(ctx, eventstore.Position{}, func([]eventstore.Event) error {
			close(live)
			return nil
		})
	}()
	if _, err := s.Append(ctx, "a", eventstore.NoStream, []eventstore.Proposed{ev("X", 0)}); err != nil {
		t.Fatal(err)
	}
	<-live // the subscriber is now caught up and waiting
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("Subscribe returned %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake the subscriber")
	}
}

// TestCloseDuringAppends checks that Close neither hangs callers nor loses an
// acknowledged append.
func TestCloseDuringAppends(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const writers = 32
	acked := make([]int, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := s.Append(ctx, fmt.Sprint("w", w), int64(i)-1, []eventstore.Proposed{ev("X", i)})
				if err != nil {
					if !errors.Is(err, eventstore.ErrClosed) {
						t.Errorf("writer %d: %v", w, err)
					}
					return
				}
				acked[w]++
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	for _, c := range []chan struct{}{closed, waited} {
		select {
		case <-c:
		case <-time.After(10 * time.Second):
			t.Fatal("Close or an Append hung")
		}
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	total := 0
	for w := range writers {
		evs, err := s.ReadStream(ctx, fmt.Sprint("w", w), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != acked[w] {
			t.Errorf("writer %d: %d acknowledged, %d stored", w, acked[w], len(evs))
		}
		total += acked[w]
	}
	if total == 0 {
		t.Error("no append succeeded before Close")
	}
}

func TestBatchChecksEachAppendAgainstEarlierOnes(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	if _, err := s.Append(ctx, "c", eventstore.NoStream, []eventstore.Proposed{ev("X", 0)}); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	mk := func(ctx context.Context, stream string, expected int64, events ...eventstore.Proposed) *appendReq {
		r, err := s.newAppendReq(ctx, stream, expected, events)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a0, a1 := ev("X", 0), ev("X", 1)
	batch := []*appendReq{
		mk(ctx, "a", eventstore.NoStream, a0),               // ok, a v0
		mk(ctx, "a", eventstore.NoStream, ev("X", 9)),       // conflicts with the one before
		mk(ctx, "a", eventstore.NoStream, a0),               // retry of the first: ok
		mk(ctx, "a", 0, a1),                                 // ok, a v1
		mk(ctx, "c", 5, ev("X", 9)),                         // conflict
		mk(cancelled, "b", eventstore.NoStream, ev("X", 9)), // caller gone: not written
		mk(ctx, "b", eventstore.NoStream, ev("X", 2)),       // ok, b v0
	}
	s.commit(batch)
	want := []struct {
		version uint64
		seq     uint64
		errIs   error
	}{
		{0, 2, nil},
		{0, 0, eventstore.ErrWrongVersion},
		{0, 2, nil},
		{1, 3, nil},
		{0, 0, eventstore.ErrWrongVersion},
		{0, 0, context.Canceled},
		{0, 4, nil},
	}
	for i, r := range batch {
		got := <-r.reply
		if w := want[i]; w.errIs != nil {
			if !errors.Is(got.err, w.errIs) {
				t.Errorf("request %d: err %v, want %v", i, got.err, w.errIs)
			}
		} else if got.err != nil || got.res.Version != w.version || got.res.Position.Commit != w.seq {
			t.Errorf("request %d: %+v %v, want version %d at %d", i, got.res, got.err, w.version, w.seq)
		}
	}
	for i, r := range batch {
		select {
		case <-r.reply:
			t.Errorf("request %d answered twice", i)
		default:
		}
	}
}

func TestWrongVersionMessage(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	if _, err := s.Append(ctx, "vm-1", eventstore.NoStream, []eventstore.Proposed{ev("X", 0), ev("X", 1)}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Append(ctx, "vm-1", 4, []eventstore.Proposed{ev("X", 2)})
	if !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatal(err)
	}
	for _, want := range []string{"vm-1", "expected 4", "actual 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	_, err = s.Append(ctx, "vm-2", 0, []eventstore.Proposed{ev("X", 2)})
	if !strings.Contains(err.Error(), "actual no stream") {
		t.Errorf("error %q does not say the stream is missing", err)
	}
}

// Only the tail counts as a retry: once other events follow, the old expected
// version is stale and the append is refused like any other.
func TestRetryOnlyAtTail(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	first := []eventstore.Proposed{ev("X", 0), ev("X", 1)}
	if _, err := s.Append(ctx, "t", eventstore.NoStream, first); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "t", eventstore.NoStream, first[:1]); !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Errorf("retry of a prefix: %v, want ErrWrongVersion", err)
	}
	if _, err := s.Append(ctx, "t", 1, []eventstore.Proposed{ev("X", 2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "t", eventstore.NoStream, first); !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Errorf("retry no longer at the tail: %v, want ErrWrongVersion", err)
	}
}

func TestRecordedAtUsesClock(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	s := openTemp(t, Options{Now: func() time.Time { return at }})
	ctx := context.Background()
	if _, err := s.Append(ctx, "a", eventstore.NoStream, []eventstore.Proposed{ev("X", 0)}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ReadStream(ctx, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := evs[0].RecordedAt; !got.Equal(at) || got.Location() != time.UTC {
		t.Errorf("RecordedAt = %v, want %v in UTC", got, at)
	}
}

func TestRejectsBadInput(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	bad := ev("X", 0)
	bad.Data = json.RawMessage(`{"n":`)
	if _, err := s.Append(ctx, "a", eventstore.Any, []eventstore.Proposed{bad}); err == nil {
		t.Error("append with invalid JSON data succeeded")
	}
	if _, err := s.Append(ctx, "a", -3, []eventstore.Proposed{ev("X", 0)}); err == nil {
		t.Error("append with expected version -3 succeeded")
	}
	if _, err := s.ReadAll(ctx, eventstore.Position{}, 0); err == nil {
		t.Error("ReadAll with limit 0 succeeded")
	}
	// Data-less events are allowed and read back as JSON null.
	empty := ev("X", 0)
	empty.Data = nil
	if _, err := s.Append(ctx, "a", eventstore.Any, []eventstore.Proposed{empty}); err != nil {
		t.Fatal(err)
	}
	evs, _ := s.ReadStream(ctx, "a", 0)
	if len(evs) != 1 || string(evs[0].Data) != "null" {
		t.Errorf("events %+v", evs)
	}
}

// TestGroupCommit checks that concurrent appenders share transactions.
func TestGroupCommit(t *testing.T) {
	s := openTemp(t, Options{})
	ctx := context.Background()
	const writers, each = 64, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Append(ctx, fmt.Sprint("g", w), int64(i)-1, []eventstore.Proposed{ev("X", i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	commits := s.commits.Load()
	t.Logf("%d appends in %d transactions", writers*each, commits)
	if commits >= writers*each {
		t.Errorf("%d appends took %d transactions: no group commit", writers*each, commits)
	}
}

// TestManySubscribers runs subscribers alongside appenders; each must see
// every event exactly once, in order.
func TestManySubscribers(t *testing.T) {
	s := openTemp(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const subs, writers, each = 16, 8, 50
	const total = writers * each
	var subWG sync.WaitGroup
	for i := range subs {
		subWG.Go(func() {
			var last uint64
			n := 0
			err := s.Subscribe(ctx, eventstore.Position{}, func(batch []eventstore.Event) error {
				for _, e := range batch {
					if e.Position.Commit != last+1 {
						return fmt.Errorf("subscriber %d: got %d after %d", i, e.Position.Commit, last)
					}
					last = e.Position.Commit
					n++
				}
				if n == total {
					return errDone
				}
				return nil
			})
			if !errors.Is(err, errDone) {
				t.Errorf("subscriber %d: %v after %d events", i, err, n)
			}
		})
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Append(ctx, fmt.Sprint("m", w), eventstore.Any, []eventstore.Proposed{ev("X", i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	subWG.Wait()
}

var errDone = errors.New("done")
