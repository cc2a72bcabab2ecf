package esdbtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// These tests drive the double with the official client, the way the
// adapter does, and check the KurrentDB semantics it promises.

func start(t *testing.T, opts Options) (*Server, *esdb.Client) {
	t.Helper()
	srv, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, connect(t, srv.URL())
}

func connect(t *testing.T, url string) *esdb.Client {
	t.Helper()
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func event(typ string) esdb.EventData {
	return esdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: esdb.ContentTypeJson, Data: []byte(`{}`), Metadata: []byte(`{"actor":"t"}`)}
}

func appendTo(t *testing.T, c *esdb.Client, stream string, rev esdb.ExpectedRevision, evs ...esdb.EventData) (*esdb.WriteResult, error) {
	t.Helper()
	return c.AppendToStream(ctx(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: rev}, evs...)
}

func mustAppend(t *testing.T, c *esdb.Client, stream string, rev esdb.ExpectedRevision, evs ...esdb.EventData) *esdb.WriteResult {
	t.Helper()
	wr, err := appendTo(t, c, stream, rev, evs...)
	if err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	return wr
}

func wantWrong(t *testing.T, err error, mention string) {
	t.Helper()
	var ee *esdb.Error
	if !errors.As(err, &ee) || ee.Code() != esdb.ErrorCodeWrongExpectedVersion {
		t.Fatalf("err = %v, want wrong expected version", err)
	}
	if !strings.Contains(err.Error(), mention) {
		t.Errorf("error %q does not mention %q", err, mention)
	}
}

func read(rs *esdb.ReadStream, err error) ([]*esdb.RecordedEvent, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*esdb.RecordedEvent
	for {
		e, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e.Event)
	}
}

func readStream(t *testing.T, c *esdb.Client, stream string, o esdb.ReadStreamOptions, n uint64) ([]*esdb.RecordedEvent, error) {
	t.Helper()
	return read(c.ReadStream(ctx(t), stream, o, n))
}

func revisions(evs []*esdb.RecordedEvent) []uint64 {
	var out []uint64
	for _, e := range evs {
		out = append(out, e.EventNumber)
	}
	return out
}

func TestExpectedRevisions(t *testing.T) {
	_, c := start(t, Options{})
	_, err := appendTo(t, c, "s", esdb.StreamExists{}, event("A"))
	wantWrong(t, err, "got 'no_stream'")
	_, err = appendTo(t, c, "s", esdb.Revision(0), event("A"))
	wantWrong(t, err, "expecting '0' but got 'no_stream'")
	wr := mustAppend(t, c, "s", esdb.NoStream{}, event("A"), event("B"))
	if wr.NextExpectedVersion != 1 || wr.CommitPosition == 0 || wr.CommitPosition != wr.PreparePosition {
		t.Errorf("first append: %+v", wr)
	}
	_, err = appendTo(t, c, "s", esdb.NoStream{}, event("C"))
	wantWrong(t, err, "got '1'")
	_, err = appendTo(t, c, "s", esdb.Revision(0), event("C"))
	wantWrong(t, err, "expecting '0' but got '1'")
	_, err = appendTo(t, c, "s", esdb.Revision(7), event("C"))
	wantWrong(t, err, "expecting '7' but got '1'")
	if wr := mustAppend(t, c, "s", esdb.Revision(1), event("C")); wr.NextExpectedVersion != 2 {
		t.Errorf("exact append: %+v", wr)
	}
	if wr := mustAppend(t, c, "s", esdb.StreamExists{}, event("D")); wr.NextExpectedVersion != 3 {
		t.Errorf("stream-exists append: %+v", wr)
	}
	if wr := mustAppend(t, c, "s", esdb.Any{}, event("E")); wr.NextExpectedVersion != 4 {
		t.Errorf("any append: %+v", wr)
	}
	if wr := mustAppend(t, c, "t", esdb.Any{}, event("E")); wr.NextExpectedVersion != 0 {
		t.Errorf("any on a new stream: %+v", wr)
	}
}

