package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

const snapshotToken = "operator-token-for-snapshot-tests"

// snapshotServer is the API on a store holding n events, with the snapshot
// route served by what snap makes of the store (nil: none).
func snapshotServer(t *testing.T, n int, snap func(*bbolt.Store) api.Snapshotter) (*httptest.Server, *bbolt.Store) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	for i := range n {
		if _, err := store.Append(context.Background(), fmt.Sprint("test-", i%3), eventstore.Any, []eventstore.Proposed{
			{ID: uuid.New(), Type: "Test", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}}); err != nil {
			t.Fatal(err)
		}
	}
	clock := sandbox.NewClock(time.Now, 0)
	model := memory.New(store)
	proj := projections.NewProjector(store, model, log)
	svc := app.New(app.Deps{Projector: proj, Clock: clock, Payments: sandbox.Payments{},
		Hasher: app.NewHasher(runtime.NumCPU()), Catalog: domain.DefaultCatalog(), Log: log}, app.Config{})
	cfg := api.Config{JWTSecret: []byte("secret"), AdminToken: snapshotToken, Log: log}
	if snap != nil {
		cfg.Snapshots = snap(store)
	}
	hs := httptest.NewServer(api.New(api.Deps{App: svc, Read: model}, cfg))
	t.Cleanup(hs.Close)
	return hs, store
}

func getSnapshot(t *testing.T, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"/admin/eventstore/snapshot", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestSnapshotRoute(t *testing.T) {
	hs, store := snapshotServer(t, 40, func(s *bbolt.Store) api.Snapshotter { return s })
	for _, tok := range []string{"", "not-the-token"} {
		if resp := getSnapshot(t, hs.URL, tok); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("token %q: %s", tok, resp.Status)
		}
	}
	resp := getSnapshot(t, hs.URL, snapshotToken)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("%s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	path := filepath.Join(t.TempDir(), "snap.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The served store is still open and locked; the copy is a store of
	// its own with the same log.
	c, err := bbolt.Open(path, bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	got, err := c.ReadAll(ctx, eventstore.Position{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := store.ReadAll(ctx, eventstore.Position{}, 1000)
	if len(got) != 40 || len(want) != 40 || got[39].ID != want[39].ID {
		t.Fatalf("snapshot has %d events, store %d", len(got), len(want))
	}
}

func TestSnapshotRouteWithoutSnapshots(t *testing.T) {
	hs, _ := snapshotServer(t, 1, nil)
	resp := getSnapshot(t, hs.URL, snapshotToken)
	var body api.Error
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusNotFound || body.Code != "not_found" {
		t.Fatalf("%s %+v", resp.Status, body)
	}
}

// brokenSnapshot fails after part of the file is out.
type brokenSnapshot struct{}

func (brokenSnapshot) Snapshot(_ context.Context, w io.Writer) error {
	if _, err := w.Write(make([]byte, 64<<10)); err != nil {
		return err
	}
	return errors.New("disk error")
}

// A snapshot that fails midway must not reach the client as a whole file.
func TestSnapshotRouteFailingMidway(t *testing.T) {
	hs, _ := snapshotServer(t, 1, func(*bbolt.Store) api.Snapshotter { return brokenSnapshot{} })
	resp := getSnapshot(t, hs.URL, snapshotToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s", resp.Status)
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Fatal("a truncated snapshot read as complete")
	}
}
