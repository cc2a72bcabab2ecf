package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

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

// errWriterStopped stops the scan of a rebuild whose writer failed (the
// writer's error is the one returned).
var errWriterStopped = errors.New("rebuild: the writer stopped")

// Rebuild drops every read-model table and refills it from the whole log of
// store, calling progress after each applied batch (from one goroutine, not
// necessarily the caller's). The secondary indexes are built once at the
// end rather than maintained row by row; reading and decoding the next
// batches (on every core, without JSON where the store keeps its own
// encoding) and folding the next batch overlap with the database writing
// this one, the rows a batch touches come from memory, not from the
// tables, and the ledger goes in as binary COPY encoded while folding.
//
// Every batch is written in a transaction of its own that locks the
// checkpoint, finds it where the previous batch left it, and moves it, so
// an interrupted rebuild leaves consistent tables up to their checkpoint:
// the next start catches up from there (and Open puts the indexes back),
// or the rebuild can be run again.
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

	// The log is read and decoded on every core; the batches are folded in
	// order, from the rows earlier batches left in memory rather than from
	// the tables (the rebuild is the only writer of its tables), while the
	// database writes the batch before.
	type job struct {
		w          *folded
		from, last eventstore.Position
	}
	jobs := make(chan job, 1)
	stopped := make(chan struct{}) // the writer failed
	var werr error
	var wg sync.WaitGroup
	wg.Go(func() {
		for j := range jobs {
			if werr != nil {
				continue // drain: the scan stops at its next batch
			}
			if werr = m.applyFolded(ctx, j.w, j.from, j.last); werr != nil {
				werr = fmt.Errorf("apply events up to %s: %w", j.last, werr)
				close(stopped)
			} else if progress != nil {
				progress(j.last)
			}
		}
	})
	carry := newCarried()
	var from eventstore.Position // the fresh tables' checkpoint
	err := eventstore.Scan(ctx, store, eventstore.ScanOptions{Page: m.rebuildBatch}, projections.Decode,
		func(events []eventstore.Event, decoded []domain.Event) error {
			last := events[len(events)-1].Position
			w, err := foldCarried(decodedBatch{events: events, decoded: decoded}, carry)
			if err != nil {
				return fmt.Errorf("fold events up to %s: %w", last, err)
			}
			select {
			case jobs <- job{w: w, from: from, last: last}:
				from = last
				return nil
			case <-stopped:
				return errWriterStopped
			}
		})
	close(jobs)
	wg.Wait()
	if werr != nil {
		return werr
	}
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
