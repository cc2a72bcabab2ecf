package domain

import (
	"fmt"

	json "github.com/goccy/go-json"
)

// registry maps every stored event name to its decoder. It is the one list
// of event types: adding an event means declaring it (its type, EventType and
// OccurredAt, and ServerOf when it concerns a server) and listing it here.
// It is built once and never changed, so sharing it is safe.
var registry = newRegistry(
	entry[AccountRegistered], entry[AccountSuspended], entry[AccountUnsuspended], entry[ServerLimitSet],
	entry[TopupCreated], entry[TopupPaid], entry[IdempotencyKeyUsed], entry[IdempotencyAnswerRecorded], entry[LedgerPosted],
	entry[ServerDeployed], entry[ServerProvisionStarted], entry[ServerInstanceCreated], entry[ServerActivated],
	entry[ServerFailed], entry[ServerSuspended], entry[ServerResumed], entry[ServerDestroyRequested],
	entry[ServerDestroyed], entry[ServerRootPasswordShown], entry[ServerInstanceHalted], entry[ServerInstanceStarted],
	entry[BackupRequested], entry[BackupCompleted], entry[BackupFailed], entry[BackupRestored],
	entry[BackupDeleted], entry[BackupExpired],
	entry[ClockAdvanced], entry[AccountClockAdvanced],
	entry[ModeRecorded], entry[LimitRequested], entry[LimitRequestDecided],
	entry[SSHKeyAdded], entry[SSHKeyRemoved],
	entry[PasswordChanged], entry[APIKeyCreated], entry[APIKeyDeleted],
	entry[TopupRequested], entry[TopupInvoiced], entry[TopupOpenFailed], entry[TopupStatusChanged], entry[TopupReviewClosed],
	entry[AccountEmailSealed], entry[AccountForgotten],
)

// decoder fills an event of its type with unmarshal (which decodes the
// payload into a pointer, as json.Unmarshal does).
type decoder func(unmarshal func(v any) error) (Event, error)

// entry is the registration of one event type: its name and a decoder that
// returns the event by value, so consumers switch on value types only.
func entry[E Event]() (string, decoder) {
	var zero E
	return zero.EventType(), func(unmarshal func(any) error) (Event, error) {
		var e E
		if err := unmarshal(&e); err != nil {
			return nil, err
		}
		return e, nil
	}
}

func newRegistry(entries ...func() (string, decoder)) map[string]decoder {
	m := make(map[string]decoder, len(entries))
	for _, f := range entries {
		name, dec := f()
		if _, dup := m[name]; dup {
			panic("domain: event type registered twice: " + name)
		}
		m[name] = dec
	}
	return m
}

// EventTypes lists every registered event name.
func EventTypes() []string {
	out := make([]string, 0, len(registry))
	for name := range registry {
		out = append(out, name)
	}
	return out
}

// DecodeEvent turns a stored event back into its domain shape from its
// JSON. Unknown types are an error: a reader must never silently skip a
// fact.
func DecodeEvent(typ string, data []byte) (Event, error) {
	// Every read of the log decodes every event: the faster decoder, with
	// encoding/json's semantics.
	return DecodeEventWith(typ, func(v any) error { return json.Unmarshal(data, v) })
}

// DecodeEventWith is DecodeEvent for a payload that unmarshal decodes (as
// json.Unmarshal would decode its JSON): an event store's own encoding,
// read without JSON in between (eventstore.Event.Decode).
func DecodeEventWith(typ string, unmarshal func(v any) error) (Event, error) {
	dec, ok := registry[typ]
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", typ)
	}
	e, err := dec(unmarshal)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", typ, err)
	}
	return e, nil
}
