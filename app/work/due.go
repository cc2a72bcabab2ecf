package work

import (
	"container/heap"
	"math"
	"sync"
	"time"
)

// dueIndex says when each account (or backup) has background work next,
// so that a pass looks only at what is due instead of reading every live
// account: a min-heap of instants on the shared clock (an account's own
// time less its own clock offset), fed by the log (Follow: any event of
// the stream makes it due at once) and by the work itself (the instant
// the state it left says is next). An item keeps nothing of the state but
// that instant and the stream versions that decide whether an event is
// news.
type dueIndex struct {
	mu    sync.Mutex
	items dueHeap
	byID  map[string]*dueItem
}

type dueItem struct {
	id string
	// owner is the account whose clock a backup lives on ("" for an
	// account, or a backup not worked yet).
	owner string
	// at is when the item is due next; the zero time is at once.
	at time.Time
	// worked is the stream version the work last left the item at: an
	// event at or before it is not news.
	worked int64
	// busy is set while a pass works the item; pending is the latest
	// version the log showed meanwhile (math.MaxInt64 for a clock move).
	busy    bool
	pending int64
	i       int
}

func newDueIndex() *dueIndex { return &dueIndex{byID: map[string]*dueItem{}} }

// len is how many items the index holds.
func (x *dueIndex) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.items)
}

func (x *dueIndex) item(id string) *dueItem {
	it, ok := x.byID[id]
	if !ok {
		it = &dueItem{id: id, worked: math.MinInt64, pending: math.MinInt64}
		x.byID[id] = it
		heap.Push(&x.items, it)
	}
	return it
}

// add makes id due at once (the index starts with every item the read
// model says may have work).
func (x *dueIndex) add(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	it := x.item(id)
	if !it.busy {
		it.at = time.Time{}
		heap.Fix(&x.items, it.i)
	}
}

// touch records that the log holds an event of id's stream at version:
// news (after what the work last saw) makes it due at once.
func (x *dueIndex) touch(id string, version int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if it, ok := x.byID[id]; ok && version <= it.worked {
		return
	}
	it := x.item(id)
	it.pending = max(it.pending, version)
	if !it.busy && !it.at.IsZero() {
		it.at = time.Time{}
		heap.Fix(&x.items, it.i)
	}
}

// wake makes id due at once whatever the versions: its clock moved.
func (x *dueIndex) wake(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.wakeLocked(id)
}

func (x *dueIndex) wakeLocked(id string) {
	it, ok := x.byID[id]
	if !ok {
		return
	}
	if it.busy {
		it.pending = math.MaxInt64
		return
	}
	it.at = time.Time{}
	heap.Fix(&x.items, it.i)
}

// wakeOwned wakes every item living on owner's clock.
func (x *dueIndex) wakeOwned(owner string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for id, it := range x.byID {
		if it.owner == owner {
			x.wakeLocked(id)
		}
	}
}

// take marks every item due by now busy and returns their ids.
func (x *dueIndex) take(now time.Time) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var ids []string
	// The heap is ordered by at; busy items are parked at the end of time
	// so they are not taken twice.
	for len(x.items) > 0 && !x.items[0].at.After(now) {
		it := x.items[0]
		it.busy, it.pending = true, it.worked
		it.at = parked
		heap.Fix(&x.items, 0)
		ids = append(ids, it.id)
	}
	return ids
}

// parked is the at of a busy item: after any real instant.
var parked = time.Unix(1<<62, 0)

// done records the work of a taken item: the stream version its state is
// at, the owner of its clock, and when it is due next (remove: never,
// until an event says otherwise). An event newer than version seen while
// it was worked, or a clock move, makes it due at once instead.
func (x *dueIndex) done(id, owner string, version int64, next time.Time, remove bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	it, ok := x.byID[id]
	if !ok {
		return
	}
	it.busy = false
	it.worked = max(it.worked, version)
	it.owner = owner
	switch {
	case it.pending > it.worked:
		it.at = time.Time{}
	case remove:
		heap.Remove(&x.items, it.i)
		delete(x.byID, id)
		return
	default:
		it.at = next
	}
	heap.Fix(&x.items, it.i)
}

// release gives a taken item back due at once: its work failed or was cut.
func (x *dueIndex) release(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	it, ok := x.byID[id]
	if !ok || !it.busy {
		return
	}
	it.busy, it.at = false, time.Time{}
	heap.Fix(&x.items, it.i)
}

// dueHeap orders items by at.
type dueHeap []*dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].i, h[j].i = i, j
}
func (h *dueHeap) Push(v any) {
	it := v.(*dueItem)
	it.i = len(*h)
	*h = append(*h, it)
}
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return it
}
