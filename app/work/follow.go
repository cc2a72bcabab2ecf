package work

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// follower is how far Follow has read the log into the due-time index.
type follower struct {
	mu sync.Mutex
	// ready is set once the index was seeded from the read model: from
	// then on a pass may look up the index instead of every live account.
	ready bool
	// fed is the position of the last event the index has seen.
	fed eventstore.Position
	// changed is closed and replaced whenever fed moves.
	changed chan struct{}
}

func (f *follower) feed(pos eventstore.Position) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fed.Less(pos) {
		f.fed = pos
	}
	if f.changed != nil {
		close(f.changed)
	}
	f.changed = make(chan struct{})
}

// wait returns true once the index has seen the log up to pos, false if
// the index is not in use (not seeded, or not fed within timeout: the
// caller then looks at everything).
func (f *follower) wait(ctx context.Context, pos eventstore.Position, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		ready, fed := f.ready, f.fed
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		changed := f.changed
		f.mu.Unlock()
		if !ready {
			return false
		}
		if !fed.Less(pos) {
			return true
		}
		select {
		case <-changed:
		case <-deadline.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// Follow keeps this process's view of the log current from the position
// from (the head as it was before the stack read the sandbox clock stream
// and brought the read model up to the log) until ctx ends:
//
//   - the sandbox clock (clock; nil outside the sandbox) follows every move
//     made through any process sharing the event store, and the background
//     loop is kicked after one, so that a leader does its round at the new
//     time at once;
//   - the due-time index every pass looks up is fed: an event of an
//     account's or a backup's stream makes it due at once, a move of an
//     account's own clock makes it and its backups due at once. The index
//     is first seeded from the read model (caught up to from) with every
//     account that has a live server and every open backup.
//
// A lost subscription is resumed, with backoff, after the last event seen.
//
// With a local projector (Deps.LocalProjector) the events come from it,
// as it applies them (observe), and Follow only seeds the index and waits
// for ctx to end.
func (s *Worker) Follow(ctx context.Context, clock MovableClock, from eventstore.Position) error {
	backoff := 100 * time.Millisecond
	for !s.Seed(ctx, from) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	if s.local {
		<-ctx.Done()
		return ctx.Err()
	}
	backoff = 100 * time.Millisecond
	for {
		err := s.store.Subscribe(ctx, from, func(batch []eventstore.Event) error {
			moved := false
			for _, ev := range batch {
				from = ev.Position
				moved = s.follow(ev, clock) || moved
			}
			s.follower.feed(from)
			backoff = 100 * time.Millisecond
			if moved {
				s.Kick()
			}
			return nil
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, eventstore.ErrClosed) {
			return err
		}
		s.log.Warn("following the log stopped; resuming", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// Seed fills the due-time index from the read model, caught up to from
// (see Follow, which does it first if it was not done): true once done,
// false on a failure (Follow retries).
func (s *Worker) Seed(ctx context.Context, from eventstore.Position) bool {
	s.follower.mu.Lock()
	ready := s.follower.ready
	s.follower.mu.Unlock()
	if ready {
		return true
	}
	err := s.proj.WaitFor(ctx, from, s.cfg.ReadTimeout)
	// Fed by the local projector, the index has seen (or the read model
	// shows) everything the projector applied: from there on it observes.
	if applied := s.proj.Applied(); s.local && from.Less(applied) {
		from = applied
	}
	var accounts, backups []string
	if err == nil {
		accounts, err = s.read.WorkAccounts(ctx)
	}
	if err == nil {
		backups, err = s.read.OpenBackups(ctx)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("background work: could not read what is open from the read model; retrying", "err", err)
		}
		return false
	}
	for _, id := range accounts {
		s.dueAccounts.add(id)
	}
	for _, id := range backups {
		s.dueBackups.add(id)
	}
	s.follower.mu.Lock()
	s.follower.ready = true
	if s.follower.fed.Less(from) {
		s.follower.fed = from
	}
	s.follower.mu.Unlock()
	return true
}

// observe takes a batch the local projector applied into the clock and
// the index.
func (s *Worker) observe(batch []eventstore.Event) {
	moved := false
	for _, ev := range batch {
		moved = s.follow(ev, s.sandbox) || moved
	}
	s.follower.feed(batch[len(batch)-1].Position)
	if moved {
		s.Kick()
	}
}

// follow takes one event into the clock and the index, and reports whether
// a clock moved. Only clock events are decoded: the others are known by
// their stream.
func (s *Worker) follow(ev eventstore.Event, clock MovableClock) bool {
	prefix, id := domain.StreamID(ev.Stream)
	switch {
	case prefix == domain.AccountStreamPrefix:
		s.dueAccounts.touch(id, int64(ev.Version))
	case prefix == domain.BackupStreamPrefix:
		s.dueBackups.touch(id, int64(ev.Version))
	case ev.Stream == domain.ClockStream && clock != nil:
		account, off, ok, err := clockEvent(ev)
		switch {
		case err != nil:
			s.log.Error("sandbox clock: skipping an event", "err", err)
		case !ok:
		case account != "":
			// Its items' instants are on the shared clock: the move
			// brings them nearer. Moved by this process, the clock is
			// already there, but the items still need waking.
			clock.SetAccountOffset(account, off)
			s.dueAccounts.wake(account)
			s.dueBackups.wakeOwned(account)
			return true
		case off > clock.Offset():
			clock.SetOffset(off)
			return true
		}
	}
	return false
}

// clockEvent is a clock stream event as the clock it moves: the shared
// offset, or an account's own (account set).
func clockEvent(ev eventstore.Event) (account string, offset time.Duration, ok bool, err error) {
	e, err := domain.DecodeEvent(ev.Type, ev.Data)
	if err != nil {
		return "", 0, false, fmt.Errorf("sandbox clock event %s: %w", ev.ID, err)
	}
	switch c := e.(type) {
	case domain.ClockAdvanced:
		return "", time.Duration(c.Offset) * time.Second, true, nil
	case domain.AccountClockAdvanced:
		return c.AccountID, time.Duration(c.Offset) * time.Second, true, nil
	}
	return "", 0, false, nil
}

// FollowClock is Follow: kept for callers that only want the clock.
func (s *Worker) FollowClock(ctx context.Context, clock MovableClock, from eventstore.Position) error {
	return s.Follow(ctx, clock, from)
}
