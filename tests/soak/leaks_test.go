package soak

import (
	"math/rand/v2"
	"testing"
)

// The leak judge itself: a steady process with a noisy heap passes, one
// that grows by a little with every sample fails, and so does one leaking
// file descriptors.
func TestLeaks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	series := func(heap func(i int) int64, fds func(i int) int) []sample {
		var s []sample
		for i := range 60 {
			s = append(s, sample{rssAnon: heap(i) + rng.Int64N(64*1024), fds: fds(i), threads: 10, goroutines: -1})
		}
		return s
	}
	flat := func(int) int64 { return 20 * 1024 }
	if l := leaks(series(flat, func(int) int { return 19 + rng.IntN(2) })); len(l) != 0 {
		t.Errorf("a steady process judged leaking: %v", l)
	}
	// Levels off after the warm-up: fine.
	settles := func(i int) int64 { return 20*1024 + int64(min(i, 10))*8*1024 }
	if l := leaks(series(settles, func(int) int { return 20 })); len(l) != 0 {
		t.Errorf("a process that levels off judged leaking: %v", l)
	}
	grows := func(i int) int64 { return 20*1024 + int64(i)*2*1024 }
	if l := leaks(series(grows, func(int) int { return 20 })); len(l) != 1 {
		t.Errorf("a heap growing 2 MB a sample: %v", l)
	}
	if l := leaks(series(flat, func(i int) int { return 20 + i })); len(l) != 1 {
		t.Errorf("an fd leak: %v", l)
	}
	if l := leaks(series(flat, func(int) int { return 20 })[:5]); len(l) != 1 {
		t.Errorf("too few samples: %v", l)
	}
}
