package history

import (
	"context"
	"fmt"
	"strings"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections/memory"
)

// Audit runs the audit over store as `cryptovps audit` does (the read-model
// check against an in-memory model built from the same read of the log)
// and returns an error naming the violations, if any: what a benchmark
// wrote must be a log the service could have written.
func Audit(ctx context.Context, store eventstore.Store) error {
	a := audit.New(audit.Options{})
	model := memory.New(store)
	if _, err := audit.Run(ctx, store, a, audit.RunOptions{Model: model}); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	r := a.Finish()
	if err := a.CheckReadModel(ctx, "memory", audit.ReaderBalances(model)); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if r.OK() {
		return nil
	}
	var msgs []string
	for i, v := range r.Violations {
		if i == 5 {
			msgs = append(msgs, fmt.Sprintf("and %d more", len(r.Violations)-5))
			break
		}
		msgs = append(msgs, v.String())
	}
	return fmt.Errorf("audit: %d violations: %s", len(r.Violations), strings.Join(msgs, "; "))
}
