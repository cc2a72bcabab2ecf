// Package storetest is the contract every eventstore.Store adapter must meet,
// written once so the embedded bbolt store and server-backed adapters are
// held to the same behaviour.
//
// The suite only looks at streams it creates (names carry a random prefix) and
// positions it observes, so it also runs against a shared server whose log
// already holds other events.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/google/uuid"
)

// Run runs the contract suite. open must return a ready store and arrange for
// it to be closed (t.Cleanup); the suite may close the store itself first, so
// Close must tolerate a second call. Each subtest opens its own store and may
// run in parallel with others.
func Run(t *testing.T, open func(t *testing.T) eventstore.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, eventstore.Store)
	}{
		{"AppendAndReadStream", testAppendAndReadStream},
		{"ReadStreamPage", testReadStreamPage},
		{"NoStreamOnExistingStreamConflicts", testNoStreamConflict},
		{"ExactVersionConflict", testExactVersionConflict},
		{"AnyAlwaysAppends", testAnyAppends},
		{"RejectsInvalidAppends", testRejectsInvalid},
		{"ConcurrentAppendersOneStream", testConcurrentAppenders},
		{"GlobalOrdering", testGlobalOrdering},
		{"SubscribeCatchUpThenLive", testSubscribeCatchUpThenLive},
		{"SubscribeFromCheckpoint", testSubscribeFromCheckpoint},
		{"SubscribeStopsOnCallbackError", testSubscribeCallbackError},
		{"IdempotentRetry", testIdempotentRetry},
		{"LargeEvents", testLargeEvents},
		{"ManyStreams", testManyStreams},
		{"ClosedStoreRefusesCalls", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// ---- helpers ----

// ctxFor bounds a test's store calls by the test binary's own deadline (less
// a margin to report), not a fixed figure: on a loaded CI machine a fixed 60 s
// failed a correct run, while a real hang still ends with go test's timeout
// and its goroutine dump.
func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if d, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(ctx, d.Add(-10*time.Second))
	}
	t.Cleanup(cancel)
	return ctx
}

// streamName is unique per call so that subtests, and runs against a shared
// server, never see each other's streams.
func streamName(t *testing.T, suffix string) string {
	return "storetest-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + uuid.NewString()[:8] + "-" + suffix
}

func proposed(typ string, data any) eventstore.Proposed {
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return eventstore.Proposed{ID: uuid.New(), Type: typ, Data: b, Meta: eventstore.Metadata{Actor: "storetest", RequestID: uuid.NewString()}}
}

func proposals(n int, typ string) []eventstore.Proposed {
	ps := make([]eventstore.Proposed, n)
	for i := range ps {
		ps[i] = proposed(typ, map[string]int{"n": i})
	}
	return ps
}

func mustAppend(t *testing.T, s eventstore.Store, stream string, expected int64, events ...eventstore.Proposed) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(ctxFor(t), stream, expected, events)
	if err != nil {
		t.Fatalf("append %d events to %s (expected %d): %v", len(events), stream, expected, err)
	}
	return res
}

func mustRead(t *testing.T, s eventstore.Store, stream string, from uint64) []eventstore.Event {
	t.Helper()
	evs, err := s.ReadStream(ctxFor(t), stream, from)
	if err != nil {
		t.Fatalf("read %s from %d: %v", stream, from, err)
	}
	return evs
}

func jsonEqual(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

func checkEvent(t *testing.T, got eventstore.Event, want eventstore.Proposed, stream string, version uint64) {
	t.Helper()
	if got.ID != want.ID || got.Type != want.Type || got.Stream != stream || got.Version != version || got.Meta != want.Meta {
		t.Errorf("event = {ID:%s Type:%q Stream:%q Version:%d Meta:%+v}, want {ID:%s Type:%q Stream:%q Version:%d Meta:%+v}",
			got.ID, got.Type, got.Stream, got.Version, got.Meta, want.ID, want.Type, stream, version, want.Meta)
	}
	if !jsonEqual(got.Data, want.Data) {
		t.Errorf("event %s data = %.200s, want %.200s", got.ID, got.Data, want.Data)
	}
	if got.RecordedAt.IsZero() {
		t.Errorf("event %s has no RecordedAt", got.ID)
	}
	if got.Position.IsZero() {
		t.Errorf("event %s has zero position", got.ID)
	}
}

// own keeps the events of the given streams, in the order given.
func own(events []eventstore.Event, streams map[string]bool) []eventstore.Event {
	var out []eventstore.Event
	for _, e := range events {
		if streams[e.Stream] {
			out = append(out, e)
		}
	}
	return out
}

func wantWrongVersion(t *testing.T, err error, what string) {
	t.Helper()
	if !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("%s: err = %v, want ErrWrongVersion", what, err)
	}
}

