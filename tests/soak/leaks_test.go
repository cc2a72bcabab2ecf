package soak

import (
	"math/rand/v2"
	"testing"
)

// The leak judges themselves: steady counts pass, counts that level off
// pass, a count growing with every sample fails; memory that the data
// explains passes, memory well above a fresh process's on the same log
// fails.
func TestLeaks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	series := func(fds, threads func(i int) int) []sample {
		var s []sample
		for i := range 60 {
			s = append(s, sample{rssAnon: 20*1024 + rng.Int64N(64*1024), fds: fds(i), threads: threads(i), goroutines: -1})
		}
		return s
	}
	steady := func(int) int { return 19 + rng.IntN(2) }
	if l := leaks(series(steady, steady)); len(l) != 0 {
		t.Errorf("a steady process judged leaking: %v", l)
	}
	settles := func(i int) int { return 10 + min(i, 20) }
	if l := leaks(series(settles, steady)); len(l) != 0 {
		t.Errorf("a process that levels off judged leaking: %v", l)
	}
	grows := func(i int) int { return 20 + i }
	if l := leaks(series(grows, steady)); len(l) != 1 {
		t.Errorf("an fd leak: %v", l)
	}
	if l := leaks(series(steady, grows)); len(l) != 1 {
		t.Errorf("a thread leak: %v", l)
	}
	if l := leaks(series(steady, steady)[:5]); len(l) != 1 {
		t.Errorf("too few samples: %v", l)
	}
	if s := memoryFloor(series(steady, steady)); s < 20*1024 || s > 24*1024 {
		t.Errorf("floor of a noisy heap at 20 MB: %d kB", s)
	}
	if l := memoryLeak(90*1024, 70*1024); l != "" {
		t.Errorf("20 MB over a fresh process of 70 MB: %s", l)
	}
	if l := memoryLeak(200*1024, 70*1024); l == "" {
		t.Error("130 MB over a fresh process of 70 MB passed")
	}
}
