// Package sandbox simulates the outside world for the embedded default: a
// movable clock, a cloud provider and a crypto payment processor. They sit
// behind the same ports the real adapters implement, and they behave like
// them in the ways that matter to callers: the cloud keeps its own durable
// state, takes time, fails on documented magic labels, and does not dedupe
// creations for you.
package sandbox

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock is wall time plus an offset that only grows, shared by every
// account, plus, for an account that moved its own clock, that account's
// offset, which only grows too (a Stripe test clock per account). It is
// read on every request (token expiry), so reading it takes no lock.
type Clock struct {
	wall   func() time.Time
	offset atomic.Int64 // nanoseconds
	// accounts maps an account id to its own offset (*atomic.Int64,
	// nanoseconds): written once per account, read on every request.
	accounts sync.Map
}

// NewClock returns a clock offset from wall.
func NewClock(wall func() time.Time, offset time.Duration) *Clock {
	c := &Clock{wall: wall}
	c.offset.Store(int64(offset))
	return c
}

// Now is the shared sandbox time, in UTC, to the millisecond: the time of
// an account that never moved its own clock.
func (c *Clock) Now() time.Time {
	return c.wall().Add(time.Duration(c.offset.Load())).UTC().Truncate(time.Millisecond)
}

// NowFor is the account's sandbox time: wall time plus the shared offset
// plus the account's own.
func (c *Clock) NowFor(accountID string) time.Time {
	return c.wall().Add(time.Duration(c.offset.Load()) + c.AccountOffset(accountID)).UTC().Truncate(time.Millisecond)
}

// Offset is how far the shared clock is ahead of wall time.
func (c *Clock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// AccountOffset is how far the account's own clock is ahead of the shared
// one.
func (c *Clock) AccountOffset(accountID string) time.Duration {
	if v, ok := c.accounts.Load(accountID); ok {
		return time.Duration(v.(*atomic.Int64).Load())
	}
	return 0
}

// SetOffset moves the clock; a smaller offset than the current one is ignored
// so sandbox time never runs backwards.
func (c *Clock) SetOffset(d time.Duration) {
	grow(&c.offset, d)
}

// SetAccountOffset moves an account's own clock; a smaller offset than its
// current one is ignored. It reports whether the clock moved.
func (c *Clock) SetAccountOffset(accountID string, d time.Duration) bool {
	v, ok := c.accounts.Load(accountID)
	if !ok {
		if d <= 0 {
			return false
		}
		v, _ = c.accounts.LoadOrStore(accountID, new(atomic.Int64))
	}
	return grow(v.(*atomic.Int64), d)
}

// grow raises v to d, never lowers it, and reports whether it rose.
func grow(v *atomic.Int64, d time.Duration) bool {
	for {
		cur := v.Load()
		if int64(d) <= cur {
			return false
		}
		if v.CompareAndSwap(cur, int64(d)) {
			return true
		}
	}
}