func TestIdempotency(t *testing.T) {
	srv, c := start(t, Options{IdempotencyWindow: 4})
	evs := []esdb.EventData{event("A"), event("B")}
	first := mustAppend(t, c, "i", esdb.NoStream{}, evs...)
	n := srv.Count()
	for _, rev := range []esdb.ExpectedRevision{esdb.NoStream{}, esdb.Any{}, esdb.StreamExists{}} {
		again := mustAppend(t, c, "i", rev, evs...)
		if *again != *first {
			t.Errorf("retry with %T: %+v, want %+v", rev, again, first)
		}
	}
	third := event("C")
	next := mustAppend(t, c, "i", esdb.Revision(1), third)
	// The same request again: recognised, since revision 1 is now behind.
	if again := mustAppend(t, c, "i", esdb.Revision(1), third); *again != *next {
		t.Errorf("retry at revision 1: %+v, want %+v", again, next)
	}
	if srv.Count() != n+1 {
		t.Fatalf("retries wrote: %d events, want %d", srv.Count(), n+1)
	}
	// Part of an append already there, part not: refused.
	_, err := appendTo(t, c, "i", esdb.NoStream{}, evs[0], event("X"))
	wantWrong(t, err, "got '2'")
	// Expecting the current revision writes the same ids again: KurrentDB
	// only recognises a retry carrying the original expected revision.
	mustAppend(t, c, "i", esdb.Revision(2), evs...)
	if got, _ := readStream(t, c, "i", esdb.ReadStreamOptions{}, 100); len(got) != 5 {
		t.Errorf("stream has %d events, want 5", len(got))
	}
	// With Any, ids that left the recent window are written again.
	old := event("Old")
	mustAppend(t, c, "j", esdb.Any{}, old)
	for range 5 {
		mustAppend(t, c, "k", esdb.Any{}, event("Filler"))
	}
	mustAppend(t, c, "j", esdb.Any{}, old)
	if got, _ := readStream(t, c, "j", esdb.ReadStreamOptions{}, 100); len(got) != 2 {
		t.Errorf("stream j has %d events, want 2", len(got))
	}
}

