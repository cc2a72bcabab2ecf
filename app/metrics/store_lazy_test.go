package metrics_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cryptovps/cryptovps/app/metrics"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
)

// The measured store keeps the embedded store's lazy reads: the start-up
// replay goes through it, and would otherwise make every payload's JSON.
func TestMeasuredStoreReadsLazily(t *testing.T) {
	ctx := context.Background()
	inner, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	s := metrics.New(prometheus.NewRegistry()).Store(inner)
	e := eventstore.Proposed{ID: uuid.New(), Type: "X", Data: json.RawMessage(`{"a":1}`)}
	if _, err := s.Append(ctx, "s", eventstore.NoStream, []eventstore.Proposed{e}); err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func() ([]eventstore.Event, error){
		"all":    func() ([]eventstore.Event, error) { return s.ReadAllLazy(ctx, eventstore.Position{}, 10) },
		"stream": func() ([]eventstore.Event, error) { return s.ReadStreamLazy(ctx, "s", 0) },
	} {
		got, err := read()
		if err != nil || len(got) != 1 {
			t.Fatalf("%s: %d events, %v", name, len(got), err)
		}
		if got[0].Data != nil {
			t.Errorf("%s: the lazy read made the JSON", name)
		}
		var v struct{ A int }
		if err := got[0].Decode(&v); err != nil || v.A != 1 {
			t.Errorf("%s: decoded %+v, %v", name, v, err)
		}
	}
}
