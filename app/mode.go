package app

import (
	"context"
	"fmt"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// Modes runs the deployment-mode stream's one command.
type Modes = Runner[domain.RecordedMode, domain.RecordMode]

// NewModes is the runner of the deployment-mode stream.
func NewModes(store eventstore.Store, clock domain.Clock) *Modes {
	return NewRunner(store, clock, Decider[domain.RecordedMode, domain.RecordMode]{
		Stream:  func(string) string { return domain.ModeStream },
		Initial: func(string) domain.RecordedMode { return domain.RecordedMode{} },
		Decide:  domain.DecideMode, Evolve: domain.EvolveMode,
	})
}

// CheckMode records the mode of a new log, and refuses to go on with a log
// written in another mode. A log written before modes were recorded was
// written in the sandbox (the only mode there was), so it is recorded as
// that first.
func CheckMode(ctx context.Context, store eventstore.Store, clock domain.Clock, mode domain.Mode) error {
	modes := NewModes(store, clock)
	cur, err := modes.Load(ctx, "")
	if err != nil {
		return err
	}
	meta := eventstore.Metadata{Actor: "system", Causation: "startup"}
	if !cur.State.Recorded {
		head, err := store.Head(ctx)
		if err != nil {
			return err
		}
		if !head.IsZero() {
			sandbox := domain.Mode{Cloud: domain.UpstreamSandbox, Payments: domain.UpstreamSandbox}
			if _, err := modes.Run(ctx, "", domain.RecordMode{Mode: sandbox}, meta); err != nil {
				return fmt.Errorf("record the mode of an existing log: %w", err)
			}
		}
	}
	if _, err := modes.Run(ctx, "", domain.RecordMode{Mode: mode}, meta); err != nil {
		return fmt.Errorf("deployment mode: %w", err)
	}
	return nil
}