func TestReads(t *testing.T) {
	_, c := start(t, Options{NoSystemEvents: true})
	var evs []esdb.EventData
	for i := range 10 {
		evs = append(evs, event(fmt.Sprint("E", i)))
	}
	mustAppend(t, c, "r", esdb.NoStream{}, evs[:6]...)
	mustAppend(t, c, "other", esdb.NoStream{}, event("O"))
	mustAppend(t, c, "r", esdb.Revision(5), evs[6:]...)

	got, err := readStream(t, c, "r", esdb.ReadStreamOptions{}, 100)
	if err != nil || len(got) != 10 {
		t.Fatalf("%d events, %v", len(got), err)
	}
	for i, e := range got {
		if e.EventID != evs[i].EventID || e.EventNumber != uint64(i) || e.EventType != evs[i].EventType ||
			string(e.UserMetadata) != `{"actor":"t"}` || e.ContentType != "application/json" || time.Since(e.CreatedDate) > time.Minute {
			t.Errorf("event %d: %+v", i, e)
		}
		if i > 0 && e.Position.Commit <= got[i-1].Position.Commit {
			t.Errorf("positions not increasing: %v then %v", got[i-1].Position, e.Position)
		}
	}
	cases := []struct {
		o    esdb.ReadStreamOptions
		n    uint64
		want []uint64
	}{
		{esdb.ReadStreamOptions{From: esdb.Revision(3)}, 2, []uint64{3, 4}},
		{esdb.ReadStreamOptions{From: esdb.Revision(8)}, 5, []uint64{8, 9}},
		{esdb.ReadStreamOptions{From: esdb.Revision(10)}, 5, nil},
		{esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 3, []uint64{9, 8, 7}},
		{esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(1)}, 5, []uint64{1, 0}},
		{esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.Revision(50)}, 1, []uint64{9}},
	}
	for _, tc := range cases {
		got, err := readStream(t, c, "r", tc.o, tc.n)
		if err != nil || fmt.Sprint(revisions(got)) != fmt.Sprint(tc.want) {
			t.Errorf("read %+v count %d: %v (%v), want %v", tc.o, tc.n, revisions(got), err, tc.want)
		}
	}
	_, err = readStream(t, c, "missing", esdb.ReadStreamOptions{}, 10)
	var ee *esdb.Error
	if !errors.As(err, &ee) || ee.Code() != esdb.ErrorCodeResourceNotFound {
		t.Errorf("read of a missing stream: %v, want resource not found", err)
	}

	all, err := read(c.ReadAll(ctx(t), esdb.ReadAllOptions{}, 100))
	if err != nil || len(all) != 11 || all[6].StreamID != "other" {
		t.Fatalf("$all: %d events, %v", len(all), err)
	}
	from := all[4].Position
	fwd, _ := read(c.ReadAll(ctx(t), esdb.ReadAllOptions{From: from}, 3))
	if len(fwd) != 3 || fwd[0].Position != from || fwd[2].Position != all[6].Position {
		t.Errorf("forwards from a position (inclusive): %v", fwd)
	}
	back, _ := read(c.ReadAll(ctx(t), esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, 10))
	if len(back) != 4 || back[0].Position != all[3].Position {
		t.Errorf("backwards from a position (exclusive): %d events", len(back))
	}
	last, _ := read(c.ReadAll(ctx(t), esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1))
	if len(last) != 1 || last[0].Position != all[10].Position {
		t.Errorf("backwards from the end: %v", last)
	}
}

func TestSubscribeToAll(t *testing.T) {
	srv, c := start(t, Options{})
	for i := range 3 {
		mustAppend(t, c, "sub", esdb.Any{}, event(fmt.Sprint("H", i)))
	}
	for range 70 {
		srv.AppendSystemEvent("$stats", "$statsCollected", []byte(`{}`))
	}
	sub, err := c.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{From: esdb.Start{}, Filter: esdb.ExcludeSystemEventsFilter()})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var got []*esdb.RecordedEvent
	checkpoints, caughtUp := 0, false
	live := false
	for len(got) < 5 {
		e := sub.Recv()
		switch {
		case e.EventAppeared != nil:
			if strings.HasPrefix(e.EventAppeared.Event.EventType, "$") {
				t.Fatalf("system event delivered through the filter: %v", e.EventAppeared.Event.EventType)
			}
			got = append(got, e.EventAppeared.Event)
		case e.CheckPointReached != nil:
			checkpoints++
		case e.CaughtUp != nil:
			caughtUp = true
		case e.SubscriptionDropped != nil:
			t.Fatal(e.SubscriptionDropped.Error)
		}
		if caughtUp && !live {
			live = true
			mustAppend(t, c, "sub", esdb.Any{}, event("L0"), event("L1"))
		}
	}
	if checkpoints < 2 || !caughtUp {
		t.Errorf("%d checkpoints over 73 events with a window of 32, caught up %v", checkpoints, caughtUp)
	}
	for i, e := range got {
		if e.EventNumber != uint64(i) {
			t.Errorf("event %d has revision %d", i, e.EventNumber)
		}
	}

	// From a position: strictly after it. From the end: only new events.
	after, err := c.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{From: got[1].Position})
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if e := nextEvent(t, after); e.Position != got[2].Position {
		t.Errorf("subscription from %v starts at %v, want %v", got[1].Position, e.Position, got[2].Position)
	}
	end, err := c.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{From: esdb.End{}, Filter: esdb.ExcludeSystemEventsFilter()})
	if err != nil {
		t.Fatal(err)
	}
	defer end.Close()
	time.Sleep(50 * time.Millisecond)
	wr := mustAppend(t, c, "sub", esdb.Any{}, event("New"))
	if e := nextEvent(t, end); e.Position.Commit != wr.CommitPosition || e.EventType != "New" {
		t.Errorf("subscription from the end got %v at %v", e.EventType, e.Position)
	}

	srv.DropSubscriptions()
	for {
		e := end.Recv()
		if e.SubscriptionDropped != nil {
			break
		}
	}
}

