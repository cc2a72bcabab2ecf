package jsonpack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

var docs = []string{
	`null`, `true`, `false`, `0`, `-0`, `7`, `10`, `1.5`, `-12.50`, `1e10`, `1E-7`, `-0.0001e+10`,
	`18446744073709551615`, `9999999999999999999`, `99999999999999999999`, `-7`, `0.0`, `123456789012345678901234567890`,
	`""`, `"x"`, `{}`, `[]`, `[[],{}]`,
	`"just a string"`,
	`"quote \" backslash \\ slash \/ tab \t nl \n uni \u00e9 \u2028 emoji 😀 <html> &amp;"`,
	`"\ud83d\ude00 surrogate pair, \ud800 lone surrogate"`,
	"\"invalid utf-8 \xff\xfe here\"",
	`{"nested":{"a":[1,{"b":[null,true,false,"x"]},[]],"c":{}},"dup":1,"dup":2}`,
	` { "spaced" : [ 1 , 2 ] ,
	   "t" : "2026-01-01T00:00:00Z" } `,
	`{"id":"6f1b9f4e-8a3b-4c1d-9e2f-0a1b2c3d4e5f","ID":"6F1B9F4E-8A3B-4C1D-9E2F-0A1B2C3D4E5F"}`,
	`{"hash":"00ffaa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55","short":"abcd","odd":"abc","upper":"00FFAA55AA55AA55"}`,
	`{"t1":"2026-01-01T00:00:00.5Z","t2":"2026-01-01T00:00:00+02:00","t3":"2026-01-01T00:00:00.000Z","t4":"2026-13-01T00:00:00Z","t5":"0000-01-01T00:00:00Z","t6":"2026-01-01T00:00:00.123456789Z"}`,
	`{"account":"customer:6f1b9f4e-8a3b-4c1d-9e2f-0a1b2c3d4e5f","other":"a very long prefix that is longer than forty bytes in all:6f1b9f4e-8a3b-4c1d-9e2f-0a1b2c3d4e5f","q":"\"quoted\":6f1b9f4e-8a3b-4c1d-9e2f-0a1b2c3d4e5f"}`,
	`{"k\"ey":1,"k\u0065y":2,"":3,"ключ":4}`,
	`[1,"two",3.0,{"four":[4]},null]`,
}

