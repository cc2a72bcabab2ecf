package domain

import (
	"fmt"
	"strings"

	"github.com/cockroachdb/apd/v3"
)

// Money is an exact decimal amount of US dollars. Its methods never mutate the
// receiver, so Money values may be copied and shared freely.
type Money struct{ d apd.Decimal }

// decimalContext is the arithmetic every amount uses: far more precision than
// any balance needs, so sums are exact, and half-up rounding where we round.
func decimalContext() *apd.Context { return &arithmetic }

// arithmetic is decimalContext's one value, made once: apd only reads a
// Context, so sharing it is safe, and replay adds millions of amounts (a
// fresh Context per operation was an allocation each).
var arithmetic = func() apd.Context {
	c := apd.BaseContext.WithPrecision(34)
	c.Rounding = apd.RoundHalfUp
	return *c
}()

// ParseMoney reads a decimal string such as "10.00". It rejects anything that
// is not a finite plain decimal (no exponent, NaN or infinity), and amounts
// whose text (as given, or as String writes it: ".5" becomes "0.5") is over
// 32 characters, so that every amount it accepts is read back from its own
// text.
func ParseMoney(s string) (Money, error) {
	var m Money
	if s == "" || len(s) > maxMoneyText {
		return m, fmt.Errorf("amount %q is not a decimal", s)
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' && r != '-' {
			return m, fmt.Errorf("amount %q is not a decimal", s)
		}
	}
	if parseShort(&m.d, s) {
		return m, nil
	}
	if _, _, err := m.d.SetString(s); err != nil {
		return Money{}, fmt.Errorf("amount %q is not a decimal: %w", s, err)
	}
	// The text String writes is at most one longer than s (".5" becomes
	// "0.5"): only an amount at the bound can be over it.
	if len(s) == maxMoneyText && len(m.String()) > maxMoneyText {
		return Money{}, fmt.Errorf("amount %q is too long", s)
	}
	return m, nil
}

// parseShort is SetString for the amounts the log is full of ("0.014",
// "-10000.00"): an optional minus, at most 18 digits and one point, with at
// least one digit. It builds the same Decimal as SetString would (sign of a
// negative zero included) without its general parser, which replaying a
// long log notices; anything else is left to SetString.
func parseShort[S ~string | ~[]byte](d *apd.Decimal, s S) bool {
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	var coeff int64
	digits, point, frac := 0, false, int32(0)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			coeff = coeff*10 + int64(c-'0')
			digits++
			if point {
				frac++
			}
		case c == '.' && !point:
			point = true
		default:
			return false
		}
	}
	if digits == 0 || digits > 18 {
		return false
	}
	if neg {
		coeff = -coeff
	}
	d.SetFinite(coeff, -frac)
	d.Negative = neg // -0.00 stays negative, as SetString reads it
	return true
}

// maxMoneyText bounds an amount's text: far beyond any real amount, and a
// bound on the work one parse does.
const maxMoneyText = 32

// MustMoney is ParseMoney for constants known to be valid.
func MustMoney(s string) Money {
	m, err := ParseMoney(s)
	if err != nil {
		panic(err)
	}
	return m
}

// Zero is no money.
func Zero() Money { return Money{} }

// moneyOp is an arithmetic operation of Money.
type moneyOp int

const (
	opAdd moneyOp = iota
	opSub
	opMul
)

func (m Money) op(op moneyOp, o Money) Money {
	var r Money
	var err error
	// Called directly, not through a function value, so that the operands
	// and the result can stay on the stack: an addition used to allocate
	// three times, and replay adds millions of amounts.
	switch op {
	case opAdd:
		_, err = arithmetic.Add(&r.d, &m.d, &o.d)
	case opSub:
		_, err = arithmetic.Sub(&r.d, &m.d, &o.d)
	case opMul:
		_, err = arithmetic.Mul(&r.d, &m.d, &o.d)
	}
	if err != nil {
		// 34 digits of precision cannot overflow on amounts of money.
		panic(fmt.Sprintf("money arithmetic: %v", err))
	}
	return r
}

// Add returns m + o.
func (m Money) Add(o Money) Money { return m.op(opAdd, o) }

// Sub returns m - o.
func (m Money) Sub(o Money) Money { return m.op(opSub, o) }

// Neg returns -m.
func (m Money) Neg() Money { return Zero().Sub(m) }

// Times returns m * n.
func (m Money) Times(n int) Money {
	var f Money
	f.d.SetInt64(int64(n))
	return m.op(opMul, f)
}

// Cmp compares m and o: -1, 0 or +1.
func (m Money) Cmp(o Money) int { return m.d.Cmp(&o.d) }

// Sign is -1, 0 or +1.
func (m Money) Sign() int { return m.d.Sign() }

// Exponent is the decimal exponent: -2 for "10.00".
func (m Money) Exponent() int32 { return m.d.Exponent }

// Round rounds half-up to places decimals.
func (m Money) Round(places int32) Money {
	var r Money
	if _, err := decimalContext().Quantize(&r.d, &m.d, -places); err != nil {
		panic(fmt.Sprintf("money rounding: %v", err))
	}
	return r
}

// Decimal returns a copy of the amount as an apd.Decimal.
func (m Money) Decimal() *apd.Decimal {
	var d apd.Decimal
	d.Set(&m.d)
	return &d
}

// String is the plain decimal text, never in exponent form.
func (m Money) String() string {
	if m.d.IsZero() && m.d.Exponent >= 0 {
		return "0"
	}
	return m.d.Text('f')
}

// appendText appends String's text to b (no string allocated: the ledger
// hash writes two amounts of every transaction).
func (m Money) appendText(b []byte) []byte {
	if m.d.IsZero() && m.d.Exponent >= 0 {
		return append(b, '0')
	}
	return m.d.Append(b, 'f')
}

// Fixed is the amount with at least places decimals ("10.00", "9.986").
func (m Money) Fixed(places int32) string {
	if -m.d.Exponent >= places {
		return m.String()
	}
	return m.Round(places).String()
}

// Canonical is the one rendering of an amount of dollars that customers
// see, in answers and messages alike: at least 2 decimals and no trailing
// zero beyond them, so the same amount always reads the same ("10.00",
// "9.986", "0.16" for 0.160, "0.00" for nothing).
func (m Money) Canonical() string {
	s := m.Fixed(2)
	if dot := strings.IndexByte(s, '.'); dot >= 0 {
		for len(s) > dot+3 && s[len(s)-1] == '0' {
			s = s[:len(s)-1]
		}
	}
	if s == "-0.00" {
		return "0.00"
	}
	return s
}

// MarshalText writes the plain decimal text.
func (m Money) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads what MarshalText wrote.
func (m *Money) UnmarshalText(b []byte) error {
	// The log's amounts are short: read them from b, without the copy a
	// string of it would be (ParseMoney's checks hold: parseShort takes
	// only digits, one point and a leading minus, and at most 19 bytes).
	if len(b) <= 19 {
		var p Money
		if parseShort(&p.d, b) {
			*m = p
			return nil
		}
	}
	p, err := ParseMoney(string(b))
	if err != nil {
		return err
	}
	*m = p
	return nil
}
