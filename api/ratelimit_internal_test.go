package api

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type steppedClock struct{ ns atomic.Int64 }

func (c *steppedClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *steppedClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newSteppedClock() *steppedClock {
	c := &steppedClock{}
	c.ns.Store(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func TestLimiterCountsAFixedWindowPerKey(t *testing.T) {
	c := newSteppedClock()
	l := newLimiter("test", 3, time.Minute, c.now)
	for i := range 3 {
		ok, remaining, reset := l.take("a")
		if !ok || remaining != 2-i || reset != time.Minute {
			t.Fatalf("take %d: %v %d %s", i, ok, remaining, reset)
		}
	}
	c.add(20 * time.Second)
	if ok, remaining, reset := l.take("a"); ok || remaining != 0 || reset != 40*time.Second {
		t.Fatalf("over the limit: %v %d %s", ok, remaining, reset)
	}
	if ok, _, _ := l.take("b"); !ok {
		t.Fatal("another key shares the count")
	}
	c.add(40 * time.Second)
	if ok, remaining, reset := l.take("a"); !ok || remaining != 2 || reset != time.Minute {
		t.Fatalf("a new window: %v %d %s", ok, remaining, reset)
	}
}

// TestLimiterAllowsExactlyTheLimitUnderContentionAndSweeps: many takes of one
// key at once get exactly the limit through, across windows whose words the
// sweep takes out meanwhile.
func TestLimiterAllowsExactlyTheLimitUnderContentionAndSweeps(t *testing.T) {
	c := newSteppedClock()
	l := newLimiter("test", 50, time.Minute, c.now)
	for round := range 5 {
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 40 {
					key := "hot"
					if i%4 == 0 {
						key = "cold" + string(rune('a'+g))
					}
					if ok, _, _ := l.take(key); ok && key == "hot" {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := allowed.Load(); n != 50 {
			t.Fatalf("round %d: %d allowed, want 50", round, n)
		}
		c.add(time.Minute) // the next take sweeps every ended window
	}
	n := 0
	l.windows.Range(func(any, any) bool { n++; return true })
	if n > 1+8 {
		t.Fatalf("%d windows kept", n)
	}
}
