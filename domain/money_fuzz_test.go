package domain_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/cockroachdb/apd/v3"

	"github.com/cryptovps/cryptovps/domain"
)

// plainDecimal is the text ParseMoney accepts, up to 32 bytes: an optional
// minus and digits with at most one decimal point, at least one digit. No
// plus, exponent, spaces, separators, NaN or infinity.
var plainDecimal = regexp.MustCompile(`^-?([0-9]+\.?[0-9]*|\.[0-9]+)$`)

// FuzzParseMoney: ParseMoney never panics, accepts exactly the plain
// decimals, and what it accepts round-trips through its text and its JSON
// with the same value and the same scale. Seeds: testdata/fuzz/FuzzParseMoney.
func FuzzParseMoney(f *testing.F) {
	f.Add("10.00")
	f.Add("1e3")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := domain.ParseMoney(s)
		// ".5" is written back as "0.5": at 32 bytes such a text would not
		// read back, so it is refused.
		grows := strings.HasPrefix(s, ".") || strings.HasPrefix(s, "-.")
		if want := len(s) <= 32 && plainDecimal.MatchString(s) && !(grows && len(s) == 32); want != (err == nil) {
			t.Fatalf("ParseMoney(%q) = %v, %v; want accepted: %v", s, m, err, want)
		}
		if err != nil {
			return
		}
		text := m.String()
		if !plainDecimal.MatchString(text) {
			t.Fatalf("ParseMoney(%q).String() = %q, not a plain decimal", s, text)
		}
		back, err := domain.ParseMoney(text)
		if err != nil {
			t.Fatalf("ParseMoney(%q).String() = %q, which ParseMoney rejects: %v", s, text, err)
		}
		if back.Cmp(m) != 0 || back.String() != text || back.Exponent() != m.Exponent() {
			t.Fatalf("%q read back from %q as %q (exponent %d, was %d)", text, s, back, back.Exponent(), m.Exponent())
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("marshal %q: %v", s, err)
		}
		var j domain.Money
		if err := json.Unmarshal(b, &j); err != nil {
			t.Fatalf("unmarshal %s (from %q): %v", b, s, err)
		}
		if j.Cmp(m) != 0 || j.String() != text {
			t.Fatalf("JSON %s (from %q) read back as %q", b, s, j)
		}
	})
}

// FuzzParseMoneyShortPath: the short amounts ParseMoney reads itself make
// exactly the Decimal apd's SetString makes.
func FuzzParseMoneyShortPath(f *testing.F) {
	for _, s := range []string{"0.014", "-0.014", "10000.00", "-0", "-0.00", "-.0", ".5", "5.", "007.50", "0", "123456789012345678", "1234567890123456789", "-", ".", "1-2", "1..2", "--1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 32 || strings.Trim(s, "0123456789.-") != "" {
			return
		}
		got, err := domain.ParseMoney(s)
		var text domain.Money
		if terr := text.UnmarshalText([]byte(s)); (terr == nil) != (err == nil) ||
			(err == nil && !reflect.DeepEqual(text.Decimal(), got.Decimal())) {
			t.Fatalf("UnmarshalText(%q) = %v, %v; ParseMoney %v, %v", s, text, terr, got, err)
		}
		var want apd.Decimal
		_, _, werr := want.SetString(s)
		if err != nil {
			return // (which ParseMoney accepts is FuzzParseMoney's)
		}
		if werr != nil {
			t.Fatalf("ParseMoney(%q) accepted what SetString refuses: %v", s, werr)
		}
		var w apd.Decimal // copied as Decimal copies, to compare like with like
		w.Set(&want)
		if g := got.Decimal(); !reflect.DeepEqual(g, &w) || g.String() != want.String() || got.String() != domain.MustMoney(got.String()).String() {
			t.Fatalf("ParseMoney(%q) = %#v (%s), SetString %#v (%s)", s, g, g.String(), w, want.String())
		}
	})
}
