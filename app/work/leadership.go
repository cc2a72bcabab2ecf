package work

import (
	"context"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
)

// Leadership elects the one process that does the background work
// (provisioning, polling, destroying, billing, backups and their expiry)
// when several API processes share one event store. Every process serves the
// API; only the leader works. When the leader dies another process must take
// over within about a work interval, so the work stops nowhere.
//
// The election is the first line of defence against doing a thing twice;
// the second is in the domain and the work itself: every step is decided on
// the account's current stream version (a stale leader's append conflicts
// and is decided again), provisioning names the attempt it makes
// (domain.StartProvision.Attempt), and a worker retries an attempt another
// worker started only after Config.ProvisionLease.
type Leadership interface {
	// Held reports whether this process leads the background work now,
	// taking the lead first if no live process holds it. It is asked before
	// every round of work, so it must be cheap, and it must answer false as
	// soon as this process can no longer be sure it leads (its link to
	// whatever elects it is broken).
	Held(ctx context.Context) bool
	// Completed records, as the leader, a round of work it finished: what
	// processes that advanced the sandbox clock wait for (see AdvanceClock).
	Completed(ctx context.Context, r Round) error
	// LastCompleted is the last round recorded by any leader (the zero
	// Round if none).
	LastCompleted(ctx context.Context) (Round, error)
}

// Round is a completed round of background work: every pass of it started
// with the read model caught up with the log at least up to Head, and with
// the sandbox clock at least ClockOffset ahead of wall time, so everything
// due by that log and that time has been done.
type Round struct {
	Head        eventstore.Position
	ClockOffset time.Duration
}

// covers reports whether r is at least as far as want on both counts.
func (r Round) covers(want Round) bool {
	return !r.Head.Less(want.Head) && r.ClockOffset >= want.ClockOffset
}

// SoleWorker is the Leadership of a process that is the only one on its
// event store, like the embedded default (whose file lock keeps any other
// process out): it always leads, and nobody waits for its rounds.
type SoleWorker struct{}

// Held is always true.
func (SoleWorker) Held(context.Context) bool { return true }

// Completed records nothing.
func (SoleWorker) Completed(context.Context, Round) error { return nil }

// LastCompleted is the zero Round.
func (SoleWorker) LastCompleted(context.Context) (Round, error) { return Round{}, nil }

var _ Leadership = SoleWorker{}
