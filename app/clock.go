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
func (s *Service) AdvanceClock(ctx context.Context, clock MovableClock, seconds int64, meta eventstore.Metadata) (time.Time, error) {
	// Compare in seconds: seconds*time.Second overflows for huge values and
	// could wrap into the allowed range.
	if seconds < 1 || seconds > int64(MaxAdvance/time.Second) {
		return time.Time{}, ErrBadAdvance
	}
	s.work.Lock()
	defer s.work.Unlock()
	if err := s.runDue(ctx); err != nil {
		return time.Time{}, err
	}
	offset := clock.Offset() + time.Duration(seconds)*time.Second
	e := domain.ClockAdvanced{Seconds: seconds, Offset: int64(offset / time.Second), At: s.clock.Now()}
	data, err := json.Marshal(e)
	if err != nil {
		return time.Time{}, err
	}
	if _, err := s.store.Append(ctx, domain.ClockStream, eventstore.Any,
		[]eventstore.Proposed{{ID: uuid.New(), Type: e.EventType(), Data: data, Meta: meta}}); err != nil {
		return time.Time{}, fmt.Errorf("record clock advance: %w", err)
	}
	clock.SetOffset(offset)
	// Each pass can make more work due (a destroy requested in the first
	// completes a few seconds later): repeat while passes change the log.
	for range 4 {
		before, err := s.store.Head(ctx)
		if err != nil {
			return time.Time{}, err
		}
		if err := s.runDue(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("background work during clock advance", "err", err)
		}
		after, err := s.store.Head(ctx)
		if err != nil {
			return time.Time{}, err
		}
		if after == before {
			break
		}
	}
	head, err := s.store.Head(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return s.clock.Now(), s.WaitFor(ctx, head)
}
