package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections/memory"
)

// tampered is a store whose log reads back with one event's payload
// replaced, as if someone had edited the file.
type tampered struct {
	eventstore.Store
	at   eventstore.Position
	data json.RawMessage
}

func (s tampered) edit(events []eventstore.Event, err error) ([]eventstore.Event, error) {
	for i := range events {
		if events[i].Position == s.at {
			events[i].DropPayload()
			events[i].Data = s.data
		}
	}
	return events, err
}

func (s tampered) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	return s.edit(s.Store.ReadAll(ctx, from, limit))
}

func (s tampered) ReadAllLazy(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	return s.edit(s.Store.ReadAllLazy(ctx, from, limit))
}

// A charge edited in the middle of a long log, read on several goroutines
// page after page, is reported as it is by the serial fold: one hash-chain
// violation naming it, with the message the audit has always written, and
// nothing else (the chain goes on from the stored hash; the read model
// built alongside takes the same edited log).
func TestTamperedChargeInTheMiddleOfALongLog(t *testing.T) {
	ctx := context.Background()
	store, _ := generatedStore(t, 8000)
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The first charge past the middle of the log.
	var target eventstore.Event
	var tx domain.LedgerPosted
	err = audit.ReadLog(ctx, store, eventstore.Position{Commit: head.Commit / 2, Prepare: head.Prepare / 2}, head, 512,
		func(page []eventstore.Event) error {
			for _, ev := range page {
				if ev.Type != "LedgerPosted" || target.Type != "" {
					continue
				}
				if err := json.Unmarshal(ev.Data, &tx); err != nil {
					return err
				}
				if tx.Kind == domain.TxCharge {
					target = ev
				}
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if target.Type == "" {
		t.Fatal("no charge in the second half of the log")
	}
	tx.TxID += "-edited"
	data, err := json.Marshal(tx)
	if err != nil {
		t.Fatal(err)
	}
	view := tampered{Store: store, at: target.Position, data: data}
	want := fmt.Sprintf("[%d hash-chain] event %s %s v%d @%s: hash %s… does not match the transaction's content (it was edited after it was sealed)",
		int(audit.CheckHashChain), target.ID, target.Stream, target.Version, target.Position, tx.Hash[:12])

	// runAudit folds in parallel (Run) and serially (Apply) and requires
	// the same verdicts.
	r := runAudit(t, view, audit.Options{})
	if len(r.Violations) != 1 || r.Violations[0].String() != want {
		t.Fatalf("violations %v, want\n%s", r.Violations, want)
	}

	// As cryptovps audit runs it: big pages, every core, the read model
	// built alongside and compared.
	a := audit.New(audit.Options{})
	model := memory.New()
	if _, err := audit.Run(ctx, view, a, audit.RunOptions{Model: model, Workers: 4, Page: 256}); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckReadModel(ctx, "memory", audit.ReaderBalances(model)); err != nil {
		t.Fatal(err)
	}
	if r := a.Finish(); len(r.Violations) != 1 || r.Violations[0].String() != want {
		t.Fatalf("violations %v, want\n%s", r.Violations, want)
	}
}
