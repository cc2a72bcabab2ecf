package domain

import "testing"

// AmountFor's shortcut for one posting gives exactly the sum it stands for.
func TestAmountForOnePostingIsTheSum(t *testing.T) {
	var amounts []Money
	for _, s := range []string{"0.014", "-0.014", "10000.00", "-10000.00", "0", "-0", "-0.00", "0.000", "5", ".5", "-.5",
		"123456789012345678.123456789012", "-0.00000000000000000000000000001", "99999999999999999999999999999999"} {
		m := MustMoney(s)
		amounts = append(amounts, m, m.Neg(), m.Times(3), m.Add(MustMoney("0.001")))
	}
	monthly := MustMoney("5.00")
	amounts = append(amounts, monthly.Neg().Round(3))
	for _, a := range amounts {
		tx := LedgerPosted{Postings: []Posting{{Account: "x", Amount: a}, {Account: "y", Amount: a.Neg()}}}
		got := tx.AmountFor("x")
		c := LedgerPosted{Postings: []Posting{{Account: "customer:x", Amount: a}, {Account: "customer:xy", Amount: a},
			{Account: "customer", Amount: a}, {Account: "y", Amount: a.Neg()}}}
		if cg, ca := c.CustomerAmount("x"), c.AmountFor(CustomerLedger("x")); cg.String() != ca.String() || cg.Exponent() != ca.Exponent() {
			t.Errorf("CustomerAmount %s, AmountFor %s", cg, ca)
		}
		want := Zero().Add(a)
		// (apd may keep a large coefficient in another internal form;
		// what can be observed of it must be the same.)
		if got.String() != want.String() || got.Exponent() != want.Exponent() || got.Cmp(want) != 0 ||
			got.Sign() != want.Sign() || got.Decimal().Negative != want.Decimal().Negative {
			t.Errorf("AmountFor of one posting of %s: %#v (%s), the sum is %#v (%s)", a, got, got, want, want)
		}
	}
}

func TestHashOKIsComputeHash(t *testing.T) {
	tx := goldenTx()
	tx.Hash = tx.ComputeHash()
	if !tx.HashOK() {
		t.Error("the computed hash is not OK")
	}
	for _, h := range []string{"", tx.Hash[:63], tx.Hash + "0", "47a30a5917181c95ec3558274fcf31d5683cb9b140effcbabd72618fe821ea68"} {
		tx.Hash = h
		if tx.HashOK() {
			t.Errorf("hash %q passed", h)
		}
	}
}