// ---- tests ----

func testAppendAndReadStream(t *testing.T, s eventstore.Store) {
	stream := streamName(t, "a")
	if evs := mustRead(t, s, stream, 0); len(evs) != 0 {
		t.Fatalf("new stream has %d events", len(evs))
	}
	ps := proposals(3, "Created")
	res := mustAppend(t, s, stream, eventstore.NoStream, ps...)
	if res.Version != 2 {
		t.Errorf("version after 3 events = %d, want 2", res.Version)
	}
	evs := mustRead(t, s, stream, 0)
	if len(evs) != 3 {
		t.Fatalf("read %d events, want 3", len(evs))
	}
	for i, e := range evs {
		checkEvent(t, e, ps[i], stream, uint64(i))
		if i > 0 && !evs[i-1].Position.Less(e.Position) {
			t.Errorf("positions not increasing: %v then %v", evs[i-1].Position, e.Position)
		}
	}
	if evs[2].Position != res.Position {
		t.Errorf("result position %v, last event at %v", res.Position, evs[2].Position)
	}

	p := proposed("Renamed", map[string]string{"name": "x <&> \u00e9"})
	res = mustAppend(t, s, stream, 2, p)
	if res.Version != 3 {
		t.Errorf("version = %d, want 3", res.Version)
	}
	tail := mustRead(t, s, stream, 2)
	if len(tail) != 2 {
		t.Fatalf("read from 2: %d events, want 2", len(tail))
	}
	checkEvent(t, tail[0], ps[2], stream, 2)
	checkEvent(t, tail[1], p, stream, 3)
	if evs := mustRead(t, s, stream, 4); len(evs) != 0 {
		t.Errorf("read past the end: %d events", len(evs))
	}
}

