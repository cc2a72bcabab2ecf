package bbolt

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// oddStrings are the strings a payload may hold that a packer could get
// wrong: escapes, unicode, HTML characters, strings that look like (but
// are not quite) UUIDs, prefixed ids, digests and times.
var oddStrings = []string{
	"", "x", "plain text", `quote " backslash \ slash /`, "tab\tnl\ncr\rnul\x00bell\x07",
	"<script>&amp;</script>", "é ü 中文 ключ 😀", "\u2028\u2029", "\xff\xfe invalid utf-8", "\xed\xa0\x80 surrogate",
	uuid.NewString(), strings.ToUpper(uuid.NewString()), uuid.NewString()[:35], uuid.NewString() + "x",
	"customer:" + uuid.NewString(), "server:" + uuid.NewString(), `"q":` + uuid.NewString(),
	"a prefix that is much longer than forty bytes in all:" + uuid.NewString(),
	"00ffaa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55aa55", "00FFAA55AA55AA55", "abc", "abcdef0123456789a",
	"2026-01-01T00:00:00Z", "2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00.000Z", "2026-13-01T00:00:00Z",
	"2026-01-01T00:00:00+02:00", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z",
	"0", "-1", "18446744073709551616", "1e308", "null", "true", "{}", "[]",
}

var oddMoney = []string{"0", "0.014", "-0.014", "12345678901234567890.1234567890", "-0", "5.00", ".5"}

// fillOdd sets v (settable) to a random value, the odd ones often.
func fillOdd(r *rand.Rand, v reflect.Value, depth int) {
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		t := time.Unix(r.Int64N(1<<36)-1<<35, r.Int64N(1e9))
		switch r.IntN(4) {
		case 0:
			t = t.Truncate(time.Second)
		case 1:
			t = t.In(time.FixedZone("", 3600*int(r.IntN(25)-12)))
		}
		v.Set(reflect.ValueOf(t.UTC()))
		if r.IntN(3) == 0 {
			v.Set(reflect.ValueOf(t))
		}
		return
	case reflect.TypeFor[domain.Money]():
		v.Set(reflect.ValueOf(domain.MustMoney(oddMoney[r.IntN(len(oddMoney))])))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if r.IntN(3) == 0 {
			b := make([]rune, r.IntN(12))
			for i := range b {
				b[i] = rune(r.IntN(0x300))
			}
			v.SetString(string(b))
		} else {
			v.SetString(oddStrings[r.IntN(len(oddStrings))])
		}
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8:
		vals := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, r.Int64(), -r.Int64N(1e6)}
		x := vals[r.IntN(len(vals))]
		if v.OverflowInt(x) {
			x = int64(r.IntN(100))
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint8:
		vals := []uint64{0, 1, math.MaxUint64, r.Uint64(), 9999999999999999999, 10000000000000000000}
		x := vals[r.IntN(len(vals))]
		if v.OverflowUint(x) {
			x = uint64(r.IntN(100))
		}
		v.SetUint(x)
	case reflect.Float64, reflect.Float32:
		vals := []float64{0, 1.5, -2.25e-7, 1e21, 123456789.125, math.MaxFloat32}
		v.SetFloat(vals[r.IntN(len(vals))])
	case reflect.Pointer:
		if r.IntN(3) == 0 || depth > 4 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		fillOdd(r, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		if r.IntN(4) == 0 || depth > 4 {
			v.SetZero()
			return
		}
		n := r.IntN(4)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fillOdd(r, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range r.IntN(4) {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fillOdd(r, k, depth+1)
			fillOdd(r, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillOdd(r, v.Field(i), depth+1)
			}
		}
	}
}

// Every registered event type, filled with odd values, reads back from the
// store as exactly the JSON encoding/json made of it (the store packs it
// in one pass, without reading it back), with its metadata, and decodes
// alike from the store's encoding and from that JSON.
func TestEveryEventTypePacksExactly(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	r := rand.New(rand.NewPCG(17, uint64(time.Now().UnixNano())))
	types := domain.EventTypes()
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	var props []eventstore.Proposed
	var want [][]byte
	for round := range rounds {
		for _, typ := range types {
			e, err := domain.DecodeEventWith(typ, func(v any) error {
				fillOdd(r, reflect.ValueOf(v).Elem(), 0)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			data, err := json.Marshal(e)
			if err != nil {
				continue // an odd value the event's own encoding refuses
			}
			var meta eventstore.Metadata
			if round%2 == 1 {
				m := reflect.ValueOf(&meta).Elem()
				fillOdd(r, m, 0)
				if round%7 == 1 {
					meta.Causation = strings.Repeat("long causation ", 12)
				}
			}
			props = append(props, eventstore.Proposed{ID: uuid.New(), Type: typ, Data: data, Meta: meta})
			want = append(want, data)
		}
	}
	for i := 0; i < len(props); i += 5 {
		if _, err := s.Append(ctx, fmt.Sprint("s-", i%7), eventstore.Any, props[i:min(i+5, len(props))]); err != nil {
			t.Fatal(err)
		}
	}
	eager, err := s.ReadAll(ctx, eventstore.Position{}, len(props)+1)
	if err != nil {
		t.Fatal(err)
	}
	lazy, err := s.ReadAllLazy(ctx, eventstore.Position{}, len(props)+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(eager) != len(props) || len(lazy) != len(props) {
		t.Fatalf("read %d and %d events, want %d", len(eager), len(lazy), len(props))
	}
	for i, p := range props {
		if string(eager[i].Data) != string(want[i]) {
			t.Fatalf("%s: reads back\n%s\nwant\n%s", p.Type, eager[i].Data, want[i])
		}
		// The metadata as its JSON has it (invalid UTF-8 becomes U+FFFD).
		var meta eventstore.Metadata
		if mj, err := json.Marshal(p.Meta); err != nil || json.Unmarshal(mj, &meta) != nil {
			t.Fatalf("%+v: %v", p.Meta, err)
		}
		if eager[i].Meta != meta || lazy[i].Meta != meta {
			t.Fatalf("%s: meta %+v / %+v, want %+v", p.Type, eager[i].Meta, lazy[i].Meta, meta)
		}
		got, gerr := domain.DecodeEventWith(lazy[i].Type, lazy[i].Decode)
		ref, rerr := domain.DecodeEvent(p.Type, want[i])
		if (gerr == nil) != (rerr == nil) || !reflect.DeepEqual(got, ref) {
			t.Fatalf("%s: decodes to %+v (%v), from its JSON %+v (%v)", p.Type, got, gerr, ref, rerr)
		}
	}
}

// The metadata written without encoding/json is what encoding/json writes.
func TestMetaJSONLikeEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
	for range 2000 {
		var m eventstore.Metadata
		fillOdd(r, reflect.ValueOf(&m).Elem(), 0)
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendMetaJSON(nil, m)
		if err != nil || string(got) != string(want) {
			t.Fatalf("%+v: %s (%v), want %s", m, got, err, want)
		}
	}
}
