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

// Clock is wall time plus an offset that only grows.
type Clock struct {
	wall   func() time.Time
	mu     sync.Mutex
	offset time.Duration
}

// NewClock returns a clock offset from wall.
func NewClock(wall func() time.Time, offset time.Duration) *Clock {
	return &Clock{wall: wall, offset: offset}
}

// Now is the sandbox time, in UTC, to the millisecond.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall().Add(c.offset).UTC().Truncate(time.Millisecond)
}

// Offset is how far the clock is ahead of wall time.
func (c *Clock) Offset() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset
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
