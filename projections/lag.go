package projections

import (
	"context"
	"fmt"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
)

// LagCountLimit bounds how many events Lag counts: past it the read model
// is far behind and the age of what it has not applied says more.
const LagCountLimit = 10000

// Lag is how far a read model is behind the log.
type Lag struct {
	// Head is the log's last position; Checkpoint the model's.
	Head, Checkpoint eventstore.Position
	// Events is how many events of the log the model has not applied, at
	// most LagCountLimit.
	Events int
	// Age is how long ago the oldest event the model has not applied was
	// recorded: zero when the model is caught up. It grows while a model is
	// stuck, and stays small while it keeps up with a busy log.
	Age time.Duration
}

// MeasureLag compares the model's checkpoint with the head of the log. It
// reads the log only when the model is behind: up to countLimit events
// (0: just the oldest one, enough for Age). now is the wall clock, the
// clock events are recorded by.
func MeasureLag(ctx context.Context, store eventstore.Store, model Model, countLimit int, now time.Time) (Lag, error) {
	// The checkpoint first: an event appended between the two reads then
	// shows as lag rather than as a model ahead of its log.
	cp, err := model.Checkpoint(ctx)
	if err != nil {
		return Lag{}, fmt.Errorf("read model checkpoint: %w: %w", ErrUnavailable, err)
	}
	head, err := store.Head(ctx)
	if err != nil {
		return Lag{}, fmt.Errorf("head of the log: %w", err)
	}
	l := Lag{Head: head, Checkpoint: cp}
	if !cp.Less(head) {
		return l, nil
	}
	batch, err := store.ReadAll(ctx, cp, max(countLimit, 1))
	if err != nil {
		return Lag{}, fmt.Errorf("read the log after %s: %w", cp, err)
	}
	if len(batch) == 0 {
		return l, nil
	}
	l.Events = len(batch)
	l.Age = max(now.Sub(batch[0].RecordedAt), 0)
	return l, nil
}
