package audit

import (
	"strconv"
	"strings"

	"github.com/cockroachdb/apd/v3"

	"github.com/cryptovps/cryptovps/domain"
)

// ledgerTx is a LedgerPosted with what the audit works out from it alone,
// before the fold and in parallel with other events: whether its hash is
// the one its content makes, what its postings sum to, how much money it
// moves (its positive postings) and how much of that into revenue:compute.
type ledgerTx struct {
	domain.LedgerPosted
	hashOK  bool
	sum     domain.Money
	moved   domain.Money
	revenue domain.Money
}

// set makes t the ledgerTx of tx.
func (t *ledgerTx) set(tx domain.LedgerPosted) {
	var all sum
	var moved, revenue total
	for _, p := range tx.Postings {
		all.add(p.Amount)
		if p.Amount.Sign() > 0 {
			moved.add(p.Amount)
		}
		if p.Account == domain.LedgerRevenueCompute {
			revenue.add(p.Amount)
		}
	}
	*t = ledgerTx{LedgerPosted: tx, hashOK: tx.HashOK(), moved: moved.m, revenue: revenue.m}
	if all.sign() != 0 {
		t.sum = all.value()
	}
}

// total adds amounts up, taking the first one as it is: every Money
// operation allocates, and most sums here have one or two terms.
type total struct {
	m    domain.Money
	some bool
}

func (t *total) add(m domain.Money) {
	if t.some {
		t.m = t.m.Add(m)
		return
	}
	t.m, t.some = m, true
}

// show prints an amount the way the audit's reports and the ledger export
// always have: every decimal it needs and at least two ("0.50", "0.014",
// "0.00"), whatever trailing zeros the arithmetic kept.
func show(m domain.Money) string {
	whole, frac, _ := strings.Cut(m.String(), ".")
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	if strings.Trim(whole, "-0") == "" && strings.Trim(frac, "0") == "" {
		whole = "0" // no negative zero
	}
	return whole + "." + frac
}

// shown is m in the form show prints, for the totals of a report.
func shown(m domain.Money) domain.Money { return domain.MustMoney(show(m)) }

// sum adds amounts up exactly, as domain.Money does, but in an int64 of
// units of 10^exp while they fit: the fold adds two or three amounts per
// transaction of the log in order, on one goroutine, and Money's addition
// (apd, 34 digits, rounding) was most of its time. Amounts that do not fit
// (or a sum that would overflow) move the sum to Money for good. Its value
// is Money's to the digit and the exponent (the smallest of the terms'):
// amounts of the log have at most 18 digits, so apd never rounds them.
type sum struct {
	units int64
	exp   int32
	big   bool
	m     domain.Money // the sum once big
}

// maxScale bounds the decimals the int64 form takes.
const maxScale = 18

var pow10 = func() (p [maxScale + 1]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// unitsOf is m as units of 10^exp, if it is a finite amount of at most 18
// decimals whose coefficient fits an int64.
func unitsOf(m domain.Money) (units int64, exp int32, ok bool) {
	d := m.Decimal()
	if d.Form != apd.Finite || d.Exponent > 0 || d.Exponent < -maxScale || !d.Coeff.IsInt64() {
		return 0, 0, false
	}
	units = d.Coeff.Int64()
	if d.Negative {
		units = -units
	}
	return units, d.Exponent, true
}

// rescale is u units of 10^from as units of 10^to (to <= from), if it fits.
func rescale(u int64, from, to int32) (int64, bool) {
	if from == to || u == 0 {
		return u, true
	}
	f := pow10[from-to] // both within 0..-maxScale
	r := u * f
	if r/f != u {
		return 0, false
	}
	return r, true
}

func (s *sum) add(m domain.Money) {
	if !s.big {
		if u, e, ok := unitsOf(m); ok {
			exp := min(s.exp, e)
			a, ok1 := rescale(s.units, s.exp, exp)
			b, ok2 := rescale(u, e, exp)
			r := a + b
			if ok1 && ok2 && !(a > 0 && b > 0 && r < 0) && !(a < 0 && b < 0 && r >= 0) {
				s.units, s.exp = r, exp
				return
			}
		}
		s.m, s.big = s.value(), true
	}
	s.m = s.m.Add(m)
}

// value is the sum as Money.
func (s *sum) value() domain.Money {
	if s.big {
		return s.m
	}
	if s.units == 0 && s.exp == 0 {
		return domain.Zero()
	}
	var b [32]byte
	t := strconv.AppendInt(b[:0], s.units, 10)
	neg := t[0] == '-'
	digits := t
	if neg {
		digits = t[1:]
	}
	scale := int(-s.exp)
	out := make([]byte, 0, 24)
	if neg {
		out = append(out, '-')
	}
	if len(digits) <= scale {
		out = append(out, "0."...)
		for range scale - len(digits) {
			out = append(out, '0')
		}
		out = append(out, digits...)
	} else {
		out = append(out, digits[:len(digits)-scale]...)
		if scale > 0 {
			out = append(out, '.')
			out = append(out, digits[len(digits)-scale:]...)
		}
	}
	return domain.MustMoney(string(out))
}

// sign is the sum's sign: -1, 0 or +1.
func (s *sum) sign() int {
	switch {
	case s.big:
		return s.m.Sign()
	case s.units < 0:
		return -1
	case s.units > 0:
		return 1
	}
	return 0
}
