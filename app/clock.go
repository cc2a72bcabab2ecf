package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

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

// MaxAdvance bounds one clock advance, so one call cannot ask for years of
// hourly charges at once.
const MaxAdvance = 31 * 24 * time.Hour

// ErrBadAdvance is an advance outside 1 second .. MaxAdvance.
var ErrBadAdvance = fmt.Errorf("seconds must be between 1 and %d", int64(MaxAdvance/time.Second))

// ClockOffset replays the sandbox clock stream: the offset to start with.
func ClockOffset(ctx context.Context, store eventstore.Store) (time.Duration, error) {
	events, err := store.ReadStream(ctx, domain.ClockStream, 0)
	if err != nil {
		return 0, fmt.Errorf("read sandbox clock: %w", err)
	}
	var off time.Duration
	for _, ev := range events {
		e, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			return 0, err
		}
		if c, ok := e.(domain.ClockAdvanced); ok {
			off = max(off, time.Duration(c.Offset)*time.Second)
		}
	}
	return off, nil
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
func (s *Service) AdvanceClock(ctx context.Context, clock MovableClock, seconds int64, meta eventstore.Metadata) (time.Time, error) {
	// Compare in seconds: seconds*time.Second overflows for huge values and
	// could wrap into the allowed range.
	if seconds < 1 || seconds > int64(MaxAdvance/time.Second) {
		return time.Time{}, ErrBadAdvance
	}
	s.work.Lock()
	defer s.work.Unlock()
	head, err := s.store.Head(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if err := s.settle(ctx, Round{Head: head, ClockOffset: clock.Offset()}, 1); err != nil {
		if errors.Is(err, errNoRound) {
			err = fmt.Errorf("%w: the background work did not catch up before the clock advance", ErrBusy)
		}
		return time.Time{}, err
	}
	offset, pos, err := s.recordAdvance(ctx, clock, seconds, meta)
	if err != nil {
		return time.Time{}, err
	}
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
	return s.clock.Now(), s.WaitFor(ctx, head)
}

// errNoRound is settle giving up on the leader.
var errNoRound = errors.New("no round of background work covered the wait")

// settle has the work due by want done: by this process, in up to n passes
// recorded as a round, if it leads; else by waiting until the leader
// records a round that covers want.
func (s *Service) settle(ctx context.Context, want Round, n int) error {
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

// recordAdvance appends the advance to the clock stream, on top of the
// offset the stream last recorded, expecting the stream's version: two
// processes advancing at once add up instead of one overwriting the other.
func (s *Service) recordAdvance(ctx context.Context, clock MovableClock, seconds int64, meta eventstore.Metadata) (time.Duration, eventstore.Position, error) {
	for range 16 {
		events, err := s.store.ReadStream(ctx, domain.ClockStream, s.clockNext)
		if err != nil {
			return 0, eventstore.Position{}, fmt.Errorf("read sandbox clock: %w", err)
		}
		for _, ev := range events {
			if off, ok, err := clockEvent(ev); err != nil {
				return 0, eventstore.Position{}, err
			} else if ok {
				clock.SetOffset(off)
			}
			s.clockNext = ev.Version + 1
		}
		offset := clock.Offset() + time.Duration(seconds)*time.Second
		e := domain.ClockAdvanced{Seconds: seconds, Offset: int64(offset / time.Second), At: s.clock.Now()}
		data, err := json.Marshal(e)
		if err != nil {
			return 0, eventstore.Position{}, err
		}
		res, err := s.store.Append(ctx, domain.ClockStream, int64(s.clockNext)-1,
			[]eventstore.Proposed{{ID: uuid.New(), Type: e.EventType(), Data: data, Meta: meta}})
		if errors.Is(err, eventstore.ErrWrongVersion) {
			continue // another process advanced the clock: add to its offset
		}
		if err != nil {
			return 0, eventstore.Position{}, fmt.Errorf("record clock advance: %w", err)
		}
		s.clockNext = res.Version + 1
		return offset, res.Position, nil
	}
	return 0, eventstore.Position{}, ErrContention
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
func (s *Service) FollowClock(ctx context.Context, clock MovableClock, from eventstore.Position) error {
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
