package app_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/aggsnap"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/tests/history"
)

// reads counts the events a store hands out from account streams.
type reads struct {
	eventstore.Store
	events atomic.Int64
}

func (r *reads) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Event, error) {
	evs, err := r.Store.ReadStream(ctx, stream, from)
	if strings.HasPrefix(stream, domain.AccountStreamPrefix) {
		r.events.Add(int64(len(evs)))
	}
	return evs, err
}

func (r *reads) ReadStreamLazy(ctx context.Context, stream string, from uint64) ([]eventstore.Event, error) {
	evs, err := r.Store.ReadStreamLazy(ctx, stream, from)
	if strings.HasPrefix(stream, domain.AccountStreamPrefix) {
		r.events.Add(int64(len(evs)))
	}
	return evs, err
}

func openLog(t *testing.T, seed time.Time, n int) *bbolt.Store {
	t.Helper()
	store, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := history.Generate(context.Background(), store, n, seed); err != nil {
		t.Fatal(err)
	}
	return store
}

// A runner started after a restart loads a long account from its snapshot
// and the events after it, to the very state the whole stream folds to; a
// snapshot that does not match the log (taken on another log), or that
// cannot be read, is passed over for the stream itself.
func TestSnapshotsShortenALoadAndNeverOverrideTheLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store := openLog(t, start, 3000)
	ids := accountIDs(t, store)
	snaps, err := aggsnap.Open(filepath.Join(t.TempDir(), "snapshots.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer snaps.Close()
	clock := fixedClock{start.Add(40 * 24 * time.Hour)}
	whole := func(s eventstore.Store, id string) app.Decided[domain.Account] {
		t.Helper()
		d, err := app.NewAccounts(s, clock).Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	// The first process folds every stream whole and takes snapshots; it
	// also appends (the snapshot is then behind the log).
	first := app.NewAccounts(store, clock)
	first.SetSnapshots(snaps, 100)
	for _, id := range ids {
		if _, err := first.Run(ctx, id, domain.Settle{}, eventstore.Metadata{}); err != nil {
			t.Fatal(err)
		}
	}
	// After a restart: far fewer events read, the same state.
	counted := &reads{Store: store}
	second := app.NewAccounts(counted, clock)
	second.SetSnapshots(snaps, 100)
	total := 0
	for _, id := range ids {
		want := whole(store, id)
		total += int(want.Version) + 1
		got, err := second.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.State, want.State) || got.Version != want.Version || got.Position != want.Position {
			t.Fatalf("account %s from its snapshot differs from the whole stream (version %d, want %d)", id, got.Version, want.Version)
		}
	}
	if n := counted.events.Load(); n > int64(len(ids))*101 {
		t.Fatalf("loading %d accounts from snapshots read %d events of %d", len(ids), n, total)
	}

	// Another log with the same account ids: the snapshots do not match
	// its events and are passed over.
	other := openLog(t, start.Add(time.Hour), 3000)
	third := app.NewAccounts(other, clock)
	third.SetSnapshots(snaps, 1<<30)
	for _, id := range ids {
		want := whole(other, id)
		got, err := third.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.State, want.State) || got.Version != want.Version {
			t.Fatalf("account %s: a snapshot of another log was trusted", id)
		}
	}

	// A snapshot that does not decode is passed over too.
	for _, id := range ids {
		key := snapshotKey(t, snaps, id)
		s, _, _ := snaps.Get(ctx, key)
		s.Data = []byte(`{"Servers": 42`)
		if err := snaps.Put(ctx, key, s); err != nil {
			t.Fatal(err)
		}
	}
	fourth := app.NewAccounts(store, clock)
	fourth.SetSnapshots(snaps, 1<<30)
	for _, id := range ids {
		got, err := fourth.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := whole(store, id); !reflect.DeepEqual(got.State, want.State) {
			t.Fatalf("account %s: an unreadable snapshot changed the state", id)
		}
	}
}

// snapshotKey finds the key under which the account's snapshot is kept.
func snapshotKey(t *testing.T, snaps *aggsnap.Store, id string) string {
	t.Helper()
	keys, err := snaps.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "/"+domain.AccountStream(id)) {
			return k
		}
	}
	t.Fatalf("no snapshot of %s", id)
	return ""
}

// A snapshot file that is not one is started afresh: snapshots are only
// ever a head start.
func TestAnUnreadableSnapshotFileIsStartedAfresh(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "snapshots.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a bbolt file ", 512)), 0o600); err != nil {
		t.Fatal(err)
	}
	snaps, err := aggsnap.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer snaps.Close()
	if _, ok, err := snaps.Get(context.Background(), "x"); ok || err != nil {
		t.Fatalf("a fresh file: %v %v", ok, err)
	}
}
