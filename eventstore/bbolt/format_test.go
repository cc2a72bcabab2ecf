package bbolt

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/tests/history"
)

// The fixture testdata/format1.db is a small store written by the code of
// format 1 (JSON envelopes), before the format changed; format1.jsonl is
// what ReadAll returned from it then, one event a line. Every later build
// must read it back exactly. It was made with
//
//	CRYPTOVPS_WRITE_FORMAT1_FIXTURE=1 go test -run TestWriteFormat1Fixture ./eventstore/bbolt/
//
// at the last commit of format 1, and must never be regenerated.
const (
	format1Fixture = "testdata/format1.db"
	format1Golden  = "testdata/format1.jsonl"
)

func TestWriteFormat1Fixture(t *testing.T) {
	if os.Getenv("CRYPTOVPS_WRITE_FORMAT1_FIXTURE") == "" {
		t.Skip("writes the format 1 fixture; only at the last commit of format 1")
	}
	ctx := context.Background()
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(format1Fixture)
	clock := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	s, err := Open(format1Fixture, Options{Now: func() time.Time {
		clock = clock.Add(1500 * time.Millisecond)
		return clock
	}})
	if err != nil {
		t.Fatal(err)
	}
	// A realistic history of two accounts, then payloads of every JSON
	// shape an event may have.
	// (collected first and appended in a few large appends, as a busy
	// server's group commits would, which keeps the file small.)
	c := &fixtureCollector{Store: s}
	if _, err := history.Generate(ctx, c, 90, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	for _, a := range c.appends {
		if _, err := s.Append(ctx, a.stream, eventstore.Any, a.events); err != nil {
			t.Fatal(err)
		}
	}
	odd := []string{
		`null`, `{}`, `[]`, `"just a string"`, `12.50`, `true`,
		`{"n":-0.0001e+10,"big":123456789012345678901234567890,"f":1.5E-7,"z":0}`,
		`{"s":"quote \" backslash \\ slash \/ tab \t nl \n uni \u00e9 \u2028 emoji 😀 <html> &amp;","e":""}`,
		`{"nested":{"a":[1,{"b":[null,true,false,"x"]},[]],"c":{}},"dup":1,"dup":2}`,
		`{ "spaced" : [ 1 , 2 ] , "t" : "2026-01-01T00:00:00Z" }`,
		`{"id":"6f1b9f4e-8a3b-4c1d-9e2f-0a1b2c3d4e5f","ID":"6F1B9F4E-8A3B-4C1D-9E2F-0A1B2C3D4E5F","hash":"00ff` +
			`aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55","odd":"abc","t1":"2026-01-01T00:00:00.5Z",` +
			`"t2":"2026-01-01T00:00:00+02:00","t3":"2026-01-01T00:00:00.000Z","money":"-10000.00"}`,
	}
	for i, data := range odd {
		meta := eventstore.Metadata{RequestID: fmt.Sprintf("req-%d", i), Actor: "fixture", Causation: uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(i)}).String()}
		p := eventstore.Proposed{ID: uuid.NewSHA1(uuid.NameSpaceURL, []byte{byte(i)}), Type: fmt.Sprint("Odd", i), Data: json.RawMessage(data), Meta: meta}
		if _, err := s.Append(ctx, fmt.Sprint("odd-", i%3), eventstore.Any, []eventstore.Proposed{p}); err != nil {
			t.Fatal(err)
		}
	}
	// A stream name that is not an account's, with characters of its own.
	p := eventstore.Proposed{ID: uuid.NewSHA1(uuid.NameSpaceURL, []byte("é")), Type: "Ünïcode", Data: json.RawMessage(`{"k":"v"}`)}
	if _, err := s.Append(ctx, "stréam/with:odd chars", eventstore.NoStream, []eventstore.Proposed{p}); err != nil {
		t.Fatal(err)
	}
	all, err := s.ReadAll(ctx, eventstore.Position{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(format1Golden)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	enc.SetEscapeHTML(false)
	for _, e := range all {
		if err := enc.Encode(e); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("wrote %d events to %s", len(all), format1Fixture)
}

// fixtureCollector takes appends in memory, merging consecutive ones to
// the same stream.
type fixtureCollector struct {
	eventstore.Store
	versions map[string]int64
	appends  []fixtureAppend
}

type fixtureAppend struct {
	stream string
	events []eventstore.Proposed
}

func (c *fixtureCollector) Append(_ context.Context, stream string, _ int64, events []eventstore.Proposed) (eventstore.AppendResult, error) {
	if c.versions == nil {
		c.versions = map[string]int64{}
	}
	v, ok := c.versions[stream]
	if !ok {
		v = -1
	}
	v += int64(len(events))
	c.versions[stream] = v
	if n := len(c.appends); n > 0 && c.appends[n-1].stream == stream {
		c.appends[n-1].events = append(c.appends[n-1].events, events...)
	} else {
		c.appends = append(c.appends, fixtureAppend{stream: stream, events: events})
	}
	return eventstore.AppendResult{Version: uint64(v)}, nil
}

// readGolden is what ReadAll returned from the fixture when it was written.
func readGolden(t *testing.T) []eventstore.Event {
	t.Helper()
	f, err := os.Open(format1Golden)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []eventstore.Event
	dec := json.NewDecoder(f)
	for dec.More() {
		var e eventstore.Event
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// copyFixture copies the fixture where a test may open it for writing.
func copyFixture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(format1Fixture)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "events.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func sameEvent(a, b eventstore.Event) bool {
	return a.ID == b.ID && a.Stream == b.Stream && a.Version == b.Version && a.Position == b.Position &&
		a.Type == b.Type && string(a.Data) == string(b.Data) && a.Meta == b.Meta && a.RecordedAt.Equal(b.RecordedAt)
}

// A log written by format 1 reads back exactly as it did then.
func TestReadsFormat1Log(t *testing.T) {
	ctx := context.Background()
	want := readGolden(t)
	s, err := Open(copyFixture(t), Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ReadAll(ctx, eventstore.Position{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d events, the fixture has %d", len(got), len(want))
	}
	for i := range want {
		if !sameEvent(got[i], want[i]) {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
