package esdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	kurrent "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/cryptovps/cryptovps/eventstore"
)

// Subscribe implements eventstore.Store with a catch-up subscription to $all
// that leaves system events out on the server. A subscription that drops
// (KurrentDB restarting, a leader change, a network cut) is resubscribed from
// the last delivered position, with backoff, so fn sees every event once and
// in order. It returns ErrClosed when the store is closed.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, fn func([]eventstore.Event) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.base, cancel)
	defer stop()

	last := from
	backoff := s.opts.RetryMin
	failures := 0 // in a row, to keep an outage from flooding the log
	for {
		started := time.Now()
		delivered, err := s.subscribeOnce(sctx, &last, fn)
		var cbErr callbackError
		if errors.As(err, &cbErr) {
			return cbErr.err
		}
		if s.isClosed() {
			return eventstore.ErrClosed
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if delivered || time.Since(started) > s.opts.RetryMax {
			backoff, failures = s.opts.RetryMin, 0
		}
		lvl := slog.LevelDebug
		if failures%20 == 0 {
			lvl = slog.LevelWarn
		}
		failures++
		s.log.Log(ctx, lvl, "eventstore/esdb: subscription to $all dropped; resubscribing",
			"after", last.String(), "err", err, "retry_in", backoff, "failures_in_a_row", failures)
		select {
		case <-sctx.Done():
			continue // reported at the top of the loop
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, s.opts.RetryMax)
	}
}

// callbackError carries fn's error out of subscribeOnce untouched.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// item is what the reading goroutine hands over: an event, or the end.
type item struct {
	event *eventstore.Event
	end   error
}

// subscribeOnce runs one subscription until it drops, ctx ends or fn fails.
// It reports whether it delivered anything.
func (s *Store) subscribeOnce(ctx context.Context, last *eventstore.Position, fn func([]eventstore.Event) error) (bool, error) {
	c, err := s.use()
	if err != nil {
		return false, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make(chan item, s.opts.BatchSize)
	go func() {
		defer c.users.Done()
		s.pump(rctx, c, *last, items)
	}()

	delivered := false
	for {
		var it item
		select {
		case it = <-items:
		case <-ctx.Done():
			return delivered, ctx.Err()
		}
		if it.event == nil {
			return delivered, s.classifyErr(ctx, c, "subscribe to $all", it.end, false)
		}
		// Whatever else has already arrived rides along in the same batch.
		batch := []eventstore.Event{*it.event}
		var end error
	more:
		for len(batch) < s.opts.BatchSize {
			select {
			case next := <-items:
				if next.event == nil {
					end = next.end
					break more
				}
				batch = append(batch, *next.event)
			default:
				break more
			}
		}
		if err := fn(batch); err != nil {
			return delivered, callbackError{err}
		}
		delivered = true
		*last = batch[len(batch)-1].Position
		if end != nil {
			return delivered, s.classifyErr(ctx, c, "subscribe to $all", end, false)
		}
	}
}

// pump reads one subscription into items until it ends, and always ends
// with an item whose end is set (unless ctx ended first).
func (s *Store) pump(ctx context.Context, c *conn, after eventstore.Position, items chan<- item) {
	send := func(it item) bool {
		select {
		case items <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var from kurrent.AllPosition = kurrent.Start{}
	if !after.IsZero() {
		from = kurrent.Position{Commit: after.Commit, Prepare: after.Prepare}
	}
	sub, err := c.client.SubscribeToAll(ctx, kurrent.SubscribeToAllOptions{From: from, Filter: kurrent.ExcludeSystemEventsFilter()})
	if err != nil {
		send(item{end: err})
		return
	}
	defer sub.Close()
	for {
		ev := sub.Recv()
		switch {
		case ev.EventAppeared != nil:
			r := ev.EventAppeared.OriginalEvent()
			if r == nil || isSystem(r) {
				continue
			}
			e := toEvent(r)
			// Start positions are exclusive, and a resubscription must never
			// hand over an event twice.
			if !after.Less(e.Position) {
				continue
			}
			after = e.Position
			if !send(item{event: &e}) {
				return
			}
		case ev.SubscriptionDropped != nil:
			err := ev.SubscriptionDropped.Error
			if err == nil {
				err = errors.New("dropped by the server")
			}
			send(item{end: err})
			return
		case ev.CheckPointReached != nil:
			// The server has looked at $all up to here; nothing to deliver.
			s.log.Debug("eventstore/esdb: subscription checkpoint", "position",
				fmt.Sprintf("%d/%d", ev.CheckPointReached.Commit, ev.CheckPointReached.Prepare))
		case ev.CaughtUp != nil:
			s.log.Debug("eventstore/esdb: subscription caught up; now live", "after", after.String())
		case ev.FellBehind != nil:
			s.log.Debug("eventstore/esdb: subscription fell behind; catching up", "after", after.String())
		}
	}
}
