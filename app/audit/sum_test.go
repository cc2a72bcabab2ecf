package audit

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/domain"
)

// A sum is Money's addition, to the digit and the exponent, whatever it
// adds: amounts of any scale, signs, zeros, and sums past an int64.
func TestSumIsMoneyAddition(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(17, 3))
	amount := func() string {
		var digits string
		switch r.IntN(6) {
		case 0:
			digits = strconv.FormatUint(r.Uint64(), 10) // up to 20 digits
		case 1:
			digits = "0"
		default:
			digits = strconv.Itoa(r.IntN(100000))
		}
		if dec := r.IntN(22); dec > 0 && r.IntN(3) > 0 {
			for len(digits) <= dec {
				digits = "0" + digits
			}
			digits = digits[:len(digits)-dec] + "." + digits[len(digits)-dec:]
		}
		if r.IntN(2) == 0 {
			digits = "-" + digits
		}
		return digits
	}
	for run := range 3000 {
		var s sum
		want := domain.Zero()
		var terms []string
		for range r.IntN(12) {
			a := amount()
			m, err := domain.ParseMoney(a)
			if err != nil {
				continue
			}
			terms = append(terms, a)
			s.add(m)
			want = want.Add(m)
			got := s.value()
			if got.String() != want.String() || got.Exponent() != want.Exponent() || got.Cmp(want) != 0 || s.sign() != want.Sign() {
				t.Fatalf("run %d: %s: sum %s (exp %d, sign %d), Money %s (exp %d, sign %d)", run, strings.Join(terms, " + "),
					got, got.Exponent(), s.sign(), want, want.Exponent(), want.Sign())
			}
		}
	}
}

func TestSumOverflowsIntoMoney(t *testing.T) {
	t.Parallel()
	var s sum
	big := domain.MustMoney("9223372036854775807")
	s.add(big)
	s.add(domain.MustMoney("1"))
	s.add(domain.MustMoney("0.5"))
	if got := s.value().String(); got != "9223372036854775808.5" {
		t.Fatalf("got %s", got)
	}
	if !s.big {
		t.Fatal("the sum should have moved to Money")
	}
}
