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

// An IPv6 client is limited per /64 (what one subscriber usually holds),
// an IPv4 one per address; an IPv4-mapped IPv6 address is its IPv4 one.
func TestClientKey(t *testing.T) {
	for ip, want := range map[string]string{
		"203.0.113.7":                   "ip:203.0.113.7",
		"::ffff:203.0.113.7":            "ip:203.0.113.7",
		"2001:db8:1:2::1":               "ip:2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:ffff:ffff:1": "ip:2001:db8:1:2::/64",
		"2001:db8:1:3::1":               "ip:2001:db8:1:3::/64",
		"fe80::1%eth0":                  "ip:fe80::/64",
		"::1":                           "ip:::/64",
		"not an ip":                     "ip:not an ip",
	} {
		if got := clientKey(ip); got != want {
			t.Errorf("clientKey(%q) = %q, want %q", ip, got, want)
		}
	}
}

// exhausted says, without counting, whether a key has used its window up.
func TestLimiterExhaustedCountsNothing(t *testing.T) {
	c := newSteppedClock()
	l := newLimiter("test", 2, time.Minute, c.now)
	if over, _ := l.exhausted("a"); over {
		t.Fatal("an unknown key is exhausted")
	}
	l.take("a")
	if over, _ := l.exhausted("a"); over {
		t.Fatal("one of two is exhausted")
	}
	l.take("a")
	c.add(15 * time.Second)
	for range 3 {
		if over, reset := l.exhausted("a"); !over || reset != 45*time.Second {
			t.Fatalf("two of two: %v %s", over, reset)
		}
	}
	c.add(45 * time.Second)
	if over, _ := l.exhausted("a"); over {
		t.Fatal("exhausted in a new window")
	}
}
