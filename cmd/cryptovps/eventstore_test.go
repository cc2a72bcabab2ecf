package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/eventstore/esdb"
	"github.com/cryptovps/cryptovps/eventstore/esdb/esdbtest"
	"github.com/google/uuid"
)

// sourceStore writes an embedded store with a varied history: several
// streams, multi-event appends, interleaving, metadata, a large event.
func sourceStore(t *testing.T, n int) (string, []eventstore.Event) {
	t.Helper()
	dir := t.TempDir()
	s, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < n; {
		stream := fmt.Sprintf("account-%d", i%7)
		k := 1 + i%3
		var ps []eventstore.Proposed
		for j := 0; j < k && i < n; j++ {
			data := fmt.Sprintf(`{"i":%d,"s":"caf\u00e9 <&>"}`, i)
			if i == 5 {
				data = `{"blob":"` + strings.Repeat("z", 300<<10) + `"}`
			}
			ps = append(ps, eventstore.Proposed{ID: uuid.New(), Type: fmt.Sprint("T", i%4), Data: json.RawMessage(data),
				Meta: eventstore.Metadata{RequestID: fmt.Sprint("r", i), Actor: "account:x", Causation: "c"}})
			i++
		}
		if _, err := s.Append(ctx, stream, eventstore.Any, ps); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ReadAll(ctx, eventstore.Position{}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, all
}

func runCopy(t *testing.T, from, to string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run([]string{"eventstore", "copy", "--from", from, "--to", to, "--batch", "4"}, &out, &errOut)
	t.Logf("copy output:\n%s%s", out.String(), errOut.String())
	return out.String(), err
}

func target(t *testing.T, srv *esdbtest.Server) *esdb.Store {
	t.Helper()
	s, err := esdb.Open(context.Background(), srv.URL(), esdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func startTarget(t *testing.T) *esdbtest.Server {
	t.Helper()
	srv, err := esdbtest.Start(esdbtest.Options{StatsInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestEventstoreCopy(t *testing.T) {
	dir, want := sourceStore(t, 300)
	srv := startTarget(t)
	out, err := runCopy(t, dir, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"copying 300 events", "copied 300/300", "source: 300 events", "target: 300 events", "verified"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	dst := target(t, srv)
	got, err := dst.ReadAll(context.Background(), eventstore.Position{}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("target has %d events, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Stream != w.Stream || g.Version != w.Version || g.Type != w.Type ||
			!bytes.Equal(g.Data, w.Data) || g.Meta != w.Meta || !g.RecordedAt.Equal(w.RecordedAt) {
			t.Fatalf("event %d: got %+v\nwant %+v", i, g, w)
		}
	}

	// Running it again copies nothing and verifies again.
	appends := srv.AppendRequests()
	out, err = runCopy(t, dir, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "already holds the first 300") || !strings.Contains(out, "(0 in this run)") || !strings.Contains(out, "verified") {
		t.Errorf("second run output:\n%s", out)
	}
	if srv.AppendRequests() != appends {
		t.Errorf("second run appended %d times", srv.AppendRequests()-appends)
	}
}

// TestEventstoreCopyResumes: a copy that stopped part-way carries on after
// the last event the target holds.
func TestEventstoreCopyResumes(t *testing.T) {
	dir, want := sourceStore(t, 120)
	srv := startTarget(t)
	dst := target(t, srv)
	// What an interrupted copy left: the first 50 events, in order.
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		e := want[i]
		if _, err := dst.Import(ctx, e.Stream, int64(e.Version)-1, []eventstore.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runCopy(t, dir, srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "already holds the first 50") || !strings.Contains(out, "(70 in this run)") || !strings.Contains(out, "verified") {
		t.Errorf("output:\n%s", out)
	}
}

func TestEventstoreCopyRefuses(t *testing.T) {
	dir, _ := sourceStore(t, 20)

	// A target holding other events.
	srv := startTarget(t)
	dst := target(t, srv)
	if _, err := dst.Append(context.Background(), "account-9", eventstore.NoStream,
		[]eventstore.Proposed{{ID: uuid.New(), Type: "X", Data: json.RawMessage(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := runCopy(t, dir, srv.URL()); err == nil || !strings.Contains(err.Error(), "not from this store") {
		t.Errorf("copy into a target with other events: %v", err)
	}

	// A source in use by a server.
	s, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = runCopy(t, dir, startTarget(t).URL())
	s.Close()
	if err == nil || !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), "Stop it first") {
		t.Errorf("copy of a locked store: %v", err)
	}

	// No store there, no target, no arguments.
	if _, err := runCopy(t, t.TempDir(), srv.URL()); err == nil || !strings.Contains(err.Error(), "no embedded event store") {
		t.Errorf("copy of an empty dir: %v", err)
	}
	if err := run([]string{"eventstore", "copy", "--from", dir}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("copy without --to succeeded")
	}
	if err := run([]string{"eventstore"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("eventstore without a subcommand succeeded")
	}
}

// TestVerifyCopyDetectsDifferences checks the verification itself on two
// embedded stores that differ in one event's metadata.
func TestVerifyCopyDetectsDifferences(t *testing.T) {
	ctx := context.Background()
	open := func() *bbolt.Store {
		s, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	for i := range 5 {
		p := eventstore.Proposed{ID: uuid.New(), Type: "X", Data: json.RawMessage(`{}`), Meta: eventstore.Metadata{Actor: "a"}}
		for _, s := range []*bbolt.Store{a, b} {
			if i == 3 && s == b {
				p.Meta.Actor = "b"
			}
			if _, err := s.Append(ctx, "s", eventstore.Any, []eventstore.Proposed{p}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var out bytes.Buffer
	err := verifyCopy(ctx, a, b, &out)
	if err == nil || !strings.Contains(err.Error(), "event 4 differs") {
		t.Errorf("verify of differing logs: %v\n%s", err, out.String())
	}
	if err := verifyCopy(ctx, a, a, &out); err != nil {
		t.Errorf("verify of a log against itself: %v", err)
	}
}
