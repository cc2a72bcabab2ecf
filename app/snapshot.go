package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"reflect"

	json "github.com/goccy/go-json"
	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// Snapshots keeps aggregate snapshots: a state, encoded, at a version of
// its stream, with the id of the event at that version. A snapshot is a
// head start and nothing more: the runner reads the stream from the
// snapshot's version, checks that the event there is the one the snapshot
// was taken at (a log restored from an older copy, or another log, does
// not match), folds what follows, and falls back to the whole stream when
// the snapshot is missing, stale or unreadable. Losing every snapshot
// loses nothing but time. Adapters: eventstore/snapshots.
type Snapshots interface {
	// Get returns the snapshot kept under key (ok false: none).
	Get(ctx context.Context, key string) (s Snapshot, ok bool, err error)
	// Put keeps s under key, replacing what was there.
	Put(ctx context.Context, key string, s Snapshot) error
}

// Snapshot is a state encoded at a version of its stream.
type Snapshot struct {
	Version int64
	// EventID is the id of the stream's event at Version.
	EventID uuid.UUID
	Data    []byte
}

// SnapshotEvery is how many events a runner folds, past its last snapshot
// of an aggregate, before it takes another: a load then reads at most
// about that many events after a restart, whatever the stream's length.
const SnapshotEvery = 500

// SetSnapshots has the runner keep snapshots of its aggregates in snaps,
// one every `every` events, and start from them; call it before the runner
// is used.
func (r *Runner[S, C]) SetSnapshots(snaps Snapshots, every int) {
	r.snaps, r.snapEvery = snaps, max(every, 1)
	var zero S
	// The key names the state's shape: a change of the state's type
	// leaves every snapshot of the old shape unread (they are not decoded
	// into a type they were not written from).
	r.snapSchema = schemaOf(reflect.TypeOf(zero))
}

func (r *Runner[S, C]) snapKey(id string) string {
	return r.snapSchema + "/" + r.d.Stream(id)
}

// fromSnapshot loads the aggregate from its snapshot and the events after
// it; ok is false when there is none, or it does not match the log.
func (r *Runner[S, C]) fromSnapshot(ctx context.Context, id string) (c Decided[S], last uuid.UUID, ok bool, err error) {
	snap, found, err := r.snaps.Get(ctx, r.snapKey(id))
	if err != nil || !found || snap.Version < 0 {
		// An unreadable snapshot store is not a failure of the load: the
		// log alone will do.
		return c, last, false, nil
	}
	stream := r.d.Stream(id)
	events, err := r.store.ReadStreamLazy(ctx, stream, uint64(snap.Version))
	if err != nil {
		return c, last, false, fmt.Errorf("load %s: %w", stream, err)
	}
	if len(events) == 0 || int64(events[0].Version) != snap.Version || events[0].ID != snap.EventID {
		return c, last, false, nil // stale: taken on another log, or one since restored
	}
	var st S
	if err := json.Unmarshal(snap.Data, &st); err != nil {
		return c, last, false, nil
	}
	end := events[0]
	for _, ev := range events[1:] {
		if st, err = r.evolveStored(stream, st, ev); err != nil {
			return c, last, false, err
		}
		end = ev
	}
	return Decided[S]{State: st, Version: int64(end.Version), Position: end.Position, folded: len(events) - 1}, end.ID, true, nil
}

// snapshot keeps c as the aggregate's snapshot; a failure only means the
// next load after a restart reads more of the log.
func (r *Runner[S, C]) snapshot(ctx context.Context, id string, c Decided[S], last uuid.UUID) {
	data, err := json.Marshal(c.State)
	if err != nil {
		return
	}
	_ = r.snaps.Put(ctx, r.snapKey(id), Snapshot{Version: c.Version, EventID: last, Data: data})
}

// schemaOf names a type's shape (eventstore.Shape) in short: a hash of
// it keys snapshots.
func schemaOf(t reflect.Type) string {
	sum := sha256.Sum256([]byte(eventstore.Shape(t)))
	return hex.EncodeToString(sum[:8])
}

// evolveStored folds one stored event into a state.
func (r *Runner[S, C]) evolveStored(stream string, st S, ev eventstore.Event) (S, error) {
	e, err := projections.DecodeEvent(&ev)
	if err != nil {
		return st, fmt.Errorf("load %s: %w", stream, err)
	}
	return r.d.Evolve(st, e), nil
}
