// Package health says whether this process can serve now (readiness), as
// opposed to whether it is alive (liveness, /healthz): a load balancer sends
// traffic only to a ready process, and an operator reads why one is not.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// DefaultMaxLag is how far behind the log the read model may be while the
// process still counts as ready: reads wait up to the read timeout (5s by
// default) for a caller's own writes, so a model further behind than that
// answers 503s.
const DefaultMaxLag = 10 * time.Second

// checkTimeout bounds one check, so a dependency that hangs is reported as
// down rather than hanging the probe.
const checkTimeout = 3 * time.Second

// LeaderKnower is a leader election that can tell whether some process
// (this one or another) leads the background work now. An election that is
// not one (the sole worker of the embedded store) need not implement it.
type LeaderKnower interface {
	LeaderKnown(ctx context.Context) (bool, error)
}

// Checker checks the dependencies this process needs to serve.
type Checker struct {
	store  eventstore.Store
	model  projections.Model
	leader LeaderKnower
	maxLag time.Duration
	now    func() time.Time
	log    *slog.Logger

	mu   sync.Mutex
	last string // the last reason given, to log changes only
}

// Config is what a Checker checks.
type Config struct {
	Store eventstore.Store
	Model projections.Model
	// Leader is the election, when there is one to ask (nil: none).
	Leader LeaderKnower
	// MaxLag is the bound on the read model's lag (DefaultMaxLag when 0).
	MaxLag time.Duration
	// Now is the wall clock events are recorded by (time.Now when nil).
	Now func() time.Time
	Log *slog.Logger
}

// New returns a Checker.
func New(cfg Config) *Checker {
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = DefaultMaxLag
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Checker{store: cfg.Store, model: cfg.Model, leader: cfg.Leader, maxLag: cfg.MaxLag, now: cfg.Now, log: cfg.Log}
}

// ErrNotReady is wrapped by every reason Ready gives.
var ErrNotReady = errors.New("not ready")

// Ready returns nil when this process can serve, or an error wrapping
// ErrNotReady whose message is the reason, fit for anyone to read: it names
// the dependency, never its address or its own error, which go to the log
// (once per change, not at every probe).
func (c *Checker) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	reason, detail := c.check(ctx)
	c.mu.Lock()
	changed := reason != c.last
	c.last = reason
	c.mu.Unlock()
	if changed {
		if reason == "" {
			c.log.Info("ready to serve")
		} else {
			c.log.Warn("not ready to serve", "reason", reason, "err", detail)
		}
	}
	if reason == "" {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrNotReady, reason)
}

// check returns the public reason the process is not ready ("" when it is)
// and the error behind it.
func (c *Checker) check(ctx context.Context) (string, error) {
	if _, err := c.store.Head(ctx); err != nil {
		return "the event store is unreachable", err
	}
	lag, err := projections.MeasureLag(ctx, c.store, c.model, 0, c.now())
	switch {
	case errors.Is(err, projections.ErrUnavailable):
		return "the read model is unreachable", err
	case err != nil:
		return "the event store is unreachable", err
	case lag.Age > c.maxLag:
		return fmt.Sprintf("the read model is %s behind the log (at most %s allowed)", lag.Age.Round(time.Second), c.maxLag), nil
	}
	if c.leader != nil {
		known, err := c.leader.LeaderKnown(ctx)
		switch {
		case err != nil:
			return "the leader election is unreachable", err
		case !known:
			return "no process leads the background work", nil
		}
	}
	return "", nil
}
