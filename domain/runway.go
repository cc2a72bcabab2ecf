package domain

import (
	"slices"
	"time"
)

// Billed is one server being billed: its hourly price and when its next hour
// is charged.
type Billed struct {
	Price Money
	Next  time.Time
}

// Billed lists the account's servers being billed now.
func (a Account) Billed() []Billed {
	var out []Billed
	for _, id := range a.ServerOrder {
		if s := a.Servers[id]; s.Billable() {
			out = append(out, Billed{Price: s.HourlyPrice, Next: s.BilledUntil})
		}
	}
	return out
}

// Runway says how long balance lasts at the current spend: the whole hours
// it covers (balance / hourly spend), and the instant the first server would
// be suspended, found by charging each server hour after hour in time order
// as the biller does. ok is false when nothing is billed.
func Runway(balance Money, billed []Billed) (hoursLeft int64, suspendsAt time.Time, ok bool) {
	spend := Zero()
	for _, b := range billed {
		spend = spend.Add(b.Price)
	}
	if len(billed) == 0 || spend.Sign() <= 0 {
		return 0, time.Time{}, false
	}
	hoursLeft = wholeTimes(balance, spend)
	// Every full hour charges each server once: skip all but the last of
	// the hours the balance surely covers, then charge one by one.
	skip := max(hoursLeft-1, 0)
	left := balance.Sub(spend.Times(int(skip)))
	next := make([]Billed, len(billed))
	for i, b := range billed {
		next[i] = Billed{Price: b.Price, Next: b.Next.Add(time.Duration(skip) * time.Hour)}
	}
	for {
		i := slices.IndexFunc(next, func(b Billed) bool {
			return !slices.ContainsFunc(next, func(o Billed) bool { return o.Next.Before(b.Next) })
		})
		if left.Cmp(next[i].Price) < 0 {
			return hoursLeft, next[i].Next, true
		}
		left = left.Sub(next[i].Price)
		next[i].Next = next[i].Next.Add(time.Hour)
	}
}

// wholeTimes is how many whole times d fits in n (both positive).
func wholeTimes(n, d Money) int64 {
	var q Money
	if _, err := decimalContext().QuoInteger(&q.d, &n.d, &d.d); err != nil {
		return 0
	}
	v, err := q.d.Int64()
	if err != nil {
		return 0
	}
	return v
}
