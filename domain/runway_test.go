package domain_test

import (
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

func TestRunwayChargesEachServerHourByHourInTimeOrder(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := domain.Billed{Price: domain.MustMoney("0.010"), Next: t0.Add(10 * time.Minute)}
	b := domain.Billed{Price: domain.MustMoney("0.020"), Next: t0.Add(40 * time.Minute)}
	for _, tc := range []struct {
		name    string
		balance string
		billed  []domain.Billed
		hours   int64
		at      time.Time
		ok      bool
	}{
		{"nothing billed", "5.00", nil, 0, time.Time{}, false},
		{"one server, an exact number of hours", "0.050", []domain.Billed{a}, 5, a.Next.Add(5 * time.Hour), true},
		{"one server, not even one hour", "0.005", []domain.Billed{a}, 0, a.Next, true},
		// 0.100 at 0.030/h: 3 whole hours; a is charged at :10, b at :40, so
		// after three of each 0.010 is left, a's fourth hour is covered and
		// b's is not.
		{"two servers, the second one runs out first", "0.100", []domain.Billed{a, b}, 3, b.Next.Add(3 * time.Hour), true},
		{"two servers, the first one runs out first", "0.090", []domain.Billed{a, b}, 3, a.Next.Add(3 * time.Hour), true},
		{"a year of balance", "87.60", []domain.Billed{a}, 8760, a.Next.Add(8760 * time.Hour), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hours, at, ok := domain.Runway(domain.MustMoney(tc.balance), tc.billed)
			if hours != tc.hours || !at.Equal(tc.at) || ok != tc.ok {
				t.Fatalf("Runway = %d, %s, %v; want %d, %s, %v", hours, at, ok, tc.hours, tc.at, tc.ok)
			}
		})
	}
}
