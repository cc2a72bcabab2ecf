package sandbox_test

import (
	"sync"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// Each account's clock is the shared one plus its own offset; neither ever
// goes back, and one account's move is no other's.
func TestAnAccountsClockMovesAloneAndNeverBack(t *testing.T) {
	t.Parallel()
	wall := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := sandbox.NewClock(func() time.Time { return wall }, time.Minute)
	if !c.SetAccountOffset("a", time.Hour) || c.SetAccountOffset("a", 30*time.Minute) {
		t.Fatal("an account's clock went back, or did not move")
	}
	c.SetOffset(2 * time.Minute)
	if got := c.NowFor("a"); !got.Equal(wall.Add(time.Hour + 2*time.Minute)) {
		t.Errorf("a's time %s", got)
	}
	if got := c.NowFor("b"); !got.Equal(wall.Add(2*time.Minute)) || !got.Equal(c.Now()) {
		t.Errorf("b's time %s moved with a's", got)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { c.SetAccountOffset("b", time.Duration(i)*time.Second) })
	}
	wg.Wait()
	if got := c.AccountOffset("b"); got != 7*time.Second {
		t.Errorf("b's offset after concurrent moves: %s, want the largest", got)
	}
}
