package api

import (
	"fmt"
	"sync"
	"testing"
)

// TestVerifiedStaysBoundedUnderConcurrentUse: many goroutines putting,
// getting and dropping never push the cache far past its bound, and what
// it answers is what was put under that credential.
func TestVerifiedStaysBoundedUnderConcurrentUse(t *testing.T) {
	v := newVerified(100)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				raw := fmt.Sprintf("token-%d-%d", g, i)
				v.put(raw, session{accountID: raw})
				if s, ok := v.get(raw); ok && s.accountID != raw {
					t.Errorf("%s answered %+v", raw, s)
				}
				if i%3 == 0 {
					v.drop(raw)
				}
			}
		})
	}
	wg.Wait()
	n := 0
	v.m.Range(func(any, any) bool { n++; return true })
	if n > 100+8 || int64(n) != v.n.Load() {
		t.Fatalf("%d entries kept, counted %d; bound 100", n, v.n.Load())
	}
}
