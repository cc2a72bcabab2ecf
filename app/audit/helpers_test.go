package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/tests/history"
)

// collector is an eventstore.Store that only takes appends, in memory, so a
// large history can be generated without an fsync per decision and then be
// written to bbolt in a few large appends.
type collector struct {
	eventstore.Store
	streams  map[string]int64
	appended []appended
}

type appended struct {
	stream string
	events []eventstore.Proposed
}

func newCollector() *collector { return &collector{streams: map[string]int64{}} }

func (c *collector) Append(_ context.Context, stream string, expected int64, events []eventstore.Proposed) (eventstore.AppendResult, error) {
	cur, ok := c.streams[stream]
	if !ok {
		cur = -1
	}
	if expected != eventstore.Any && expected != cur {
		return eventstore.AppendResult{}, fmt.Errorf("%w: %s at %d, expected %d", eventstore.ErrWrongVersion, stream, cur, expected)
	}
	cur += int64(len(events))
	c.streams[stream] = cur
	if n := len(c.appended); n > 0 && c.appended[n-1].stream == stream {
		c.appended[n-1].events = append(c.appended[n-1].events, events...)
	} else {
		c.appended = append(c.appended, appended{stream: stream, events: append([]eventstore.Proposed(nil), events...)})
	}
	return eventstore.AppendResult{Version: uint64(cur)}, nil
}

// writeTo appends everything collected to store in log order, merging
// consecutive appends to one stream into one.
func (c *collector) writeTo(ctx context.Context, store eventstore.Store) error {
	for _, a := range c.appended {
		for len(a.events) > 0 {
			n := min(len(a.events), 2000)
			if _, err := store.Append(ctx, a.stream, eventstore.Any, a.events[:n]); err != nil {
				return err
			}
			a.events = a.events[n:]
		}
	}
	return nil
}

// generatedStore is a store holding a realistic history of at least n
// events (tests/history), settled to its end, and how many the history
// made.
func generatedStore(t testing.TB, n int) (*bbolt.Store, int) {
	t.Helper()
	ctx := context.Background()
	c := newCollector()
	n, err := history.Generate(ctx, c, n, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.settleAll(ctx); err != nil {
		t.Fatal(err)
	}
	store := openStore(t, t.TempDir())
	if err := c.writeTo(ctx, store); err != nil {
		t.Fatal(err)
	}
	return store, n
}

func openStore(t testing.TB, dir string) *bbolt.Store {
	t.Helper()
	s, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{Now: func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// settleAll runs the biller once more over every account at the newest
// time of the history. tests/history stops an account when it has produced
// its share of events, so without this the last accounts would rightly be
// found owing hours.
func (c *collector) settleAll(ctx context.Context) error {
	states := map[string]domain.Account{}
	var order []string
	var newest time.Time
	for _, a := range c.appended {
		prefix, id := domain.StreamID(a.stream)
		if prefix != domain.AccountStreamPrefix {
			continue
		}
		st, ok := states[id]
		if !ok {
			st = domain.NewAccount(id)
			order = append(order, id)
		}
		for _, p := range a.events {
			e, err := domain.DecodeEvent(p.Type, p.Data)
			if err != nil {
				return err
			}
			st = domain.Evolve(st, e)
			if t := audit.EventTime(e); t.After(newest) {
				newest = t
			}
		}
		states[id] = st
	}
	for _, id := range order {
		events, err := domain.Decide(states[id], domain.Settle{}, newest)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			continue
		}
		props, err := proposals(events)
		if err != nil {
			return err
		}
		if _, err := c.Append(ctx, domain.AccountStream(id), eventstore.Any, props); err != nil {
			return err
		}
	}
	return nil
}

func proposals(events []domain.Event) ([]eventstore.Proposed, error) {
	out := make([]eventstore.Proposed, len(events))
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		out[i] = eventstore.Proposed{ID: uuid.New(), Type: e.EventType(), Data: data}
	}
	return out, nil
}

func newID() uuid.UUID { return uuid.New() }
