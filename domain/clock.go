package domain

import (
	"fmt"
	"maps"
	"time"
)

// ClockAdvanced moves the sandbox clock every account shares forward (the
// operator's move); its stream is replayed at start so a restart never
// moves sandbox time backwards.
type ClockAdvanced struct {
	Seconds int64 `json:"seconds"`
	// Offset is the total offset from wall time after this advance.
	Offset int64     `json:"offsetSeconds"`
	At     time.Time `json:"at"`
}

// AccountClockAdvanced moves one account's own sandbox clock forward (POST
// /sandbox/clock/advance): that account's billing, provisioning, backups
// and tokens see the move, no other account's. It is kept in the sandbox
// clock stream beside ClockAdvanced, so that one stream, read at start and
// followed, tells every process every account's time.
type AccountClockAdvanced struct {
	AccountID string `json:"accountId"`
	Seconds   int64  `json:"seconds"`
	// Offset is the account's own offset (on top of the shared one) after
	// this advance.
	Offset int64 `json:"offsetSeconds"`
	// At is the account's time when it moved (before the move).
	At time.Time `json:"at"`
}

// MaxAdvance bounds one clock advance, so one call cannot ask for years of
// hourly charges at once.
const MaxAdvance = 31 * 24 * time.Hour

// MaxAdvanceCharges bounds the hourly charges one account's clock move may
// make due: with MaxAdvance it bounds the events one request appends (a
// charge is one event; suspensions, lifecycle steps and backup expiries
// add at most a few per server and backup). A move past it is refused:
// the agent moves in smaller steps.
const MaxAdvanceCharges = 1000

// SandboxClock is the state of the sandbox clock stream: how far sandbox
// time is ahead of wall time, for every account and for each account that
// moved its own clock.
type SandboxClock struct {
	// Offset is the shared offset in whole seconds; it only grows.
	Offset int64
	// Accounts are the accounts' own offsets in whole seconds, on top of
	// Offset; they only grow.
	Accounts map[string]int64
}

// OffsetDuration is the shared offset as a duration.
func (c SandboxClock) OffsetDuration() time.Duration { return time.Duration(c.Offset) * time.Second }

// AccountOffset is an account's own offset as a duration.
func (c SandboxClock) AccountOffset(accountID string) time.Duration {
	return time.Duration(c.Accounts[accountID]) * time.Second
}

// Clone copies the clock deeply (its map).
func (c SandboxClock) Clone() SandboxClock {
	c.Accounts = maps.Clone(c.Accounts)
	return c
}

// AdvanceClock moves the sandbox clock forward by Seconds: the shared
// clock, or with AccountID only that account's.
type AdvanceClock struct {
	Seconds   int64
	AccountID string
}

// CheckAdvance checks the seconds of a clock move: 1 second to MaxAdvance.
func CheckAdvance(seconds int64) error {
	// Compare in seconds: seconds*time.Second overflows for huge values and
	// could wrap into the allowed range.
	if seconds < 1 || seconds > int64(MaxAdvance/time.Second) {
		return InvalidField("seconds", fmt.Sprintf("must be between 1 and %d", int64(MaxAdvance/time.Second)))
	}
	return nil
}

// DecideClock decides a clock advance: 1 second to MaxAdvance, added to the
// offset the stream last recorded, so two advances at once add up. now is
// the time of the clock that moves (the account's for an account's move).
func DecideClock(c SandboxClock, cmd AdvanceClock, now time.Time) ([]Event, error) {
	if err := CheckAdvance(cmd.Seconds); err != nil {
		return nil, err
	}
	if cmd.AccountID != "" {
		return []Event{AccountClockAdvanced{AccountID: cmd.AccountID, Seconds: cmd.Seconds,
			Offset: c.Accounts[cmd.AccountID] + cmd.Seconds, At: now}}, nil
	}
	return []Event{ClockAdvanced{Seconds: cmd.Seconds, Offset: c.Offset + cmd.Seconds, At: now}}, nil
}

// EvolveClock folds a clock event into the clock. It updates the map in
// place: callers that keep a state clone it first.
func EvolveClock(c SandboxClock, e Event) SandboxClock {
	switch a := e.(type) {
	case ClockAdvanced:
		c.Offset = max(c.Offset, a.Offset)
	case AccountClockAdvanced:
		if c.Accounts == nil {
			c.Accounts = map[string]int64{}
		}
		c.Accounts[a.AccountID] = max(c.Accounts[a.AccountID], a.Offset)
	}
	return c
}

// ChargesDue counts the hourly charges settling the account at now would
// make: every billable server's hours begun by then and not charged yet.
// It is what a clock move to now would bill at once.
func (a Account) ChargesDue(now time.Time) int {
	n := 0
	for _, id := range a.ServerOrder {
		s := a.Servers[id]
		if s.Billable() && !s.BilledUntil.After(now) {
			n += int(now.Sub(s.BilledUntil)/time.Hour) + 1
		}
	}
	return n
}

// ErrAdvanceTooLarge is an account's clock move that would bill more than
// MaxAdvanceCharges hours at once.
func ErrAdvanceTooLarge(charges int, maxSeconds int64) error {
	msg := fmt.Sprintf("this move would charge %d server-hours at once, more than %d: move in smaller steps", charges, MaxAdvanceCharges)
	if maxSeconds >= 1 {
		msg += fmt.Sprintf(" (at most %d seconds now)", maxSeconds)
	}
	return InvalidField("seconds", msg)
}

// MaxAdvanceSeconds is the longest move of the account's clock, from now,
// that stays within MaxAdvanceCharges (and MaxAdvance); 0 if even a second
// would not.
func (a Account) MaxAdvanceSeconds(now time.Time) int64 {
	lo, hi := int64(0), int64(MaxAdvance/time.Second)
	if a.ChargesDue(now.Add(time.Duration(hi)*time.Second)) <= MaxAdvanceCharges {
		return hi
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if a.ChargesDue(now.Add(time.Duration(mid)*time.Second)) <= MaxAdvanceCharges {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// AccountClock is a Clock that also tells each account's time: in the
// sandbox an account can move its own clock (AccountClockAdvanced) on top
// of the one every account shares. Production clocks need not implement
// it: every account's time is then the clock's (AccountNow).
type AccountClock interface {
	Clock
	// NowFor is the account's time.
	NowFor(accountID string) time.Time
}

// AccountNow is the account's time by c: its own if c keeps one per
// account, else c's.
func AccountNow(c Clock, accountID string) time.Time {
	if ac, ok := c.(AccountClock); ok && accountID != "" {
		return ac.NowFor(accountID)
	}
	return c.Now()
}
