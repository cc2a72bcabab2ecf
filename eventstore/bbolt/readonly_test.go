package bbolt

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
)

// A store opened read-only reads like any other, never writes to its file,
// shares it with other readers and not with a writer.
func TestReadOnlyOpenNeverWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fill(t, w, 20)
	if _, err := Open(path, Options{ReadOnly: true, LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("read-only open of a store a writer holds: %v, want ErrLocked", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	r1, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("a second reader: %v", err)
	}
	if head, err := r1.Head(ctx); err != nil || head != pos(20) {
		t.Errorf("head %v, %v; want 20", head, err)
	}
	if all, err := r2.ReadAll(ctx, eventstore.Position{}, 100); err != nil || len(all) != 20 {
		t.Errorf("read %d events, %v; want 20", len(all), err)
	}
	if _, err := r1.Append(ctx, "s0", eventstore.Any, []eventstore.Proposed{ev("X", 99)}); !errors.Is(err, ErrReadOnly) {
		t.Errorf("append: %v, want ErrReadOnly", err)
	}
	if err := r1.Verify(ctx); err != nil {
		t.Errorf("verify: %v", err)
	}
	if err := errors.Join(r1.Close(), r2.Close()); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the file changed under read-only stores")
	}

	if _, err := Open(filepath.Join(t.TempDir(), "new.db"), Options{ReadOnly: true}); err == nil {
		t.Error("read-only open created a store")
	}
}
