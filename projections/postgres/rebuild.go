package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// rebuildBatch is how many events a rebuild applies per transaction: more
// than the projector's batches, to spread each transaction's fixed work
// (locking the checkpoint, loading and upserting the accounts it touches)
// over more events.
const rebuildBatch = 8192

// Rebuild drops every read-model table and refills it from the whole log of
// store, calling progress after each applied batch. The secondary indexes
// are built once at the end rather than maintained row by row; reading and
// decoding the next batches (on every core, without JSON where the store
// keeps its own encoding) overlaps with the database applying this one, and
// the rows a batch touches come from memory, not from the tables.
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

	// The log is read and decoded on every core while the database applies
	// the batches in order; the rows the batches touch are kept here
	// rather than read back (the rebuild is the only writer of its tables).
	carry := newCarried()
	err := eventstore.Scan(ctx, store, eventstore.ScanOptions{Page: m.rebuildBatch}, projections.Decode,
		func(events []eventstore.Event, decoded []domain.Event) error {
			last := events[len(events)-1].Position
			if err := m.apply(ctx, decodedBatch{events: events, decoded: decoded}, carry); err != nil {
				return fmt.Errorf("apply events up to %s: %w", last, err)
			}
			if progress != nil {
				progress(last)
			}
			return nil
		})
	if err != nil {
		return err
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
	_, err = m.pool.Exec(ctx, "ANALYZE "+strings.Join(tables, ", "))
	return classify(ctx, "analyze", err)
}
