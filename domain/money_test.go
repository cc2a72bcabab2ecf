package domain_test

import (
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/domain"
)

func TestCanonicalIsTheOneRenderingOfMoney(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"0": "0.00", "0.000": "0.00", "10": "10.00", "10.000": "10.00", "9.986": "9.986", "0.160": "0.16",
		"0.140": "0.14", "0.014": "0.014", "-0.014": "-0.014", "-0.010": "-0.01", "25.5": "25.50", "1.23450": "1.2345",
		"10000.00": "10000.00",
	} {
		if got := money(in).Canonical(); got != want {
			t.Errorf("Canonical(%s) = %q, want %q", in, got, want)
		}
	}
	// Sums render like the amounts they equal.
	if a, b := money("0.08").Add(money("0.08")).Canonical(), money("0.16").Canonical(); a != b {
		t.Errorf("0.08+0.08 reads %q, 0.16 reads %q", a, b)
	}
}

func TestThe402SaysEveryAmountTheCanonicalWay(t *testing.T) {
	t.Parallel()
	s := registered(t, "0.08")
	// Five servers at 0.014: a spend of 0.070, and 0.010 left.
	var specs []domain.ServerSpec
	for i := range 5 {
		specs = append(specs, serverSpec(string(rune('a'+i)), micro))
	}
	s.then(domain.Deploy{Servers: specs}, t0)
	err := s.rejects(deploy("k"), t0)
	wantErr(t, err, domain.ErrInsufficientFunds)
	for _, want := range []string{"balance 0.01 ", "0.014 for the new ones", "0.07 for those already billed", "0.074 missing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("402 %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "0.070") || strings.Contains(err.Error(), "0.010") {
		t.Errorf("402 %q renders money with trailing zeros", err)
	}
}
