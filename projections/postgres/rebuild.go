package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cryptovps/cryptovps/eventstore"
)

// rebuildBatch is how many events a rebuild applies per transaction: more
// than the projector's batches, to spread each transaction's fixed work
// (locking the checkpoint, loading and upserting the accounts it touches)
// over more events.
const rebuildBatch = 8192

// Rebuild drops every read-model table and refills it from the whole log of
// store, calling progress after each applied batch. The secondary indexes
// are built once at the end rather than maintained row by row, and reading
// and decoding the next batch overlaps with the database applying this one.
//
// Every batch is applied like any other (checkpoint locked and moved in the
// same transaction), so an interrupted rebuild leaves consistent tables up
// to their checkpoint: the next start catches up from there (and Open puts
// the indexes back), or the rebuild can be run again.
func (m *Model) Rebuild(ctx context.Context, store eventstore.Store, progress func(applied eventstore.Position)) error {
	if err := inTx(ctx, m.pool, func(tx pgx.Tx) error {
		if err := migrate(ctx, tx, true); err != nil {
			return err
		}
		return deferIndexes(ctx, tx)
	}); err != nil {
		return err
	}
	m.pool.Reset() // prepared statements of the dropped tables

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan decodedBatch, 2)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		var from eventstore.Position
		for {
			events, err := store.ReadAll(ctx, from, m.rebuildBatch)
			if err != nil {
				readErr <- fmt.Errorf("read the log after %s: %w", from, err)
				return
			}
			if len(events) == 0 {
				return
			}
			d, err := decode(events)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case batches <- d:
			case <-ctx.Done():
				return
			}
			from = events[len(events)-1].Position
		}
	}()
	for d := range batches {
		last := d.events[len(d.events)-1].Position
		if err := m.apply(ctx, d); err != nil {
			cancel()
			for range batches {
			}
			return fmt.Errorf("apply events up to %s: %w", last, err)
		}
		if progress != nil {
			progress(last)
		}
	}
	select {
	case err := <-readErr:
		return err
	default:
	}
	if err := ctx.Err(); err != nil {
		return err // interrupted: the indexes go back at the next Open
	}
	if err := inTx(ctx, m.pool, func(tx pgx.Tx) error { return restoreIndexes(ctx, tx) }); err != nil {
		return err
	}
	// Fresh statistics, so the first queries after a rebuild plan well.
	tables := make([]string, len(readModelTables))
	for i, t := range readModelTables {
		tables[i] = pgx.Identifier{t}.Sanitize()
	}
	_, err := m.pool.Exec(ctx, "ANALYZE "+strings.Join(tables, ", "))
	return classify(ctx, "analyze", err)
}
