package domain_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/domain"
)

func TestDefaultCatalogHasExactlyFivePlansAndTwentyNineRegions(t *testing.T) {
	t.Parallel()
	c := domain.DefaultCatalog()
	if len(c.Plans) != 5 {
		t.Fatalf("%d plans, want 5", len(c.Plans))
	}
	if len(c.Regions) != 29 {
		t.Fatalf("%d regions, want 29", len(c.Regions))
	}
	seen := map[string]bool{}
	for _, r := range c.Regions {
		if seen[r.ID] || r.ID == "" || r.City == "" || r.Country == "" || r.Continent == "" {
			t.Errorf("region %+v is duplicated or incomplete", r)
		}
		seen[r.ID] = true
		if got, ok := c.Region(r.ID); !ok || got != r {
			t.Errorf("Region(%q) = %+v, %v", r.ID, got, ok)
		}
	}
	for _, p := range c.Plans {
		if seen[p.ID] || p.VCPUs <= 0 || p.RAMGB <= 0 || p.DiskGB <= 0 {
			t.Errorf("plan %+v is duplicated or incomplete", p)
		}
		seen[p.ID] = true
	}
	if _, ok := c.Plan("vc2-99c-1tb"); ok {
		t.Error("an unknown plan was found")
	}
	if _, ok := c.Region("atlantis"); ok {
		t.Error("an unknown region was found")
	}
}

func TestPlanHourlyPriceIsMonthlyOver730RoundedHalfUpToThreeDecimals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ plan, monthly, hourly string }{
		{"vc2-1c-1gb", "10.00", "0.014"},
		{"vc2-1c-2gb", "18.00", "0.025"},
		{"vc2-2c-4gb", "34.00", "0.047"},
		{"vc2-4c-8gb", "62.00", "0.085"},
		{"vc2-6c-16gb", "120.00", "0.164"},
	} {
		t.Run(tc.plan, func(t *testing.T) {
			t.Parallel()
			p := plan(t, tc.plan)
			wantEqual(t, "monthly", p.MonthlyPrice.Fixed(2), tc.monthly)
			wantEqual(t, "hourly", p.HourlyPrice.String(), tc.hourly)
			wantEqual(t, "HourlyPrice(monthly)", domain.HourlyPrice(money(tc.monthly)).String(), tc.hourly)
		})
	}
}

func TestHourlyPriceRoundsHalfUpNotHalfEven(t *testing.T) {
	t.Parallel()
	// 0.365 / 730 is exactly 0.0005: half-up gives 0.001, half-even 0.000.
	wantEqual(t, "HourlyPrice(0.365)", domain.HourlyPrice(money("0.365")).String(), "0.001")
	wantEqual(t, "HourlyPrice(0.3649)", domain.HourlyPrice(money("0.3649")).String(), "0.000")
}

func TestParseMoneyKeepsTheWrittenScale(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, str, fixed2 string }{
		{"10.00", "10.00", "10.00"},
		{"10", "10", "10.00"},
		{"9.986", "9.986", "9.986"},
		{"0.014", "0.014", "0.014"},
		{"0.5", "0.5", "0.50"},
		{"-3.5", "-3.5", "-3.50"},
		{"0", "0", "0.00"},
	} {
		m, err := domain.ParseMoney(tc.in)
		if err != nil {
			t.Fatalf("ParseMoney(%q): %v", tc.in, err)
		}
		wantEqual(t, "String of "+tc.in, m.String(), tc.str)
		wantEqual(t, "Fixed(2) of "+tc.in, m.Fixed(2), tc.fixed2)
	}
}

func TestParseMoneyRejectsAnythingButAPlainDecimal(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"1e3", "1E3", "1e-2", "NaN", "nan", "Inf", "Infinity", "-Infinity", "", "abc",
		"1.2.3", "--1", "-", ".", "+1", " 1", "1 ", "1,00", "0x10", "$1", "1_000",
		strings.Repeat("1", 33),
	} {
		if m, err := domain.ParseMoney(in); err == nil {
			t.Errorf("ParseMoney(%q) = %s, want an error", in, m)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustMoney(\"1e3\") did not panic")
		}
	}()
	domain.MustMoney("1e3")
}

func TestMoneyArithmeticIsExactDecimal(t *testing.T) {
	t.Parallel()
	wantEqual(t, "0.1+0.2", money("0.1").Add(money("0.2")).Cmp(money("0.3")), 0)
	wantEqual(t, "10.00-0.014", money("10.00").Sub(money("0.014")).String(), "9.986")
	wantEqual(t, "-(0.014)", money("0.014").Neg().String(), "-0.014")
	wantEqual(t, "0.014*730", money("0.014").Times(730).String(), "10.220")
	wantEqual(t, "Round(2) of 0.125", money("0.125").Round(2).String(), "0.13")
	wantEqual(t, "Round(2) of -0.125", money("-0.125").Round(2).String(), "-0.13")
	wantEqual(t, "Zero", domain.Zero().String(), "0")
	wantEqual(t, "Zero sign", domain.Zero().Sign(), 0)
	wantEqual(t, "sign of -1", money("-1").Sign(), -1)
	wantEqual(t, "1 vs 1.000", money("1").Cmp(money("1.000")), 0)
	wantEqual(t, "exponent of 10.00", money("10.00").Exponent(), int32(-2))
	// Values are immutable: arithmetic leaves its operands alone.
	a := money("1.50")
	_ = a.Add(money("1")).Sub(money("7")).Neg()
	wantEqual(t, "operand after arithmetic", a.String(), "1.50")
	d := a.Decimal()
	d.SetInt64(99)
	wantEqual(t, "operand after changing its Decimal copy", a.String(), "1.50")
}

func TestMoneyJSONRoundTripsAsAPlainDecimalString(t *testing.T) {
	t.Parallel()
	type doc struct {
		Amount domain.Money `json:"amount"`
	}
	for _, in := range []string{"10.00", "0.014", "-0.042", "10000", "0"} {
		b, err := json.Marshal(doc{money(in)})
		if err != nil {
			t.Fatal(err)
		}
		wantEqual(t, "JSON", string(b), `{"amount":"`+in+`"}`)
		var back doc
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		wantEqual(t, "round trip", back.Amount.String(), in)
	}
	for _, bad := range []string{`{"amount":"1e3"}`, `{"amount":"NaN"}`, `{"amount":""}`, `{"amount":"abc"}`} {
		var back doc
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("unmarshal %s = %s, want an error", bad, back.Amount)
		}
	}
}
