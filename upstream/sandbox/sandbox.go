// Package sandbox simulates the outside world for the embedded default: a
// movable clock, a cloud provider and a crypto payment processor. They sit
// behind the same ports the real adapters implement, and they behave like
// them in the ways that matter to callers: the cloud keeps its own durable
// state, takes time, fails on documented magic labels, and does not dedupe
// creations for you.
package sandbox

import (
	"sync/atomic"
	"time"
)

// Clock is wall time plus an offset that only grows. It is read on every
// request (token expiry), so reading it takes no lock.
type Clock struct {
	wall   func() time.Time
	offset atomic.Int64 // nanoseconds
}

// NewClock returns a clock offset from wall.
func NewClock(wall func() time.Time, offset time.Duration) *Clock {
	c := &Clock{wall: wall}
	c.offset.Store(int64(offset))
	return c
}

// Now is the sandbox time, in UTC, to the millisecond.
func (c *Clock) Now() time.Time {
	return c.wall().Add(time.Duration(c.offset.Load())).UTC().Truncate(time.Millisecond)
}

// Offset is how far the clock is ahead of wall time.
func (c *Clock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// SetOffset moves the clock; a smaller offset than the current one is ignored
// so sandbox time never runs backwards.
func (c *Clock) SetOffset(d time.Duration) {
	for {
		cur := c.offset.Load()
		if int64(d) <= cur || c.offset.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}
