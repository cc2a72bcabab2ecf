// Package eventstore defines the append-only event log every CryptoVPS change
// is written to, and the envelope events travel in. Adapters live in
// subpackages named for their technology (bbolt for the embedded default).
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Expected-version markers for Append. A non-negative value means "the last
// event of the stream has this version" (versions are 0-based), the same
// meaning KurrentDB gives to an expected revision.
const (
	// Any appends whatever the stream's state.
	Any int64 = -2
	// NoStream requires that the stream has no event yet.
	NoStream int64 = -1
)

// ErrWrongVersion is returned by Append when the stream is not at the expected
// version; the caller reloads the stream and decides again.
var ErrWrongVersion = errors.New("eventstore: wrong expected version")

// ErrUnavailable wraps failures of the store itself (I/O, network), which a
// caller reports as a temporary outage rather than a bad request.
var ErrUnavailable = errors.New("eventstore: unavailable")

// ErrClosed is returned by calls made after Close.
var ErrClosed = errors.New("eventstore: closed")

// Position is a place in the global log. The embedded store uses the same
// sequence number for both halves; KurrentDB gives a commit and a prepare
// position. The zero Position is before the first event.
type Position struct {
	Commit  uint64 `json:"commit"`
	Prepare uint64 `json:"prepare"`
}

// Less reports whether p is strictly before q in the global log.
func (p Position) Less(q Position) bool {
	if p.Commit != q.Commit {
		return p.Commit < q.Commit
	}
	return p.Prepare < q.Prepare
}

// IsZero reports whether p is the start of the log.
func (p Position) IsZero() bool { return p == Position{} }

func (p Position) String() string {
	if p.Commit == p.Prepare {
		return fmt.Sprint(p.Commit)
	}
	return fmt.Sprintf("%d/%d", p.Commit, p.Prepare)
}

// Metadata says who caused an event and why, for people reading the log.
type Metadata struct {
	RequestID string `json:"requestId,omitempty"`
	Actor     string `json:"actor,omitempty"`
	Causation string `json:"causation,omitempty"`
}

// Proposed is an event offered to Append. ID must be set by the caller so that
// a retried append can be recognised.
type Proposed struct {
	ID   uuid.UUID
	Type string
	Data json.RawMessage
	Meta Metadata
}

// Event is a stored event: the envelope of the log.
type Event struct {
	ID       uuid.UUID `json:"id"`
	Stream   string    `json:"stream"`
	Version  uint64    `json:"version"`
	Position Position  `json:"position"`
	Type     string    `json:"type"`
	// Data is the payload's JSON. Only events of the lazy reads
	// (Store.ReadAllLazy, ReadStreamLazy) may leave it nil, when they carry
	// the payload in the store's own encoding: Decode and JSON read either.
	Data       json.RawMessage `json:"data"`
	Meta       Metadata        `json:"meta"`
	RecordedAt time.Time       `json:"recordedAt"`

	// body is the payload in codec's encoding, when the store keeps one
	// (see SetBody).
	codec Codec
	body  []byte
}

// Codec reads the encoding some stores keep payloads in instead of JSON,
// because it is smaller or faster to decode.
type Codec interface {
	// Unmarshal decodes body into v as json.Unmarshal decodes the JSON
	// body stands for.
	Unmarshal(body []byte, v any) error
	// AppendJSON appends the JSON body stands for.
	AppendJSON(dst, body []byte) ([]byte, error)
}

// SetBody attaches the payload in a store's own encoding, which Decode
// prefers to Data. A store sets it as it reads; body is the event's to keep.
func (e *Event) SetBody(c Codec, body []byte) { e.codec, e.body = c, body }

// Decode decodes the payload into v as json.Unmarshal(e.Data, v) would,
// from the store's own encoding when the event carries it (no JSON in
// between: replay and the audit decode every event of the log).
func (e *Event) Decode(v any) error {
	if e.codec != nil {
		return e.codec.Unmarshal(e.body, v)
	}
	return json.Unmarshal(e.Data, v)
}

// JSON is the payload's JSON: Data, or made from the store's encoding when
// a lazy read left Data nil.
func (e *Event) JSON() (json.RawMessage, error) {
	if e.Data != nil || e.codec == nil {
		return e.Data, nil
	}
	return e.codec.AppendJSON(nil, e.body)
}

