package work

import (
	"slices"
	"testing"
	"time"
)

func TestTheDueIndexGivesWhatIsDueOnceAndNoticesNews(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	x := newDueIndex()
	x.add("a")
	x.add("b")
	x.touch("c", 0) // an account the index did not have: due at once
	if got := x.take(t0); !slices.Equal(sorted(got), []string{"a", "b", "c"}) {
		t.Fatalf("first take: %v", got)
	}
	if got := x.take(t0); len(got) != 0 {
		t.Fatalf("taken items are not taken again while worked: %v", got)
	}
	// a: next due in an hour; b: nothing live; c: its work failed.
	x.done("a", "", 5, t0.Add(time.Hour), false)
	x.done("b", "", 3, time.Time{}, true)
	x.release("c")
	if got := x.take(t0.Add(time.Minute)); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("after the work: %v", got)
	}
	x.done("c", "", 1, t0.Add(2*time.Hour), false)
	if x.len() != 2 {
		t.Fatalf("%d items, want 2 (b has no live server)", x.len())
	}
	// Its own appends (versions it has seen) are no news; another's are.
	x.touch("a", 5)
	if got := x.take(t0.Add(time.Minute)); len(got) != 0 {
		t.Fatalf("an event the work had seen made %v due", got)
	}
	if got := x.take(t0.Add(time.Hour)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("at its hour: %v", got)
	}
	// News while it is worked: the work's next instant does not stand.
	x.touch("a", 7)
	x.done("a", "", 6, t0.Add(2*time.Hour), false)
	if got := x.take(t0.Add(time.Hour)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("an event during the work did not make it due again: %v", got)
	}
	x.done("a", "", 7, t0.Add(2*time.Hour), false)
	// A clock move wakes it (and a backup living on its clock) at once.
	x.done("b", "a", 0, t0.Add(48*time.Hour), false) // b was removed: done does nothing
	x.touch("bk", 0)
	x.take(t0)
	x.done("bk", "a", 0, t0.Add(48*time.Hour), false)
	x.wake("a")
	x.wakeOwned("a")
	if got := x.take(t0.Add(time.Hour)); !slices.Equal(sorted(got), []string{"a", "bk"}) {
		t.Fatalf("after a's clock moved: %v", got)
	}
	// b comes back with the next event of its stream.
	x.touch("b", 4)
	if got := x.take(t0); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("a removed item's news: %v", got)
	}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
