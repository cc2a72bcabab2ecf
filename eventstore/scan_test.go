package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
)

func scanStore(t *testing.T, n int) *bbolt.Store {
	t.Helper()
	s, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for i := 0; i < n; i += 100 {
		var evs []eventstore.Proposed
		for j := i; j < min(i+100, n); j++ {
			evs = append(evs, eventstore.Proposed{ID: uuid.New(), Type: "N", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, j))})
		}
		if _, err := s.Append(context.Background(), fmt.Sprint("s", i%7), eventstore.Any, evs); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// Pages are prepared on several goroutines and consumed in log order, each
// with its own prepared value, up to the head asked for.
func TestScanKeepsOrder(t *testing.T) {
	s := scanStore(t, 3000)
	for _, o := range []eventstore.ScanOptions{
		{Page: 7, Workers: 4},
		{Page: 1000, Workers: 1},
		{From: eventstore.Position{Commit: 100, Prepare: 100}, Head: eventstore.Position{Commit: 2500, Prepare: 2500}, Page: 64, Workers: 3},
	} {
		var next uint64 = o.From.Commit + 1
		var busy atomic.Int32
		err := eventstore.Scan(context.Background(), s, o, func(page []eventstore.Event) ([]int, error) {
			busy.Add(1)
			defer busy.Add(-1)
			ns := make([]int, len(page))
			for i := range page {
				var v struct{ N int }
				if err := page[i].Decode(&v); err != nil {
					return nil, err
				}
				ns[i] = v.N
			}
			return ns, nil
		}, func(page []eventstore.Event, ns []int) error {
			for i, ev := range page {
				if ev.Position.Commit != next || ns[i] != int(next-1) {
					return fmt.Errorf("got event %d (n %d), want %d", ev.Position.Commit, ns[i], next)
				}
				next++
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		want := uint64(3000)
		if !o.Head.IsZero() {
			want = o.Head.Commit
		}
		if next-1 != want {
			t.Errorf("%+v: scanned up to %d, want %d", o, next-1, want)
		}
	}
}

// An error of prepare or consume, or the caller's cancellation, stops the
// scan and is what it returns; nothing is consumed after it.
func TestScanStops(t *testing.T) {
	s := scanStore(t, 2000)
	boom := errors.New("boom")
	for name, tc := range map[string]struct {
		prepareFails, consumeFails, cancel bool
	}{"prepare": {prepareFails: true}, "consume": {consumeFails: true}, "cancel": {cancel: true}} {
		ctx, cancel := context.WithCancel(context.Background())
		consumed := 0
		err := eventstore.Scan(ctx, s, eventstore.ScanOptions{Page: 50, Workers: 3}, func(page []eventstore.Event) (int, error) {
			if tc.prepareFails && page[0].Position.Commit > 500 {
				return 0, boom
			}
			return len(page), nil
		}, func(page []eventstore.Event, n int) error {
			consumed += n
			if consumed >= 1000 {
				if tc.consumeFails {
					return boom
				}
				if tc.cancel {
					cancel()
				}
			}
			return nil
		})
		cancel()
		want := boom
		if tc.cancel {
			want = context.Canceled
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
		if consumed > 1000 || (tc.prepareFails && consumed > 500) {
			t.Errorf("%s: consumed %d events after the stop", name, consumed)
		}
	}
}