// ReadStreamPage reads what ReadStream reads, a bounded page at a time.
func testReadStreamPage(t *testing.T, s eventstore.Store) {
	stream := streamName(t, "a")
	if evs, err := s.ReadStreamPage(ctxFor(t), stream, 0, 3); err != nil || len(evs) != 0 {
		t.Fatalf("page of a new stream: %d events, %v", len(evs), err)
	}
	ps := proposals(7, "Created")
	mustAppend(t, s, stream, eventstore.NoStream, ps...)
	mustAppend(t, s, streamName(t, "b"), eventstore.NoStream, proposals(2, "Other")...)
	for _, limit := range []int{1, 3, 7, 100} {
		var got []eventstore.Event
		for from := uint64(0); ; {
			page, err := s.ReadStreamPage(ctxFor(t), stream, from, limit)
			if err != nil {
				t.Fatalf("page from %d, limit %d: %v", from, limit, err)
			}
			if len(page) > limit {
				t.Fatalf("page from %d, limit %d: %d events", from, limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			from = page[len(page)-1].Version + 1
		}
		if len(got) != len(ps) {
			t.Fatalf("limit %d: read %d events, want %d", limit, len(got), len(ps))
		}
		for i, e := range got {
			data, err := e.JSON()
			if err != nil {
				t.Fatal(err)
			}
			e.Data = data
			checkEvent(t, e, ps[i], stream, uint64(i))
		}
	}
	if evs, err := s.ReadStreamPage(ctxFor(t), stream, 5, 1); err != nil || len(evs) != 1 || evs[0].Version != 5 {
		t.Fatalf("page at version 5: %d events, %v", len(evs), err)
	}
	if _, err := s.ReadStreamPage(ctxFor(t), stream, 0, 0); err == nil {
		t.Error("a page of 0 events: no error")
	}
}

func testNoStreamConflict(t *testing.T, s eventstore.Store) {
	stream := streamName(t, "a")
	mustAppend(t, s, stream, eventstore.NoStream, proposed("Created", 1))
	_, err := s.Append(ctxFor(t), stream, eventstore.NoStream, []eventstore.Proposed{proposed("Created", 2)})
	wantWrongVersion(t, err, "NoStream on existing stream")
	if evs := mustRead(t, s, stream, 0); len(evs) != 1 {
		t.Errorf("stream has %d events after refused append, want 1", len(evs))
	}
}

func testExactVersionConflict(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	stream := streamName(t, "a")
	_, err := s.Append(ctx, stream, 0, []eventstore.Proposed{proposed("X", 0)})
	wantWrongVersion(t, err, "expected 0 on missing stream")
	mustAppend(t, s, stream, eventstore.NoStream, proposals(2, "X")...)
	for _, expected := range []int64{0, 2, 5} {
		_, err := s.Append(ctx, stream, expected, []eventstore.Proposed{proposed("X", expected)})
		wantWrongVersion(t, err, fmt.Sprintf("expected %d at version 1", expected))
	}
	if res := mustAppend(t, s, stream, 1, proposed("X", 2)); res.Version != 2 {
		t.Errorf("version = %d, want 2", res.Version)
	}
	if evs := mustRead(t, s, stream, 0); len(evs) != 3 {
		t.Errorf("stream has %d events, want 3", len(evs))
	}
}

func testAnyAppends(t *testing.T, s eventstore.Store) {
	stream := streamName(t, "a")
	for i := range 3 {
		res := mustAppend(t, s, stream, eventstore.Any, proposed("X", i))
		if res.Version != uint64(i) {
			t.Errorf("append %d: version %d", i, res.Version)
		}
	}
	if res := mustAppend(t, s, stream, eventstore.Any, proposals(2, "X")...); res.Version != 4 {
		t.Errorf("version = %d, want 4", res.Version)
	}
}

func testRejectsInvalid(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	stream := streamName(t, "a")
	noID := proposed("X", 1)
	noID.ID = uuid.Nil
	noType := proposed("", 1)
	cases := []struct {
		name   string
		stream string
		events []eventstore.Proposed
	}{
		{"no events", stream, nil},
		{"nil ID", stream, []eventstore.Proposed{proposed("X", 0), noID}},
		{"empty type", stream, []eventstore.Proposed{noType}},
		{"empty stream", "", []eventstore.Proposed{proposed("X", 0)}},
	}
	for _, c := range cases {
		_, err := s.Append(ctx, c.stream, eventstore.Any, c.events)
		if err == nil {
			t.Errorf("%s: append succeeded", c.name)
		} else if errors.Is(err, eventstore.ErrWrongVersion) || errors.Is(err, eventstore.ErrUnavailable) {
			t.Errorf("%s: err = %v, want a plain validation error", c.name, err)
		}
	}
	if evs := mustRead(t, s, stream, 0); len(evs) != 0 {
		t.Errorf("refused appends wrote %d events", len(evs))
	}
}

// testConcurrentAppenders has writers race on one stream, each reloading and
// retrying on conflict like a real command handler. Optimistic concurrency
// must let exactly one through per version and lose nothing.
func testConcurrentAppenders(t *testing.T, s eventstore.Store) {
	// Every version is raced by every writer still running, so the work grows
	// with writers squared: 8 keep the race real without minutes under -race.
	const writers, perWriter = 8, 6
	ctx := ctxFor(t)
	stream := streamName(t, "a")

	var mu sync.Mutex
	wins := map[int64]int{} // expected version -> successful appends
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	ids := make(chan uuid.UUID, writers*perWriter)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				p := proposed("X", map[string]int{"w": w, "i": i})
				for {
					evs, err := s.ReadStream(ctx, stream, 0)
					if err != nil {
						errc <- err
						return
					}
					expected := int64(len(evs)) - 1 // NoStream when empty
					_, err = s.Append(ctx, stream, expected, []eventstore.Proposed{p})
					if errors.Is(err, eventstore.ErrWrongVersion) {
						continue
					}
					if err != nil {
						errc <- err
						return
					}
					mu.Lock()
					wins[expected]++
					mu.Unlock()
					ids <- p.ID
					break
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	close(ids)
	for err := range errc {
		t.Fatal(err)
	}
	evs := mustRead(t, s, stream, 0)
	if len(evs) != writers*perWriter {
		t.Fatalf("stream has %d events, want %d", len(evs), writers*perWriter)
	}
	for i, e := range evs {
		if e.Version != uint64(i) {
			t.Fatalf("event %d has version %d", i, e.Version)
		}
	}
	for v := int64(-1); v < writers*perWriter-1; v++ {
		if wins[v] != 1 {
			t.Errorf("%d appends succeeded at expected version %d, want 1", wins[v], v)
		}
	}
	stored := map[uuid.UUID]bool{}
	for _, e := range evs {
		if stored[e.ID] {
			t.Errorf("event %s stored twice", e.ID)
		}
		stored[e.ID] = true
	}
	for id := range ids {
		if !stored[id] {
			t.Errorf("acknowledged event %s lost", id)
		}
	}
}

func testGlobalOrdering(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	start, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	streams := map[string]bool{}
	names := []string{streamName(t, "a"), streamName(t, "b"), streamName(t, "c")}
	for _, n := range names {
		streams[n] = true
	}
	var appended []eventstore.AppendResult
	for i := range 12 {
		appended = append(appended, mustAppend(t, s, names[i%3], eventstore.Any, proposed("X", i)))
	}
	for i := 1; i < len(appended); i++ {
		if !appended[i-1].Position.Less(appended[i].Position) {
			t.Fatalf("append %d at %v, not after %v", i, appended[i].Position, appended[i-1].Position)
		}
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head.Less(appended[len(appended)-1].Position) {
		t.Errorf("head %v before last append %v", head, appended[len(appended)-1].Position)
	}

	all, err := s.ReadAll(ctx, start, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	mine := own(all, streams)
	if len(mine) != len(appended) {
		t.Fatalf("ReadAll returned %d of our events, want %d", len(mine), len(appended))
	}
	for i, e := range mine {
		if e.Position != appended[i].Position || e.Stream != names[i%3] || e.Version != uint64(i/3) {
			t.Errorf("log[%d] = %s v%d at %v, want %s v%d at %v", i, e.Stream, e.Version, e.Position, names[i%3], i/3, appended[i].Position)
		}
	}
	for i := 1; i < len(all); i++ {
		if !all[i-1].Position.Less(all[i].Position) {
			t.Fatalf("ReadAll not in order: %v then %v", all[i-1].Position, all[i].Position)
		}
	}

	from := appended[4].Position
	after, err := s.ReadAll(ctx, from, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range after {
		if !from.Less(e.Position) {
			t.Fatalf("ReadAll after %v returned event at %v", from, e.Position)
		}
	}
	if mine := own(after, streams); len(mine) != 7 || mine[0].Position != appended[5].Position {
		t.Errorf("ReadAll after the 5th append: %d of our events, want 7 starting at %v", len(mine), appended[5].Position)
	}

	limited, err := s.ReadAll(ctx, from, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(limited) != 2 {
		t.Fatalf("ReadAll with limit 2 returned %d events", len(limited))
	}
	if limited[0].Position != after[0].Position || limited[1].Position != after[1].Position {
		t.Errorf("limited read %v,%v differs from unlimited %v,%v", limited[0].Position, limited[1].Position, after[0].Position, after[1].Position)
	}
	if end, err := s.ReadAll(ctx, head, 10); err != nil || len(own(end, streams)) != 0 {
		t.Errorf("ReadAll after head: %d of our events, err %v", len(own(end, streams)), err)
	}
}

// subscription runs Subscribe in the background and hands over the events of
// the test's streams one at a time.
type subscription struct {
	events chan eventstore.Event
	done   chan error
	cancel context.CancelFunc
}

func subscribe(t *testing.T, s eventstore.Store, from eventstore.Position, streams map[string]bool, stopAfter int) *subscription {
	ctx, cancel := context.WithCancel(ctxFor(t))
	sub := &subscription{events: make(chan eventstore.Event, 1024), done: make(chan error, 1), cancel: cancel}
	var mu sync.Mutex
	last := from
	seen := 0
	go func() {
		sub.done <- s.Subscribe(ctx, from, func(batch []eventstore.Event) error {
			mu.Lock()
			defer mu.Unlock()
			if len(batch) == 0 {
				return errors.New("storetest: empty batch delivered")
			}
			for _, e := range batch {
				if !last.Less(e.Position) {
					return fmt.Errorf("storetest: event at %v delivered after %v", e.Position, last)
				}
				last = e.Position
				if streams[e.Stream] {
					sub.events <- e
					seen++
					if seen == stopAfter {
						return errStop
					}
				}
			}
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-sub.done
	})
	return sub
}

var errStop = errors.New("storetest: stop")

func (sub *subscription) next(t *testing.T) eventstore.Event {
	t.Helper()
	select {
	case e := <-sub.events:
		return e
	case err := <-sub.done:
		sub.done <- err
		t.Fatalf("subscription ended early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no event delivered within 20s")
	}
	return eventstore.Event{}
}

func (sub *subscription) stop(t *testing.T) error {
	t.Helper()
	sub.cancel()
	select {
	case err := <-sub.done:
		sub.done <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Subscribe did not return after cancel")
		return nil
	}
}

func testSubscribeCatchUpThenLive(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	start, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, b := streamName(t, "a"), streamName(t, "b")
	streams := map[string]bool{a: true, b: true}
	var want []eventstore.AppendResult
	for i := range 5 {
		want = append(want, mustAppend(t, s, []string{a, b}[i%2], eventstore.Any, proposed("History", i)))
	}
	sub := subscribe(t, s, start, streams, 0)
	for i := range 5 {
		if e := sub.next(t); e.Position != want[i].Position {
			t.Fatalf("history event %d at %v, want %v", i, e.Position, want[i].Position)
		}
	}
	// Live events, some appended while the subscriber is idle and some in
	// a burst from concurrent writers.
	for i := range 3 {
		res := mustAppend(t, s, a, eventstore.Any, proposed("Live", i))
		if e := sub.next(t); e.Position != res.Position {
			t.Fatalf("live event at %v, want %v", e.Position, res.Position)
		}
	}
	var wg sync.WaitGroup
	const burst = 20
	for i := range burst {
		wg.Go(func() {
			if _, err := s.Append(ctx, b, eventstore.Any, []eventstore.Proposed{proposed("Burst", i)}); err != nil {
				t.Errorf("burst append: %v", err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	stored := mustRead(t, s, b, 0)
	burstEvents := stored[len(stored)-burst:]
	for i := range burst {
		e := sub.next(t)
		if e.ID != burstEvents[i].ID || e.Position != burstEvents[i].Position {
			t.Fatalf("burst event %d: got %s at %v, want %s at %v", i, e.ID, e.Position, burstEvents[i].ID, burstEvents[i].Position)
		}
	}
	if err := sub.stop(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe returned %v after cancel, want context.Canceled", err)
	}
}

func testSubscribeFromCheckpoint(t *testing.T, s eventstore.Store) {
	stream := streamName(t, "a")
	var res []eventstore.AppendResult
	for i := range 6 {
		res = append(res, mustAppend(t, s, stream, eventstore.Any, proposed("X", i)))
	}
	sub := subscribe(t, s, res[2].Position, map[string]bool{stream: true}, 0)
	for i := 3; i < 6; i++ {
		e := sub.next(t)
		if e.Position != res[i].Position || e.Version != uint64(i) {
			t.Fatalf("after checkpoint got v%d at %v, want v%d at %v", e.Version, e.Position, i, res[i].Position)
		}
	}
	live := mustAppend(t, s, stream, 5, proposed("X", 6))
	if e := sub.next(t); e.Position != live.Position {
		t.Fatalf("live event at %v, want %v", e.Position, live.Position)
	}
	select {
	case e := <-sub.events:
		t.Fatalf("unexpected extra event v%d", e.Version)
	case <-time.After(50 * time.Millisecond):
	}
}

func testSubscribeCallbackError(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	start, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream := streamName(t, "a")
	mustAppend(t, s, stream, eventstore.NoStream, proposals(3, "X")...)
	sub := subscribe(t, s, start, map[string]bool{stream: true}, 2)
	select {
	case err := <-sub.done:
		sub.done <- err
		if !errors.Is(err, errStop) {
			t.Errorf("Subscribe returned %v, want the callback's error", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Subscribe did not return the callback's error")
	}
}

func testIdempotentRetry(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	stream := streamName(t, "a")
	first := proposals(2, "X")
	res := mustAppend(t, s, stream, eventstore.NoStream, first...)
	// A client that timed out retries the same request: same IDs, same
	// (now stale) expected version.
	for _, expected := range []int64{eventstore.NoStream, eventstore.Any, 1} {
		again, err := s.Append(ctx, stream, expected, first)
		if err != nil {
			t.Fatalf("retry with expected %d: %v", expected, err)
		}
		if again != res {
			t.Errorf("retry with expected %d returned %+v, want %+v", expected, again, res)
		}
	}
	if evs := mustRead(t, s, stream, 0); len(evs) != 2 {
		t.Fatalf("stream has %d events after retries, want 2", len(evs))
	}
	// What a retry means once other events follow is adapter-specific; only
	// the tail case is part of the contract.
	second := proposed("Y", 0)
	if res := mustAppend(t, s, stream, 1, second); res.Version != 2 {
		t.Errorf("append after retries: version %d, want 2", res.Version)
	}
	again, err := s.Append(ctx, stream, 1, []eventstore.Proposed{second})
	if err != nil || again.Version != 2 {
		t.Errorf("retry of the last append: %+v, %v", again, err)
	}
	if evs := mustRead(t, s, stream, 0); len(evs) != 3 {
		t.Errorf("stream has %d events, want 3", len(evs))
	}
}

func testLargeEvents(t *testing.T, s eventstore.Store) {
	stream := streamName(t, "a")
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i%36]
	}
	ps := []eventstore.Proposed{proposed("Big", string(big)), proposed("Small", 1), proposed("Big", map[string]string{"blob": string(big)})}
	mustAppend(t, s, stream, eventstore.NoStream, ps...)
	evs := mustRead(t, s, stream, 0)
	if len(evs) != len(ps) {
		t.Fatalf("read %d events, want %d", len(evs), len(ps))
	}
	for i, e := range evs {
		checkEvent(t, e, ps[i], stream, uint64(i))
	}
}

func testManyStreams(t *testing.T, s eventstore.Store) {
	const n, workers = 1000, 16
	ctx := ctxFor(t)
	prefix := streamName(t, "")
	ids := make([]uuid.UUID, n)
	work := make(chan int)
	errc := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range work {
				p := proposed("X", i)
				ids[i] = p.ID
				if _, err := s.Append(ctx, fmt.Sprint(prefix, i), eventstore.NoStream, []eventstore.Proposed{p}); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for i := range n {
		evs := mustRead(t, s, fmt.Sprint(prefix, i), 0)
		if len(evs) != 1 || evs[0].ID != ids[i] || evs[0].Version != 0 {
			t.Fatalf("stream %d: %d events", i, len(evs))
		}
	}
}

func testClosed(t *testing.T, s eventstore.Store) {
	ctx := ctxFor(t)
	stream := streamName(t, "a")
	mustAppend(t, s, stream, eventstore.NoStream, proposed("X", 0))
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := s.Append(ctx, stream, eventstore.Any, []eventstore.Proposed{proposed("X", 1)}); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadStream(ctx, stream, 0); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("ReadStream after Close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadAll(ctx, eventstore.Position{}, 10); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("ReadAll after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Head(ctx); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Head after Close: %v, want ErrClosed", err)
	}
	err := s.Subscribe(ctx, eventstore.Position{}, func([]eventstore.Event) error { return nil })
	if !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("Subscribe after Close: %v, want ErrClosed", err)
	}
}
