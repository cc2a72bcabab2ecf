package audit

import (
	"math/bits"
	"strconv"
	"strings"

	"github.com/cockroachdb/apd/v3"

	"github.com/cryptovps/cryptovps/domain"
)

// amount is an exact sum of money for the fold. The log's amounts have a
// few decimals, so an amount is an int64 count of nano-dollars, which adds
// in a nanosecond where apd takes hundreds (a million-event audit does
// several million additions). A value that does not fit (more than nine
// decimals, or beyond ±9.2 billion dollars) is kept in apd from then on:
// the audit stays exact whatever the log holds.
type amount struct {
	nano int64
	big  *apd.Decimal // non-nil: the value, and nano is unused
}

const nanoDigits = 9

// bigContext has room for any sum of amounts without rounding.
var bigContext = apd.BaseContext.WithPrecision(200)

func (a amount) dec() *apd.Decimal {
	if a.big != nil {
		return a.big
	}
	return apd.New(a.nano, -nanoDigits)
}

func (a amount) add(b amount) amount {
	if a.big == nil && b.big == nil {
		s := a.nano + b.nano
		// Overflow only when both have the sign the sum lacks.
		if (a.nano >= 0) == (b.nano >= 0) && (s >= 0) != (a.nano >= 0) {
			return a.addBig(b)
		}
		return amount{nano: s}
	}
	return a.addBig(b)
}

func (a amount) addBig(b amount) amount {
	var d apd.Decimal
	if _, err := bigContext.Add(&d, a.dec(), b.dec()); err != nil {
		panic("audit: amount overflow: " + err.Error()) // 200 digits: cannot happen
	}
	return amount{big: &d}
}

func (a amount) neg() amount {
	if a.big == nil && a.nano != -1<<63 {
		return amount{nano: -a.nano}
	}
	var d apd.Decimal
	d.Neg(a.dec())
	return amount{big: &d}
}

func (a amount) sign() int {
	if a.big != nil {
		return a.big.Sign()
	}
	switch {
	case a.nano > 0:
		return 1
	case a.nano < 0:
		return -1
	}
	return 0
}

func (a amount) cmp(b amount) int {
	if a.big == nil && b.big == nil {
		switch {
		case a.nano < b.nano:
			return -1
		case a.nano > b.nano:
			return 1
		}
		return 0
	}
	return a.dec().Cmp(b.dec())
}

// String prints the amount with the decimals it needs, at least two.
func (a amount) String() string {
	if a.big != nil {
		var d apd.Decimal
		d.Reduce(a.big)
		if d.Exponent > -2 {
			_, _ = bigContext.Quantize(&d, &d, -2)
		}
		return d.Text('f')
	}
	n := a.nano
	neg := n < 0
	u := uint64(n)
	if neg {
		u = -u
	}
	ip := strconv.FormatUint(u/1e9, 10)
	fp := strconv.FormatUint(u%1e9+1e9, 10)[1:] // nine digits
	fp = strings.TrimRight(fp, "0")
	for len(fp) < 2 {
		fp += "0"
	}
	s := ip + "." + fp
	if neg {
		s = "-" + s
	}
	return s
}

// money converts back for reports and comparisons with read models.
func (a amount) money() domain.Money {
	return domain.MustMoney(a.String())
}

// amountOf converts a domain amount.
func amountOf(m domain.Money) amount {
	if a, ok := parseAmount([]byte(m.String())); ok {
		return a
	}
	return amount{big: m.Decimal()}
}

// parseAmount reads a decimal in the form Money's MarshalText writes,
// -?(0|[1-9][0-9]*)(\.[0-9]+)?, that fits nano-dollars; ok false for
// anything else. A negative zero is refused: it prints as "0", so it is
// not canonical.
func parseAmount(b []byte) (amount, bool) {
	i, neg := 0, false
	if len(b) > 0 && b[0] == '-' {
		neg, i = true, 1
	}
	start := i
	var ip uint64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if ip > 9_223_372_036 { // ip*1e9 would not fit
			return amount{}, false
		}
		ip = ip*10 + uint64(b[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || (digits > 1 && b[start] == '0') {
		return amount{}, false
	}
	var fp uint64
	if i < len(b) {
		if b[i] != '.' {
			return amount{}, false
		}
		i++
		fstart := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			fp = fp*10 + uint64(b[i]-'0')
			i++
		}
		n := i - fstart
		if n == 0 || n > nanoDigits || i != len(b) {
			return amount{}, false
		}
		for range nanoDigits - n {
			fp *= 10
		}
	}
	hi, lo := bits.Mul64(ip, 1e9)
	lo, carry := bits.Add64(lo, fp, 0)
	if hi != 0 || carry != 0 || lo > 1<<63-1 {
		return amount{}, false
	}
	if neg && lo == 0 {
		return amount{}, false
	}
	if neg {
		return amount{nano: -int64(lo)}, true
	}
	return amount{nano: int64(lo)}, true
}