func roundTrip(t testing.TB, syms *Symbols, src string) []byte {
	t.Helper()
	packed, err := PackExact(nil, []byte(src), syms)
	if err != nil {
		t.Fatalf("pack %s: %v", src, err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(src)); err != nil {
		t.Fatal(err)
	}
	got, err := AppendJSON(nil, packed, syms.table())
	if err != nil {
		t.Fatalf("unpack %s: %v", src, err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("round trip of %s:\n got %s\nwant %s", src, got, want.Bytes())
	}
	if packed[0] == tRaw {
		t.Errorf("%s was kept raw: Pack does not read it back right", src)
	}
	return packed
}

func TestRoundTripExact(t *testing.T) {
	syms := NewSymbols(nil)
	for _, d := range docs {
		roundTrip(t, syms, d)
	}
	// The symbols persist: a table reloaded from the names reads the same.
	again := NewSymbols(syms.table())
	for _, d := range docs {
		p := roundTrip(t, syms, d)
		got, err := AppendJSON(nil, p, again.table())
		var want bytes.Buffer
		_ = json.Compact(&want, []byte(d))
		if err != nil || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("with the reloaded table: %s, %v", got, err)
		}
	}
}

// Pack refuses what json.Valid refuses, in the corners a loose scanner
// would let through (FuzzPack checks the rest).
func TestPackIsStrict(t *testing.T) {
	bad := []string{
		``, ` `, `nul`, `nulll`, `tru`, `True`, `01`, `-`, `-01`, `1.`, `.5`, `1e`, `1e+`, `1.5e-`, `+1`, `1-2`, `0x10`,
		`"a`, `"\"`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"tab\there\"", "\"nl\nhere\"", `{"a"}`, `{"a":}`, `{"a":1,}`,
		`{a:1}`, `[1,]`, `[1 2]`, `{"a":1}}`, `[`, `{`, `1 2`, `"x"y`, `{"a":1 "b":2}`, `[,1]`,
	}
	for _, b := range bad {
		if json.Valid([]byte(b)) {
			t.Fatalf("%q is valid JSON: fix the test", b)
		}
		if p, err := Pack(nil, []byte(b), NewSymbols(nil)); err == nil {
			t.Errorf("Pack accepted %q: %x", b, p)
		}
		if _, err := PackExact(nil, []byte(b), NewSymbols(nil)); err == nil {
			t.Errorf("PackExact accepted %q", b)
		}
	}
	// Valid JSON nested deeper than Pack goes is kept as its compact JSON.
	deep := strings.Repeat("[", maxDepth+5) + strings.Repeat(" ]", maxDepth+5)
	p, err := PackExact(nil, []byte(deep), NewSymbols(nil))
	if err != nil || p[0] != tRaw {
		t.Fatalf("deep value: %v, tag %d", err, p[0])
	}
	got, err := AppendJSON(nil, p, nil)
	if err != nil || string(got) != strings.Repeat("[", maxDepth+5)+strings.Repeat("]", maxDepth+5) {
		t.Fatalf("deep value reads back %.40s..., %v", got, err)
	}
}

func TestCompact(t *testing.T) {
	syms := NewSymbols(nil)
	src := `{"txId":"d67ad804-97ff-5731-8e4b-2437b56b65ab","kind":"charge","postings":[{"account":"revenue:compute","amount":"0.014"},` +
		`{"account":"customer:e7dcfc50-9dd5-538b-abe0-e0f5983fb7c2","amount":"-0.014"}],"serverId":"5e17721d-6084-4998-815e-eb7d335fc5bd",` +
		`"from":"2026-01-01T00:00:00Z","to":"2026-01-01T01:00:00Z","at":"2026-01-01T00:00:00Z",` +
		`"prevHash":"da6cf07114deff7a72b5a79e3e7c2e17fb00681e0efbaa90315a04f40c45ef97","hash":"3bd6fc2213233a43537702f8f071b6ceac07460660ccdcfcdcf3ec19fb9dc204"}`
	roundTrip(t, syms, src) // numbers the symbols
	p := roundTrip(t, syms, src)
	if len(p) > len(src)*45/100 {
		t.Errorf("a ledger transaction packs to %d bytes of its %d: want at most 45%%", len(p), len(src))
	}
}

func TestSymbolsPersistence(t *testing.T) {
	syms := NewSymbols([]string{"a", "b"})
	if first, names := syms.Unpersisted(); first != 3 || len(names) != 0 {
		t.Fatalf("fresh table: %d %v", first, names)
	}
	roundTrip(t, syms, `{"a":1,"c":2,"d":{"b":3,"e":4}}`)
	first, names := syms.Unpersisted()
	if first != 3 || strings.Join(names, ",") != "c,d,e" {
		t.Fatalf("unpersisted %d %v, want 3 [c d e]", first, names)
	}
	syms.Persisted(4)
	if first, names := syms.Unpersisted(); first != 5 || strings.Join(names, ",") != "e" {
		t.Fatalf("after persisting to 4: %d %v", first, names)
	}
}

func TestSymbolTableIsBounded(t *testing.T) {
	names := make([]string, MaxSymbols-1)
	for i := range names {
		names[i] = fmt.Sprint("k", i)
	}
	syms := NewSymbols(names)
	roundTrip(t, syms, `{"new1":1,"new2":2,"new3":"customer:6f1b9f4e-8a3b-4c1d-9e2f-0a1b2c3d4e5f"}`)
	if syms.Len() != MaxSymbols {
		t.Errorf("table has %d symbols, want the bound %d", syms.Len(), MaxSymbols)
	}
}

func TestCorruptInputIsAnError(t *testing.T) {
	syms := NewSymbols(nil)
	p := roundTrip(t, syms, `{"a":[1,"x",{"b":"6f1b9f4e-8a3b-4c1d-9e2f-0a1b2c3d4e5f"}],"c":"2026-01-01T00:00:00Z"}`)
	c := NewCodec(syms)
	for i := range len(p) {
		if _, err := AppendJSON(nil, p[:i], syms.table()); err == nil {
			t.Errorf("truncated at %d read back without error", i)
		}
		var v any
		if err := c.Unmarshal(p[:i], &v); err == nil {
			t.Errorf("truncated at %d decoded without error", i)
		}
	}
	if _, err := AppendJSON(nil, []byte{tObject, 1, 99, tNull}, syms.table()); err == nil {
		t.Error("an unknown symbol read back without error")
	}
	if _, err := AppendJSON(nil, []byte{tArray, 0xff, 0xff, 0xff, 0x7f}, syms.table()); err == nil {
		t.Error("a huge count read back without error")
	}
}

// ---- decoding into Go values ----

type money struct{ text string }

func (m *money) UnmarshalText(b []byte) error {
	if len(b) == 0 || strings.Trim(string(b), "-0123456789.") != "" {
		return errors.New("not money")
	}
	m.text = "m" + string(b)
	return nil
}

type posting struct {
	Account string `json:"account"`
	Amount  money  `json:"amount"`
}

type inner struct {
	N int `json:"n"`
}

type event struct {
	TxID     string            `json:"txId"`
	Kind     string            `json:"kind"`
	Postings []posting         `json:"postings"`
	From     *time.Time        `json:"from,omitempty"`
	At       time.Time         `json:"at"`
	Hash     string            `json:"hash"`
	Count    int               `json:"count"`
	Small    int8              `json:"small"`
	U        uint16            `json:"u"`
	F        float64           `json:"f"`
	F32      float32           `json:"f32"`
	OK       bool              `json:"ok"`
	Any      any               `json:"any"`
	Raw      json.RawMessage   `json:"raw"`
	Num      json.Number       `json:"num"`
	Bytes    []byte            `json:"bytes"`
	Map      map[string]inner  `json:"map"`
	PtrMap   map[string]*inner `json:"ptrMap"`
	Nested   *inner            `json:"nested"`
	Arr      [2]int            `json:"arr"`
	Strs     []string          `json:"strs"`
	Untagged string
	Skipped  string `json:"-"`
	Quoted   int    `json:"quoted"`
	//lint:ignore U1000 an unexported field, which decoding must leave alone
	hidden string
	Self   *event `json:"self"`
}

type withString struct {
	N int `json:"n,string"`
}

type Embedded struct{ E string }

type withEmbedded struct {
	Embedded
	X int
}

var valueDocs = []string{
	`{"txId":"d67ad804-97ff-5731-8e4b-2437b56b65ab","kind":"charge","postings":[{"account":"revenue:compute","amount":"0.014"},{"account":"customer:e7dcfc50-9dd5-538b-abe0-e0f5983fb7c2","amount":"-0.014"}],"from":"2026-01-01T00:00:00Z","at":"2026-01-01T00:00:00.5Z","hash":"3bd6fc2213233a43537702f8f071b6ceac07460660ccdcfcdcf3ec19fb9dc204"}`,
	`{"count":12,"small":-7,"u":65535,"f":1.5e3,"f32":0.1,"ok":true,"any":{"a":[1,"b",null]},"raw":{"x":[1, 2]},"num":12.50,"bytes":"aGVsbG8=","arr":[1,2]}`,
	`{"map":{"a":{"n":1},"b":{"n":2}},"ptrMap":{"x":null,"y":{"n":3}},"nested":{"n":4},"strs":["a","b\n"],"Untagged":"u","untagged":"v","Skipped":"no","-":"dash"}`,
	`{"TXID":"upper case key","KIND":"k","Count":3,"self":{"txId":"inner","self":null}}`,
	`{"at":"2026-01-01T00:00:00+02:00","from":null,"postings":null,"map":null,"nested":null}`,
	`{"at":"not a time"}`,
	`{"count":"12"}`,
	`{"count":1.5}`,
	`{"small":300}`,
	`{"u":-1}`,
	`{"ok":"true"}`,
	`{"kind":12}`,
	`{"postings":[{"amount":"12x"}]}`,
	`{"postings":{}}`,
	`{"postings":[],"strs":[],"map":{}}`,
	`{"txId":"esc\u0041ped","kind":"\u00e9"}`,
	"{\"txId\":\"bad utf-8 \xff\"}",
	`{"t\u0078Id":"escaped key"}`,
	`{"count":1,"count":2,"nested":{"n":1},"nested":{"n":2}}`,
	`{"unknown":{"deep":[1,2,{"x":"y"}]},"txId":"after"}`,
	`[1,2]`,
	`"string"`,
	`null`,
	`{"hash":null,"count":null,"ok":null,"at":null}`,
}

func TestUnmarshalLikeJSON(t *testing.T) {
	syms := NewSymbols(nil)
	c := NewCodec(syms)
	for _, d := range valueDocs {
		p := roundTrip(t, syms, d)
		// What the store keeps, and json.Unmarshal of it is the reference.
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(d)); err != nil {
			t.Fatal(err)
		}
		check := func(newV func() any) {
			t.Helper()
			want, got := newV(), newV()
			wantErr := json.Unmarshal(compact.Bytes(), want)
			gotErr := c.Unmarshal(p, got)
			if (wantErr == nil) != (gotErr == nil) {
				t.Errorf("%s into %T: error %v, json says %v", d, got, gotErr, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s into %T:\n got %+v\nwant %+v", d, got, got, want)
			}
		}
		check(func() any { return new(event) })
		check(func() any { return new(any) })
		check(func() any { return new(map[string]any) })
		check(func() any { return new(withString) })
		check(func() any { return new(withEmbedded) })
		check(func() any { return new([]any) })
		check(func() any { return new(string) })
	}
}

func TestUnmarshalIntoNonZeroMergesLikeJSON(t *testing.T) {
	syms := NewSymbols(nil)
	c := NewCodec(syms)
	p := roundTrip(t, syms, `{"nested":{"n":5},"kind":"k"}`)
	want := event{TxID: "kept", Nested: &inner{N: 1}}
	got := want
	got.Nested = &inner{N: 1}
	if err := json.Unmarshal([]byte(`{"nested":{"n":5},"kind":"k"}`), &want); err != nil {
		t.Fatal(err)
	}
	if err := c.Unmarshal(p, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	var nilPtr *event
	if err := c.Unmarshal(p, nilPtr); err == nil {
		t.Error("unmarshal into a nil pointer succeeded")
	}
}

func TestTimesDecodeAsJSONDoes(t *testing.T) {
	syms := NewSymbols(nil)
	c := NewCodec(syms)
	for _, s := range []string{"2026-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999999Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.1Z"} {
		lit := `"` + s + `"`
		p := roundTrip(t, syms, lit)
		if p[0] != tTime {
			t.Errorf("%s not packed as a time", s)
		}
		var want, got time.Time
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatal(err)
		}
		if err := c.Unmarshal(p, &got); err != nil {
			t.Fatal(err)
		}
		if got != want { // the same instant, location and all
			t.Errorf("%s: got %#v, want %#v", s, got, want)
		}
	}
}

func FuzzPack(f *testing.F) {
	for _, d := range append(append([]string{}, docs...), valueDocs...) {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if !json.Valid(src) {
			// Pack is as strict as json.Valid: the store relies on it to
			// refuse what is not JSON.
			if p, err := Pack(nil, src, NewSymbols(nil)); err == nil {
				t.Fatalf("Pack accepted invalid JSON %q: %x", src, p)
			}
			if _, err := PackExact(nil, src, NewSymbols(nil)); err == nil {
				t.Fatalf("PackExact accepted invalid JSON %q", src)
			}
			return
		}
		syms := NewSymbols(nil)
		p := roundTrip(t, syms, string(src))
		c := NewCodec(syms)
		var compact bytes.Buffer
		if err := json.Compact(&compact, src); err != nil {
			t.Fatal(err)
		}
		for _, newV := range []func() any{func() any { return new(any) }, func() any { return new(event) }} {
			want, got := newV(), newV()
			wantErr := json.Unmarshal(compact.Bytes(), want)
			gotErr := c.Unmarshal(p, got)
			if (wantErr == nil) != (gotErr == nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s into %T: got %+v (%v), json %+v (%v)", src, got, got, gotErr, want, wantErr)
			}
		}
	})
}

// Packed bytes come from a file that may be damaged: reading any bytes
// fails cleanly or succeeds, and never panics.
func FuzzReadCorrupt(f *testing.F) {
	syms := NewSymbols(nil)
	for _, d := range valueDocs {
		p, err := PackExact(nil, []byte(d), syms)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	names := syms.table()
	f.Fuzz(func(t *testing.T, b []byte) {
		c := NewCodec(NewSymbols(names))
		// (Damaged literals may read back to invalid JSON, which whoever
		// decodes it reports, as with a damaged JSON payload.)
		_, _ = AppendJSON(nil, b, names)
		var v event
		_ = c.Unmarshal(b, &v)
		var a any
		_ = c.Unmarshal(b, &a)
	})
}
