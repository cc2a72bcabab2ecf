package bbolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/cryptovps/cryptovps/domain"
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
	if formatVersion != formatV1 {
		t.Skip("the fixture is of format 1, which this build no longer writes")
	}
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

// Opening a format 1 log to write marks it format 2; its events read back
// as they were, new ones are written the compact way beside them, and
// streams, versions and retries carry on across the two.
func TestUpgradesFormat1Log(t *testing.T) {
	ctx := context.Background()
	want := readGolden(t)
	path := copyFixture(t)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var format string
	_ = s.db.View(func(tx *bolt.Tx) error {
		format = string(tx.Bucket(bucketMeta).Get(keyFormat))
		return nil
	})
	if format != formatVersion {
		t.Errorf("format after opening to write: %q, want %q", format, formatVersion)
	}
	account := want[0].Stream
	var last eventstore.Event // the account stream's last event
	for _, e := range want {
		if e.Stream == account {
			last = e
		}
	}
	// A retry of the last append made by format 1 is recognised.
	retry := eventstore.Proposed{ID: last.ID, Type: last.Type, Data: last.Data}
	if res, err := s.Append(ctx, account, eventstore.Any, []eventstore.Proposed{retry}); err != nil || res.Position != last.Position {
		t.Fatalf("retry of a format 1 append: %+v, %v; want it recognised at %s", res, err, last.Position)
	}
	added := []eventstore.Proposed{
		{ID: uuid.New(), Type: "LedgerPosted", Data: json.RawMessage(`{"txId":"x","kind":"charge"}`), Meta: eventstore.Metadata{Actor: "upgrade"}},
		{ID: uuid.New(), Type: "BrandNew", Data: json.RawMessage(`{"a":[1,2,{"b":null}]}`)},
	}
	res, err := s.Append(ctx, account, int64(last.Version), added)
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != last.Version+2 || res.Position.Commit != uint64(len(want)+2) {
		t.Errorf("append after the format 1 events: %+v", res)
	}
	if _, err := s.Append(ctx, "new-stream", eventstore.NoStream, added[1:]); err != nil {
		t.Fatal(err)
	}
	check := func(s *Store) {
		t.Helper()
		all, err := s.ReadAll(ctx, eventstore.Position{}, 100000)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(want)+3 {
			t.Fatalf("%d events, want %d", len(all), len(want)+3)
		}
		for i := range want {
			if !sameEvent(all[i], want[i]) {
				t.Errorf("format 1 event %d:\n got %+v\nwant %+v", i, all[i], want[i])
			}
		}
		for i, p := range append(added, added[1]) {
			got := all[len(want)+i]
			if got.ID != p.ID || got.Type != p.Type || string(got.Data) != string(compactJSON(t, p.Data)) || got.Meta != p.Meta {
				t.Errorf("new event %d: %+v, want %+v", i, got, p)
			}
		}
		stream, err := s.ReadStream(ctx, account, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(stream); n != int(last.Version)+3 || stream[n-1].ID != added[1].ID || stream[n-3].ID != last.ID {
			t.Errorf("the account stream across formats: %d events", n)
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// Every payload reads back as its compact JSON, byte for byte, from an eager
// read and from a lazy one, and decodes as json.Unmarshal decodes that.
func TestPayloadsReadBackExactly(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	var props []eventstore.Proposed
	for _, e := range readGolden(t) {
		props = append(props, eventstore.Proposed{ID: uuid.New(), Type: e.Type, Data: e.Data, Meta: e.Meta})
	}
	props = append(props, eventstore.Proposed{ID: uuid.New(), Type: "Spaced", Data: json.RawMessage(" {\n \"a\" : [ 1, 2 ] } ")},
		eventstore.Proposed{ID: uuid.New(), Type: "Empty"})
	for i := 0; i < len(props); i += 7 {
		if _, err := s.Append(ctx, fmt.Sprint("s-", i%5), eventstore.Any, props[i:min(i+7, len(props))]); err != nil {
			t.Fatal(err)
		}
	}
	eager, err := s.ReadAll(ctx, eventstore.Position{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	lazy, err := s.ReadAllLazy(ctx, eventstore.Position{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if len(eager) != len(props) || len(lazy) != len(props) {
		t.Fatalf("read %d and %d events, want %d", len(eager), len(lazy), len(props))
	}
	for i, p := range props {
		want := []byte("null")
		if len(p.Data) > 0 {
			want = compactJSON(t, p.Data)
		}
		if string(eager[i].Data) != string(want) {
			t.Errorf("event %d: Data %s, want %s", i, eager[i].Data, want)
		}
		if lazy[i].Data != nil {
			t.Errorf("event %d: a lazy read made its JSON", i)
		}
		if js, err := lazy[i].JSON(); err != nil || string(js) != string(want) {
			t.Errorf("event %d: lazy JSON %s, %v; want %s", i, js, err, want)
		}
		if lazy[i].ID != p.ID || lazy[i].Type != p.Type || lazy[i].Meta != p.Meta || eager[i].Meta != p.Meta {
			t.Errorf("event %d: envelope %+v, want %+v", i, lazy[i], p)
		}
		var got, ref any
		jerr := json.Unmarshal(want, &ref)
		if err := lazy[i].Decode(&got); (err == nil) != (jerr == nil) || !reflect.DeepEqual(got, ref) {
			t.Errorf("event %d: decoded %v (%v), json %v (%v)", i, got, err, ref, jerr)
		}
	}
}

// The domain's events decode the same from the store's encoding as from
// their JSON, over a realistic history.
func TestDomainEventsDecodeAlike(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	c := &fixtureCollector{Store: s}
	if _, err := history.Generate(ctx, c, 3000, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	for _, a := range c.appends {
		if _, err := s.Append(ctx, a.stream, eventstore.Any, a.events); err != nil {
			t.Fatal(err)
		}
	}
	lazy, err := s.ReadAllLazy(ctx, eventstore.Position{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	eager, err := s.ReadAll(ctx, eventstore.Position{}, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range lazy {
		got, err := domain.DecodeEventWith(lazy[i].Type, lazy[i].Decode)
		if err != nil {
			t.Fatal(err)
		}
		want, err := domain.DecodeEvent(eager[i].Type, eager[i].Data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d (%s):\n got %+v\nwant %+v", i, lazy[i].Type, got, want)
		}
	}
	stream, err := s.ReadStreamLazy(ctx, lazy[0].Stream, 0)
	if err != nil || len(stream) == 0 || stream[0].Data != nil {
		t.Fatalf("lazy stream read: %d events, %v", len(stream), err)
	}
}

// A reader may meet a stream or type numbered by a commit the writer has
// not told the tables about yet: it finds the name in the file.
func TestNamesReadFromTheFileWhenNotInMemoryYet(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	fill(t, s, 20)
	want, err := s.ReadAll(ctx, eventstore.Position{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	tab := *s.tab
	stale := tab
	stale.types, stale.streams = &names{codes: map[string]uint64{}}, &names{}
	s.tab = &stale
	got, err := s.ReadAll(ctx, eventstore.Position{}, 100)
	s.tab = &tab
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Error("events read with names from the file differ")
	}
}

func TestRefusesUnknownFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte("3")) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		if s, err := Open(path, Options{ReadOnly: ro}); err == nil || !strings.Contains(err.Error(), `format "3"`) {
			if s != nil {
				s.Close()
			}
			t.Errorf("read-only %v: open of a format 3 file: %v", ro, err)
		}
	}
}
