package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
)

// Store wraps an event store so that every append is timed and its size
// recorded; everything else passes through.
func (m *Metrics) Store(s eventstore.Store) eventstore.Store { return &store{Store: s, m: m} }

type store struct {
	eventstore.Store
	m *Metrics
}

func (s *store) Append(ctx context.Context, stream string, expected int64, events []eventstore.Proposed) (eventstore.AppendResult, error) {
	start := time.Now()
	res, err := s.Store.Append(ctx, stream, expected, events)
	s.m.appendDuration.WithLabelValues(appendOutcome(err)).Observe(time.Since(start).Seconds())
	s.m.appendEvents.Observe(float64(len(events)))
	return res, err
}

func appendOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, eventstore.ErrWrongVersion):
		return "conflict"
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, eventstore.ErrClosed):
		return "unavailable"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}
