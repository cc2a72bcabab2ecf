// Package sandbox simulates the outside world for the embedded default: a
// movable clock, a cloud provider and a crypto payment processor. They sit
// behind the same ports the real adapters implement, and they behave like
// them in the ways that matter to callers: the cloud keeps its own durable
// state, takes time, fails on documented magic labels, and does not dedupe
// creations for you.
package sandbox

import (
	"sync"
	"time"
)

// Clock is wall time plus an offset that only grows, shared by every
// account, plus, for an account that moved its own clock, that account's
// offset, which only grows too (a Stripe test clock per account).
type Clock struct {
	wall     func() time.Time
	mu       sync.RWMutex
	offset   time.Duration
	accounts map[string]time.Duration
}

// NewClock returns a clock offset from wall.
func NewClock(wall func() time.Time, offset time.Duration) *Clock {
	return &Clock{wall: wall, offset: offset}
}

// Now is the shared sandbox time, in UTC, to the millisecond: the time of
// an account that never moved its own clock.
func (c *Clock) Now() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.wall().Add(c.offset).UTC().Truncate(time.Millisecond)
}

// NowFor is the account's sandbox time: wall time plus the shared offset
// plus the account's own.
func (c *Clock) NowFor(accountID string) time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.wall().Add(c.offset + c.accounts[accountID]).UTC().Truncate(time.Millisecond)
}

// Offset is how far the shared clock is ahead of wall time.
func (c *Clock) Offset() time.Duration {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.offset
}

// AccountOffset is how far the account's own clock is ahead of the shared
// one.
func (c *Clock) AccountOffset(accountID string) time.Duration {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.accounts[accountID]
}

// SetAccountOffset moves an account's own clock; a smaller offset than its
// current one is ignored. It reports whether the clock moved.
func (c *Clock) SetAccountOffset(accountID string, d time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d <= c.accounts[accountID] {
		return false
	}
	if c.accounts == nil {
		c.accounts = map[string]time.Duration{}
	}
	c.accounts[accountID] = d
	return true
}

// SetOffset moves the clock; a smaller offset than the current one is ignored
// so sandbox time never runs backwards.
func (c *Clock) SetOffset(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > c.offset {
		c.offset = d
	}
}