// DropPayload forgets the payload (Data and the store's encoding), for a
// reader that keeps events after decoding them.
func (e *Event) DropPayload() { e.Data, e.codec, e.body = nil, nil, nil }

// AppendResult tells where an append landed.
type AppendResult struct {
	// Version is the version of the last event now in the stream.
	Version uint64
	// Position is the global position of the last appended event.
	Position Position
}

// Store is the port every event store adapter implements.
type Store interface {
	// Append writes events atomically at the end of stream if the stream is at
	// expected (Any, NoStream or the version of its last event), and returns
	// only once they are durable. A retry of an append whose events (by ID)
	// are already the stream's tail returns the original result without
	// writing again. A mismatch returns an error wrapping ErrWrongVersion.
	Append(ctx context.Context, stream string, expected int64, events []Proposed) (AppendResult, error)
	// ReadStream returns the events of stream with version >= from, in order.
	// A stream that does not exist has no events.
	ReadStream(ctx context.Context, stream string, from uint64) ([]Event, error)
	// ReadAll returns at most limit events of the global log strictly after
	// from, in order.
	ReadAll(ctx context.Context, from Position, limit int) ([]Event, error)
	// ReadAllLazy and ReadStreamLazy are ReadAll and ReadStream for a
	// reader that decodes every payload anyway (the start-up replay, the
	// audit, a rebuild, loading an aggregate): an event may leave Data nil
	// and carry the payload in the store's own encoding instead, which
	// Event.Decode reads without JSON in between (Event.JSON makes the JSON
	// when it is wanted after all). A store without such an encoding
	// returns what ReadAll and ReadStream return.
	ReadAllLazy(ctx context.Context, from Position, limit int) ([]Event, error)
	ReadStreamLazy(ctx context.Context, stream string, from uint64) ([]Event, error)
	// ReadStreamPage is ReadStreamLazy bounded: at most limit (positive)
	// events of stream with version >= from, in order. A reader paging
	// through a long stream (the ledger) reads what it shows, not the
	// stream to its end.
	ReadStreamPage(ctx context.Context, stream string, from uint64, limit int) ([]Event, error)
	// Subscribe delivers every event strictly after from, in global order and
	// in batches, to fn: first the history, then live events as they are
	// appended. It returns when ctx ends (with ctx.Err()) or when fn returns
	// an error. A batch is never empty.
	Subscribe(ctx context.Context, from Position, fn func([]Event) error) error
	// Head is the position of the last event in the log (zero when empty).
	Head(ctx context.Context) (Position, error)
	Close() error
}

// Typed is a value that names its own event type: what Propose encodes.
type Typed interface {
	EventType() string
}

// jsonAppender is an event that writes its own JSON, byte for byte what
// json.Marshal would write, where it can (ok), faster: the events written
// most often.
type jsonAppender interface {
	AppendJSON(b []byte) (_ []byte, ok bool)
}

// Propose is the one encoding of facts into events to append: each becomes
// its type name and its JSON, with a fresh id (kept by the caller across
// retries of the same append) and the given metadata.
func Propose[E Typed](meta Metadata, events ...E) ([]Proposed, error) {
	out := make([]Proposed, len(events))
	for i, e := range events {
		var data []byte
		var ok bool
		if a, is := any(e).(jsonAppender); is {
			data, ok = a.AppendJSON(nil)
		}
		if !ok {
			var err error
			if data, err = json.Marshal(e); err != nil {
				return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
			}
		}
		out[i] = Proposed{ID: uuid.New(), Type: e.EventType(), Data: data, Meta: meta}
	}
	return out, nil
}

// ParsePosition reads a Position as String writes it ("7", or "9/8" when
// its halves differ).
func ParsePosition(s string) (Position, error) {
	var p Position
	c, pr, two := strings.Cut(s, "/")
	var err error
	if p.Commit, err = strconv.ParseUint(c, 10, 64); err != nil {
		return Position{}, fmt.Errorf("position %q: %w", s, err)
	}
	p.Prepare = p.Commit
	if two {
		if p.Prepare, err = strconv.ParseUint(pr, 10, 64); err != nil {
			return Position{}, fmt.Errorf("position %q: %w", s, err)
		}
	}
	return p, nil
}
