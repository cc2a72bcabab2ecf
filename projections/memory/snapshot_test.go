package memory_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/benchlog"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// upTo folds the log into a fresh model up to about n events.
func upTo(t testing.TB, store eventstore.Store, n int) *memory.Model {
	t.Helper()
	ctx := context.Background()
	m := memory.New()
	var from eventstore.Position
	for done := 0; done < n; {
		page, err := store.ReadAllLazy(ctx, from, min(1000, n-done))
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if err := m.Apply(ctx, page); err != nil {
			t.Fatal(err)
		}
		from, done = page[len(page)-1].Position, done+len(page)
	}
	return m
}

func cold(t testing.TB, store eventstore.Store) *memory.Model {
	t.Helper()
	m := memory.New()
	if err := projections.NewProjector(store, m, quiet).CatchUp(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return m
}

// fromSnapshot loads path into a fresh model and folds the log's tail.
func fromSnapshot(t testing.TB, store eventstore.Store, path string) (*memory.Model, error) {
	t.Helper()
	m := memory.New()
	if _, err := m.LoadSnapshot(context.Background(), store, path); err != nil {
		if cp, _ := m.Checkpoint(context.Background()); !cp.IsZero() {
			t.Fatalf("a failed load left the model at %s", cp)
		}
		return m, err
	}
	if err := projections.NewProjector(store, m, quiet).CatchUp(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return m, nil
}

func write(t testing.TB, m *memory.Model, store eventstore.Store, path string) eventstore.Position {
	t.Helper()
	pos, ok, err := m.WriteSnapshot(context.Background(), store, path)
	if err != nil || !ok {
		t.Fatalf("write snapshot: %v %v", ok, err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot file: %v %v", info, err)
	}
	return pos
}

// TestSnapshotLoadsWhatReplayFolds: a model loaded from a snapshot, and the
// log after it, is the model a replay of the whole log folds, field for
// field (the runners start from its accounts).
func TestSnapshotLoadsWhatReplayFolds(t *testing.T) {
	store, n := benchlog.Store(t, 8000)
	n += addBackups(t, store, 40)
	want := cold(t, store)
	dir := t.TempDir()
	for _, at := range []int{1, n / 3, n - 30, n} {
		path := filepath.Join(dir, "read-model.snap")
		write(t, upTo(t, store, at), store, path)
		got, err := fromSnapshot(t, store, path)
		if err != nil {
			t.Fatalf("at %d: %v", at, err)
		}
		if d := memory.Diff(got, want); d != "" {
			t.Fatalf("snapshot at %d of %d events and the tail differ from the replay: %s", at, n, d)
		}
	}
	if a, b, f := memory.Size(want); a == 0 || b == 0 || f < a+b {
		t.Fatalf("the history folds too little to test: %d accounts, %d backups, %d streams", a, b, f)
	}
}

// addBackups appends k backups of the log's accounts, in every state, and
// returns how many events that is (tests/history takes none).
func addBackups(t testing.TB, store eventstore.Store, k int) int {
	t.Helper()
	ctx := context.Background()
	accounts, err := cold(t, store).WorkAccounts(ctx)
	if err != nil || len(accounts) == 0 {
		t.Fatalf("no accounts to back up: %v", err)
	}
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	events := 0
	for i := range k {
		id := uuid.NewString()
		evs := []domain.Event{domain.BackupRequested{BackupID: id, AccountID: accounts[i%len(accounts)], ServerID: uuid.NewString(),
			InstanceID: "i-1", Label: fmt.Sprint("backup ", i), Plan: "vc2-1c-1gb", Region: "ewr", At: at, ExpiresAt: at.Add(7 * 24 * time.Hour)}}
		switch i % 4 {
		case 1:
			evs = append(evs, domain.BackupCompleted{SnapshotID: "snap-" + id, At: at.Add(time.Minute)})
		case 2:
			evs = append(evs, domain.BackupCompleted{SnapshotID: "snap-" + id, At: at.Add(time.Minute)},
				domain.BackupRestored{ServerID: uuid.NewString(), At: at.Add(time.Hour)},
				domain.BackupRestored{ServerID: uuid.NewString(), At: at.Add(2 * time.Hour)})
		case 3:
			evs = append(evs, domain.BackupFailed{Reason: "no", At: at.Add(time.Minute)})
		}
		props, err := eventstore.Propose(eventstore.Metadata{Actor: "test"}, evs...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Append(ctx, domain.BackupStream(id), eventstore.NoStream, props); err != nil {
			t.Fatal(err)
		}
		events += len(evs)
	}
	return events
}

// TestSnapshotOfAnEmptyModel: nothing folded, nothing written.
func TestSnapshotOfAnEmptyModel(t *testing.T) {
	store, _ := benchlog.Store(t, 1000)
	path := filepath.Join(t.TempDir(), "read-model.snap")
	if _, ok, err := memory.New().WriteSnapshot(context.Background(), store, path); ok || err != nil {
		t.Fatalf("wrote %v, %v", ok, err)
	}
	if _, err := memory.New().LoadSnapshot(context.Background(), store, path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("loaded a missing snapshot: %v", err)
	}
}

// copyLog appends the first n events of src to a fresh store, ids and
// all (id changes them, when not nil): the same log, as a backup taken
// earlier holds it, or another log of the same shape.
func copyLog(t testing.TB, src eventstore.Store, n int, id func(eventstore.Event) uuid.UUID) eventstore.Store {
	t.Helper()
	ctx := context.Background()
	dst, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dst.Close() })
	page, err := src.ReadAll(ctx, eventstore.Position{}, n)
	if err != nil {
		t.Fatal(err)
	}
	// Runs of one stream's events in one append each: the same positions.
	for len(page) > 0 {
		k := 1
		for k < len(page) && page[k].Stream == page[0].Stream {
			k++
		}
		var props []eventstore.Proposed
		for _, ev := range page[:k] {
			p := eventstore.Proposed{ID: ev.ID, Type: ev.Type, Data: ev.Data, Meta: ev.Meta}
			if id != nil {
				p.ID = id(ev)
			}
			props = append(props, p)
		}
		res, err := dst.Append(ctx, page[0].Stream, eventstore.Any, props)
		if err != nil {
			t.Fatal(err)
		}
		if res.Position != page[k-1].Position {
			t.Fatalf("copied to %s, was at %s", res.Position, page[k-1].Position)
		}
		page = page[k:]
	}
	return dst
}

// TestSnapshotNotOfThisLog: a snapshot newer than the log (the log
// restored from an older copy, or truncated) and one of another log are
// not loaded; one older than the log is, and the tail folded after it.
func TestSnapshotNotOfThisLog(t *testing.T) {
	store, n := benchlog.Store(t, 2000)
	older := copyLog(t, store, n/2, nil)
	path := filepath.Join(t.TempDir(), "read-model.snap")

	write(t, cold(t, store), store, path)
	if _, err := fromSnapshot(t, older, path); !errors.Is(err, memory.ErrSnapshotMismatch) {
		t.Fatalf("a snapshot newer than the log: %v", err)
	}

	write(t, cold(t, older), older, path)
	got, err := fromSnapshot(t, store, path)
	if err != nil {
		t.Fatal(err)
	}
	if d := memory.Diff(got, cold(t, store)); d != "" {
		t.Fatal(d)
	}

	// Another log: the same history, other events (ids).
	other := copyLog(t, store, n/2, func(eventstore.Event) uuid.UUID { return uuid.New() })
	write(t, cold(t, older), older, path)
	if _, err := fromSnapshot(t, other, path); !errors.Is(err, memory.ErrSnapshotMismatch) {
		t.Fatalf("a snapshot of another log: %v", err)
	}
}

// TestDamagedSnapshotIgnored: a truncated, damaged, other-format or
// other-shape file, or a temporary file a crash left, is never loaded.
func TestDamagedSnapshotIgnored(t *testing.T) {
	store, _ := benchlog.Store(t, 2000)
	dir := t.TempDir()
	path := filepath.Join(dir, "read-model.snap")
	write(t, cold(t, store), store, path)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// resum recomputes the checksum, so that only the change is wrong.
	resum := func(b []byte) []byte {
		end := len(b) - 4
		binary.LittleEndian.PutUint32(b[end:], crc32.Checksum(b[:end], crc32.MakeTable(crc32.Castagnoli)))
		return b
	}
	change := func(at int, to byte) []byte {
		b := append([]byte(nil), good...)
		b[at] ^= to
		return b
	}
	for name, c := range map[string]struct {
		data []byte
		says string
	}{
		"empty":            {nil, "truncated"},
		"truncated":        {good[:len(good)/2], "checksum"},
		"one byte short":   {good[:len(good)-1], "checksum"},
		"a byte flipped":   {change(len(good)/2, 0x10), "checksum"},
		"not a snapshot":   {[]byte(strings.Repeat("x", 100)), "not a snapshot"},
		"another format":   {resum(change(8, 0x7f)), "format"},
		"another shape":    {resum(change(14, 0x01)), "shape"},
		"another position": {resum(change(28, 0x01)), "does not match"},
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := fromSnapshot(t, store, path)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("loaded, or not for the reason: %v (want %q)", err, c.says)
			}
		})
	}

	// A crash while writing leaves a temporary file, never the file: it is
	// not read, and the next load removes it.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp-123"
	if err := os.WriteFile(tmp, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fromSnapshot(t, store, path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("loaded beside a partial temporary file: %v", err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover kept: %v", err)
	}
}

// TestSnapshotWhileApplying: a snapshot taken while the projector folds
// is the state at one event, whole: loading it and the tail gives the
// replay's model.
func TestSnapshotWhileApplying(t *testing.T) {
	store, _ := benchlog.Store(t, 3000)
	want := cold(t, store)
	path := filepath.Join(t.TempDir(), "read-model.snap")
	m := memory.New()
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		if err := projections.NewProjector(store, m, quiet).CatchUp(context.Background(), nil); err != nil {
			t.Error(err)
		}
	})
	for wrote := false; ; {
		select {
		case <-done:
			wg.Wait()
			if !wrote {
				write(t, m, store, path)
			}
			got, err := fromSnapshot(t, store, path)
			if err != nil {
				t.Fatal(err)
			}
			if d := memory.Diff(got, want); d != "" {
				t.Fatal(d)
			}
			return
		default:
		}
		if _, ok, err := m.WriteSnapshot(context.Background(), store, path); err != nil {
			t.Fatal(err)
		} else if ok {
			wrote = true
		}
	}
}

// TestSnapshotShapeIsStable: the same build names the same shape every
// time (it is not read from a map in its random order).
func TestSnapshotShapeIsStable(t *testing.T) {
	if a, b := memory.ShapeKey(), memory.ShapeKey(); a != b {
		t.Fatalf("%s, then %s", a, b)
	}
}
