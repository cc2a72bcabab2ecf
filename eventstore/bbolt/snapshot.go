package bbolt

import (
	"context"
	"io"

	bolt "go.etcd.io/bbolt"

	"github.com/cryptovps/cryptovps/eventstore"
)

// Snapshot writes a consistent copy of the whole store file to w: the state
// as of one committed transaction, readable by Open like any store file. It
// runs in a read transaction, so appends go on meanwhile; but a read
// transaction held for long can make an append that needs to grow the file
// wait for it (bbolt remaps only without readers), so a snapshot of a large
// store should go to a fast writer. It stops with ctx.Err() if ctx ends
// while it writes.
func (s *Store) Snapshot(ctx context.Context, w io.Writer) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		_, err := tx.WriteTo(ctxWriter{ctx: ctx, w: w})
		return err
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return s.storageErr("snapshot", err)
	}
	return nil
}

// ctxWriter fails the copy once ctx ends: tx.WriteTo has no context of its
// own, and a client that went away must not keep the read transaction open.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}
