package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

func TestAClockMoveOfAnAccountMovesOnlyThatAccountsOffset(t *testing.T) {
	t.Parallel()
	var c domain.SandboxClock
	for _, cmd := range []domain.AdvanceClock{{Seconds: 60, AccountID: "a"}, {Seconds: 30}, {Seconds: 5, AccountID: "a"}, {Seconds: 7, AccountID: "b"}} {
		events, err := domain.DecideClock(c, cmd, t0)
		if err != nil {
			t.Fatal(err)
		}
		before := c.Clone()
		c = domain.EvolveClock(c.Clone(), events[0])
		if cmd.AccountID == "" && before.Accounts["a"] != c.Accounts["a"] {
			t.Errorf("the shared move changed an account's own offset")
		}
	}
	if c.Offset != 30 || c.AccountOffset("a") != 65*time.Second || c.AccountOffset("b") != 7*time.Second || c.AccountOffset("z") != 0 {
		t.Errorf("offsets: shared %d, a %s, b %s", c.Offset, c.AccountOffset("a"), c.AccountOffset("b"))
	}
	// A replayed older move never takes an offset back.
	c = domain.EvolveClock(c, domain.AccountClockAdvanced{AccountID: "a", Seconds: 60, Offset: 60, At: t0})
	if c.AccountOffset("a") != 65*time.Second {
		t.Errorf("an older move took the offset back to %s", c.AccountOffset("a"))
	}
	for _, s := range []int64{0, -1, int64(domain.MaxAdvance/time.Second) + 1} {
		if _, err := domain.DecideClock(c, domain.AdvanceClock{Seconds: s, AccountID: "a"}, t0); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("a move of %d s: %v", s, err)
		}
	}
}

func TestChargesDueBoundsAnAccountsClockMove(t *testing.T) {
	t.Parallel()
	s := registered(t, "100.00")
	var specs []domain.ServerSpec
	for _, id := range []string{"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10"} {
		specs = append(specs, domain.ServerSpec{ID: id, Label: id, Plan: micro, Region: "ams", HourlyPrice: money("0.014")})
	}
	s.then(domain.Deploy{Servers: specs, Bulk: true}, t0)
	a := s.state()
	// The first hour is paid: nothing due until an hour after the deploy.
	if n := a.ChargesDue(at(59 * time.Minute)); n != 0 {
		t.Errorf("charges due within the first hour: %d", n)
	}
	if n := a.ChargesDue(at(time.Hour)); n != 10 {
		t.Errorf("charges due at the second hour: %d, want 10", n)
	}
	if n := a.ChargesDue(at(100*time.Hour + time.Minute)); n != 1000 {
		t.Errorf("charges due 100 hours on: %d, want 1000", n)
	}
	max := a.MaxAdvanceSeconds(t0)
	if a.ChargesDue(t0.Add(time.Duration(max)*time.Second)) > domain.MaxAdvanceCharges ||
		a.ChargesDue(t0.Add(time.Duration(max+1)*time.Second)) <= domain.MaxAdvanceCharges {
		t.Errorf("MaxAdvanceSeconds %d is not the longest move within %d charges", max, domain.MaxAdvanceCharges)
	}
	if max != 101*3600-1 {
		t.Errorf("MaxAdvanceSeconds %d, want %d", max, 101*3600-1)
	}
	if n := domain.NewAccount("empty").ChargesDue(at(1000 * time.Hour)); n != 0 {
		t.Errorf("an account without servers: %d charges due", n)
	}
	if got := domain.NewAccount("empty").MaxAdvanceSeconds(t0); got != int64(domain.MaxAdvance/time.Second) {
		t.Errorf("an account without servers can move %d s, want the whole %d", got, int64(domain.MaxAdvance/time.Second))
	}
	if err := domain.ErrAdvanceTooLarge(1010, max); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("too large a move is not a validation error: %v", err)
	}
}