func nextEvent(t *testing.T, sub *esdb.Subscription) *esdb.RecordedEvent {
	t.Helper()
	for {
		e := sub.Recv()
		if e.EventAppeared != nil {
			return e.EventAppeared.Event
		}
		if e.SubscriptionDropped != nil {
			t.Fatal(e.SubscriptionDropped.Error)
		}
	}
}

func TestLimitsAndLifecycle(t *testing.T) {
	srv, c := start(t, Options{MaxAppendSize: 1000})
	big := event("Big")
	big.Data = []byte(`"` + strings.Repeat("x", 2000) + `"`)
	if _, err := appendTo(t, c, "big", esdb.Any{}, big); err == nil || !strings.Contains(err.Error(), "Maximum Append Size") {
		t.Errorf("oversized append: %v", err)
	}
	wr := mustAppend(t, c, "life", esdb.NoStream{}, event("A"))

	srv.Stop()
	if _, err := appendTo(t, c, "life", esdb.Revision(0), event("B")); err == nil {
		t.Error("append to a stopped server succeeded")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// A fresh client, and one through gossip seeds, both see the same data.
	for _, url := range []string{srv.URL(), "esdb://" + srv.Addr() + "," + srv.Addr() + "?tls=false"} {
		c2 := connect(t, url)
		got, err := readStream(t, c2, "life", esdb.ReadStreamOptions{}, 10)
		if err != nil || len(got) != 1 || got[0].Position.Commit != wr.CommitPosition {
			t.Errorf("after restart via %s: %v %v", url, got, err)
		}
	}
	srv.SetNotReady(true)
	if _, err := readStream(t, connect(t, srv.URL()), "life", esdb.ReadStreamOptions{}, 10); err == nil {
		t.Error("read from a node that is not ready succeeded")
	}
}

// TestLostAppendAnswer: with LoseAppendAnswers the append is written and
// answered "not leader"; the same request again is recognised and answered
// with where the first one landed, and nothing is written twice.
func TestLostAppendAnswer(t *testing.T) {
	srv, c := start(t, Options{})
	mustAppend(t, c, "l", esdb.NoStream{}, event("A"))
	evs := []esdb.EventData{event("B"), event("C")}
	srv.LoseAppendAnswers(1)
	_, err := appendTo(t, c, "l", esdb.Revision(0), evs...)
	var ee *esdb.Error
	if !errors.As(err, &ee) || ee.Code() != esdb.ErrorCodeNotLeader {
		t.Fatalf("append whose answer is lost: %v, want not leader", err)
	}
	got, err := readStream(t, c, "l", esdb.ReadStreamOptions{}, 100)
	if err != nil || len(got) != 3 {
		t.Fatalf("stream has %d events (%v), want the lost append written", len(got), err)
	}
	again := mustAppend(t, c, "l", esdb.Revision(0), evs...)
	if again.NextExpectedVersion != 2 || again.CommitPosition != got[2].Position.Commit {
		t.Errorf("retry answered %+v, want revision 2 at %d", again, got[2].Position.Commit)
	}
	if got, _ := readStream(t, c, "l", esdb.ReadStreamOptions{}, 100); len(got) != 3 {
		t.Errorf("retry wrote: %d events, want 3", len(got))
	}
	// Only the next append was affected.
	mustAppend(t, c, "l", esdb.Revision(2), event("D"))
}
