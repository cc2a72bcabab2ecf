package domain_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/cryptovps/cryptovps/domain"
)

// eventTypeNames are the names every stored event carries: the registry's
// list. The fuzz target tries every input against each, so that no decoder
// is left to chance mutations of the name.
var eventTypeNames = func() []string {
	names := domain.EventTypes()
	slices.Sort(names)
	return names
}()

// TestEventTypeNamesAreRegistered keeps the list above honest: every name
// decodes, and an event decoded under a name says that name.
func TestEventTypeNamesAreRegistered(t *testing.T) {
	t.Parallel()
	for _, name := range eventTypeNames {
		e, err := domain.DecodeEvent(name, []byte(`{}`))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if e.EventType() != name {
			t.Errorf("%s decoded as a %s", name, e.EventType())
		}
	}
}

// FuzzDecodeEvent: DecodeEvent never panics, whatever the bytes, under the
// fuzzed name and under every registered one; an event it accepts has the
// type it was decoded as, encodes again, and decodes from that encoding to
// the same encoding (a projection or a copy that re-encodes a stored event
// loses nothing). Seeds: testdata/fuzz/FuzzDecodeEvent, a real encoding of
// every event type, full and zero, and the shapes other writers leave
// (optional fields absent, unknown fields, other time zones).
func FuzzDecodeEvent(f *testing.F) {
	f.Add("TopupCreated", []byte(`{"topupId":"t","amount":"10.00","at":"2030-01-02T03:04:05Z"}`))
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		decodeChecked(t, typ, data)
		for _, name := range eventTypeNames {
			decodeChecked(t, name, data)
		}
	})
}

func decodeChecked(t *testing.T, typ string, data []byte) {
	t.Helper()
	e, err := domain.DecodeEvent(typ, data)
	if err != nil {
		if e != nil {
			t.Fatalf("DecodeEvent(%q, %q) returned %#v with the error %v", typ, data, e, err)
		}
		return
	}
	if e.EventType() != typ {
		t.Fatalf("DecodeEvent(%q, %q) is a %s", typ, data, e.EventType())
	}
	again, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("DecodeEvent(%q, %q) cannot be encoded again: %v", typ, data, err)
	}
	back, err := domain.DecodeEvent(typ, again)
	if err != nil {
		t.Fatalf("%s %q decoded, but its encoding %s does not: %v", typ, data, again, err)
	}
	if third, err := json.Marshal(back); err != nil || !bytes.Equal(third, again) {
		t.Fatalf("%s %q: encoding not stable: %s then %s (%v)", typ, data, again, third, err)
	}
}
