package bbolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"

	"github.com/cryptovps/cryptovps/eventstore"
)

func fill(t *testing.T, s *Store, n int) {
	t.Helper()
	for i := range n {
		if _, err := s.Append(context.Background(), fmt.Sprint("s", i%4), eventstore.Any, []eventstore.Proposed{ev("X", i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSnapshotIsAConsistentStore takes a snapshot while appends go on: it
// opens as a store holding a prefix of the log, whole.
func TestSnapshotIsAConsistentStore(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, Options{})
	fill(t, s, 50)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Append(ctx, "busy", eventstore.Any, []eventstore.Proposed{ev("Y", i)}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var buf bytes.Buffer
	err := s.Snapshot(ctx, &buf)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head, _ := c.Head(ctx)
	if head.Commit < 50 {
		t.Fatalf("snapshot head %s", head)
	}
	got, err := c.ReadAll(ctx, eventstore.Position{}, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	want, err := s.ReadAll(ctx, eventstore.Position{}, int(head.Commit))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("the snapshot's %d events are not the store's first %d", len(got), len(want))
	}
	// It is a store of its own: the streams index came along.
	if evs, err := c.ReadStream(ctx, "s1", 0); err != nil || len(evs) != 13 {
		t.Fatalf("stream s1 in the copy: %d events, %v", len(evs), err)
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestSnapshotStops(t *testing.T) {
	s := openTemp(t, Options{})
	fill(t, s, 5)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Snapshot(ctx, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if err := s.Snapshot(context.Background(), &failingWriter{after: 4096}); err == nil || !errors.Is(err, eventstore.ErrUnavailable) {
		t.Errorf("failing writer: %v", err)
	}
	_ = s.Close()
	if err := s.Snapshot(context.Background(), &bytes.Buffer{}); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("closed: %v", err)
	}
}
