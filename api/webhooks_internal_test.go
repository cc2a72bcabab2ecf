package api

import (
	"fmt"
	"testing"
)

// The deliveries remembered are bounded: the oldest is forgotten first, and
// a key marked twice takes one slot.
func TestDeliveriesForgetTheOldestBeyondTheBound(t *testing.T) {
	d := newDeliveries(3)
	for i := range 3 {
		d.done(fmt.Sprint(i))
		d.done(fmt.Sprint(i))
	}
	for i := range 3 {
		if !d.seen(fmt.Sprint(i)) {
			t.Errorf("delivery %d forgotten within the bound", i)
		}
	}
	d.done("3")
	if d.seen("0") || !d.seen("1") || !d.seen("3") {
		t.Errorf("after a 4th delivery: 0 seen %v, 1 seen %v, 3 seen %v", d.seen("0"), d.seen("1"), d.seen("3"))
	}
	if len(d.keys) != 3 {
		t.Errorf("%d keys kept, want 3", len(d.keys))
	}
}
