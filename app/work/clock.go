package work

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// MovableClock is a clock the sandbox can move forward.
type MovableClock interface {
	domain.Clock
	Offset() time.Duration
	SetOffset(time.Duration)
}

// ClockOffset replays the sandbox clock stream: the offset to start with.
func ClockOffset(ctx context.Context, clocks *app.Clocks) (time.Duration, error) {
	cur, err := clocks.Load(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("read sandbox clock: %w", err)
	}
	return cur.State.OffsetDuration(), nil
}

// AdvanceClock moves the sandbox clock forward and returns once everything
// due by the new time has happened: work pending now is done first (so a
// deploy accepted a moment ago is already at the provider), the offset is
// recorded as an event, then everything due is done and the read model has
// caught up.
//
// The work is the leader's (see Leadership). A process that leads does it
// itself, as a single process always does. One that does not lead waits for
// the leader instead: before recording the advance, for a round of work
// that began with the log at least as it is now; after, for a round that
// began with the advance in the log and the clock at the new offset (every
// process follows the clock stream, see FollowClock, and a leader's first
// round after the clock moved repeats passes while they change the log,
// as this method does). Should the lead come to this process while it
// waits (the leader died), it does the work itself. Waiting is bounded by
// four times Config.ReadTimeout: before the advance is recorded a timeout
// is ErrBusy (nothing was written, retry), after it projections.ErrLagging
// (the advance stands, do not retry it).
func (s *Worker) AdvanceClock(ctx context.Context, seconds int64, meta eventstore.Metadata) (time.Time, error) {
	clock := s.sandbox
	if clock == nil {
		return time.Time{}, errors.New("the clock can be moved only in sandbox mode")
	}
	if _, err := domain.DecideClock(domain.SandboxClock{}, domain.AdvanceClock{Seconds: seconds}, s.clock.Now()); err != nil {
		return time.Time{}, err // out of bounds: nothing to wait for
	}
	s.work.Lock()
	defer s.work.Unlock()
	head, err := s.store.Head(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if err := s.settle(ctx, Round{Head: head, ClockOffset: clock.Offset()}, 1); err != nil {
		if errors.Is(err, errNoRound) {
			err = fmt.Errorf("%w: the background work did not catch up before the clock advance", domain.ErrBusy)
		}
		return time.Time{}, err
	}
	// The advance adds to the offset the stream last recorded, expecting the
	// stream's version: two processes advancing at once add up instead of
	// one overwriting the other.
	d, err := s.clocks.Run(ctx, "", domain.AdvanceClock{Seconds: seconds}, meta)
	if err != nil {
		return time.Time{}, err
	}
	offset, pos := d.State.OffsetDuration(), d.Position
	clock.SetOffset(offset)
	if err := s.settle(ctx, Round{Head: pos, ClockOffset: offset}, 4); err != nil {
		if errors.Is(err, errNoRound) {
			return time.Time{}, fmt.Errorf("%w: the clock advanced, but the background work did not catch up in time", projections.ErrLagging)
		}
		if !errors.Is(err, context.Canceled) {
			s.log.Warn("background work during clock advance", "err", err)
		}
	}
	head, err = s.store.Head(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return s.clock.Now(), s.proj.WaitFor(ctx, head, s.cfg.ReadTimeout)
}

// errNoRound is settle giving up on the leader.
var errNoRound = errors.New("no round of background work covered the wait")

// settle has the work due by want done: by this process, in up to n passes
// recorded as a round, if it leads; else by waiting until the leader
// records a round that covers want.
func (s *Worker) settle(ctx context.Context, want Round, n int) error {
	deadline := time.Now().Add(4 * s.cfg.ReadTimeout)
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for i := 0; ; i++ {
		// The lead is asked at once and then five times a second.
		if i%4 == 0 && s.lead.Held(ctx) {
			start, err := s.store.Head(ctx)
			if err != nil {
				return err
			}
			off := s.clockOffset()
			complete, err := s.passes(ctx, n)
			if complete {
				s.completed(ctx, Round{Head: start, ClockOffset: off})
			}
			return err
		}
		if r, err := s.lead.LastCompleted(ctx); err == nil && r.covers(want) {
			return nil
		}
		if time.Now().After(deadline) {
			return errNoRound
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
		}
	}
}

// clockEvent is the offset a clock stream event moves the clock to.
func clockEvent(ev eventstore.Event) (time.Duration, bool, error) {
	e, err := domain.DecodeEvent(ev.Type, ev.Data)
	if err != nil {
		return 0, false, fmt.Errorf("sandbox clock event %s: %w", ev.ID, err)
	}
	c, ok := e.(domain.ClockAdvanced)
	return time.Duration(c.Offset) * time.Second, ok, nil
}

// FollowClock keeps clock in step with the sandbox clock stream, from the
// log position from (the head as it was before ClockOffset read the stream)
// until ctx ends: an advance made through any process sharing the event
// store moves the clock of this one. After each move the background loop is
// kicked, so that a leader does its round at the new time at once. A lost
// subscription is resumed, with backoff, after the last event seen.
func (s *Worker) FollowClock(ctx context.Context, clock MovableClock, from eventstore.Position) error {
	backoff := 100 * time.Millisecond
	for {
		err := s.store.Subscribe(ctx, from, func(batch []eventstore.Event) error {
			moved := false
			for _, ev := range batch {
				from = ev.Position
				if ev.Stream != domain.ClockStream {
					continue
				}
				off, ok, err := clockEvent(ev)
				if err != nil {
					s.log.Error("sandbox clock: skipping an event", "err", err)
					continue
				}
				if ok && off > clock.Offset() {
					clock.SetOffset(off)
					moved = true
				}
			}
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
		s.log.Warn("sandbox clock: following the log stopped; resuming", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
