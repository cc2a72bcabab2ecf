package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// Projector feeds the global log into a Model, from the model's checkpoint,
// and lets writers wait until their write is visible (read-your-writes).
type Projector struct {
	store eventstore.Store
	model Model
	log   *slog.Logger

	mu      sync.Mutex
	applied eventstore.Position
	changed chan struct{} // closed and replaced after each applied batch
	// observers see every batch Run applies (Observe).
	observers []func([]eventstore.Event)
}

// Observe has fn see every batch Run applies, right after it is applied,
// in log order: a part of the process that needs every event (the
// background work's due-time index) takes them from here instead of
// reading and decoding the log a second time. It sees every event only
// when the model is this process's alone (a shared model's checkpoint
// moves with other processes' projectors). fn runs on the projector's
// goroutine: it must be quick.
func (p *Projector) Observe(fn func([]eventstore.Event)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.observers = append(p.observers, fn)
}

// NewProjector returns a projector of store into model.
func NewProjector(store eventstore.Store, model Model, log *slog.Logger) *Projector {
	return &Projector{store: store, model: model, log: log, changed: make(chan struct{})}
}

// Run keeps the model up to date until ctx ends. A failing model or store is
// retried with backoff from the last checkpoint, so nothing is skipped or
// applied twice.
func (p *Projector) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		err := p.runOnce(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, eventstore.ErrClosed) {
			return err
		}
		p.log.Warn("projection stopped; resuming from checkpoint", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (p *Projector) runOnce(ctx context.Context) error {
	from, err := p.model.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	p.advance(from)
	return p.store.Subscribe(ctx, from, func(batch []eventstore.Event) error {
		if err := p.model.Apply(ctx, batch); err != nil {
			return fmt.Errorf("apply events up to %s: %w", batch[len(batch)-1].Position, err)
		}
		p.mu.Lock()
		observers := p.observers
		p.mu.Unlock()
		for _, fn := range observers {
			fn(batch)
		}
		p.advance(batch[len(batch)-1].Position)
		return nil
	})
}

// CatchUp applies everything already in the log and returns; it is how a
// start, a rebuild or a one-shot command fills a model without subscribing.
// A model that takes decoded batches (DecodedApplier) gets the log decoded
// on every core, without JSON where the store keeps its own encoding, and
// applies it in order.
func (p *Projector) CatchUp(ctx context.Context, progress func(applied eventstore.Position)) error {
	from, err := p.model.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	// A model that starts ahead (loaded from its snapshot) is applied up
	// to there, tail or no tail.
	p.advance(from)
	applied := func(batch []eventstore.Event) {
		last := batch[len(batch)-1].Position
		p.advance(last)
		if progress != nil {
			progress(last)
		}
	}
	if da, ok := p.model.(DecodedApplier); ok {
		return eventstore.Scan(ctx, p.store, eventstore.ScanOptions{From: from}, da.Decode,
			func(batch []eventstore.Event, decoded []domain.Event) error {
				if err := da.ApplyDecoded(ctx, batch, decoded); err != nil {
					return fmt.Errorf("apply events up to %s: %w", batch[len(batch)-1].Position, err)
				}
				applied(batch)
				return nil
			})
	}
	for {
		batch, err := p.store.ReadAll(ctx, from, 2048)
		if err != nil {
			return fmt.Errorf("read log after %s: %w", from, err)
		}
		if len(batch) == 0 {
			return nil
		}
		if err := p.model.Apply(ctx, batch); err != nil {
			return fmt.Errorf("apply events up to %s: %w", batch[len(batch)-1].Position, err)
		}
		from = batch[len(batch)-1].Position
		applied(batch)
	}
}

func (p *Projector) advance(pos eventstore.Position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.applied.Less(pos) {
		p.applied = pos
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// Changed is closed the next time this process sees the model move on:
// what a long-poll waits on. Take it before reading the model, so a change
// between the read and the wait is not missed.
func (p *Projector) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// Applied is the position this process last saw applied.
func (p *Projector) Applied() eventstore.Position {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applied
}

// ErrLagging is returned by WaitFor when the model did not reach the position
// in time.
var ErrLagging = domain.Errorf(domain.CodeReadModelLagging, "the write succeeded but is not visible yet: retry the read")

// WaitFor returns once the model has applied pos, or ErrLagging after
// timeout. The model's own checkpoint is consulted too, so a write applied by
// another process's projector counts.
func (p *Projector) WaitFor(ctx context.Context, pos eventstore.Position, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		p.mu.Lock()
		applied, changed := p.applied, p.changed
		p.mu.Unlock()
		if !applied.Less(pos) {
			return nil
		}
		select {
		case <-changed:
		case <-poll.C:
			if cp, err := p.model.Checkpoint(ctx); err == nil && !cp.Less(pos) {
				p.advance(cp)
				return nil
			}
		case <-deadline.C:
			return fmt.Errorf("%w: at %s, waiting for %s", ErrLagging, applied, pos)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
