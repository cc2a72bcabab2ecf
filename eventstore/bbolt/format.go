package bbolt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/jsonpack"
)

// Format 2 keeps an event in a fraction of the bytes of format 1 and reads
// it without parsing JSON. A value of the log is:
//
//	0x02                 the envelope's version (a format 1 value starts with '{')
//	uvarint              the event type's code     (types/<code> holds the name)
//	uvarint              the stream's id           (streamnames/<id> holds the name)
//	uvarint              the version in the stream
//	varint, uvarint      recordedAt: Unix seconds, nanoseconds (UTC)
//	16 bytes             the event id
//	uvarint n, n bytes   the metadata's JSON, packed (jsonpack)
//	the rest             the payload's JSON, packed (jsonpack)
//
// The position is the key. Codes and ids are given once and never change;
// the names they stand for are in the file before any value that uses them.
const envelopeV2 = 0x02

var (
	bucketTypes       = []byte("types")       // be64 code -> type name
	bucketStreamIDs   = []byte("streamids")   // stream name -> be64 id
	bucketStreamNames = []byte("streamnames") // be64 id -> stream name
	bucketSymbols     = []byte("symbols")     // be64 code -> jsonpack symbol
)

// names is a table of names numbered from 1 that only grows. The writer
// adds names after the commit that persisted them; a reader that meets a
// number not here yet (committed, not yet added) reads it from the file.
type names struct {
	mu    sync.RWMutex
	list  []string
	codes map[string]uint64 // only kept for small tables (types)
}

func (n *names) get(code uint64) (string, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if code == 0 || code > uint64(len(n.list)) {
		return "", false
	}
	return n.list[code-1], true
}

func (n *names) len() uint64 {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return uint64(len(n.list))
}

func (n *names) code(name string) (uint64, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	c, ok := n.codes[name]
	return c, ok
}

// add appends names given the codes len+1, len+2, ... in a commit.
func (n *names) add(added []string) {
	if len(added) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range added {
		n.list = append(n.list, a)
		if n.codes != nil {
			n.codes[a] = uint64(len(n.list))
		}
	}
}

// loadNames reads a bucket of be64 code -> name, which must number its
// names 1, 2, 3... without gaps.
func loadNames(tx *bolt.Tx, bucket []byte, withCodes bool) (*names, error) {
	n := &names{}
	if withCodes {
		n.codes = map[string]uint64{}
	}
	b := tx.Bucket(bucket)
	if b == nil {
		return n, nil
	}
	err := b.ForEach(func(k, v []byte) error {
		if len(k) != 8 || binary.BigEndian.Uint64(k) != uint64(len(n.list)+1) {
			return fmt.Errorf("bucket %s: entry %x out of sequence", bucket, k)
		}
		n.list = append(n.list, string(v))
		if withCodes {
			n.codes[string(v)] = uint64(len(n.list))
		}
		return nil
	})
	return n, err
}

// tables are the names format 2 values refer to by number.
type tables struct {
	types   *names
	streams *names
	syms    *jsonpack.Symbols
	codec   *jsonpack.Codec
}

func loadTables(tx *bolt.Tx) (*tables, error) {
	types, err := loadNames(tx, bucketTypes, true)
	if err != nil {
		return nil, err
	}
	streams, err := loadNames(tx, bucketStreamNames, false)
	if err != nil {
		return nil, err
	}
	syms, err := loadNames(tx, bucketSymbols, false)
	if err != nil {
		return nil, err
	}
	if len(syms.list) > jsonpack.MaxSymbols {
		return nil, fmt.Errorf("bucket %s: %d symbols, at most %d", bucketSymbols, len(syms.list), jsonpack.MaxSymbols)
	}
	t := &tables{types: types, streams: streams, syms: jsonpack.NewSymbols(syms.list)}
	t.codec = jsonpack.NewCodec(t.syms)
	return t, nil
}

// encodeBody is the part of a format 2 value the appender can write
// (metadata and payload), after headerRoom bytes where the writer puts the
// envelope's header.
// Invalid JSON in data is an error (jsonpack.PackExact checks it).
func encodeBody(syms *jsonpack.Symbols, e eventstore.Proposed, data []byte) ([]byte, error) {
	var mb [128]byte
	meta, err := appendMetaJSON(mb[:0], e.Meta)
	if err != nil {
		return nil, err
	}
	// Room for the header first (headerRoom), then the packed metadata's
	// length: one byte is kept for it, and the rare longer one moves the
	// metadata up.
	out := make([]byte, headerRoom+1, headerRoom+len(meta)+len(data)/2+24)
	if out, err = jsonpack.PackExact(out, meta, syms); err != nil {
		return nil, err
	}
	if n := len(out) - headerRoom - 1; n < 0x80 {
		out[headerRoom] = byte(n)
	} else {
		var cnt [binary.MaxVarintLen64]byte
		w := binary.PutUvarint(cnt[:], uint64(n))
		out = append(out, cnt[1:w]...)
		copy(out[headerRoom+w:], out[headerRoom+1:headerRoom+1+n])
		copy(out[headerRoom:], cnt[:w])
	}
	return jsonpack.PackExact(out, data, syms)
}

// headerRoom is the most bytes a format 2 header takes (appendHeaderV2:
// the version byte, three uvarints, a varint, the nanoseconds, the id),
// kept free before a body for the writer to put it in.
const headerRoom = 1 + 3*binary.MaxVarintLen64 + binary.MaxVarintLen64 + binary.MaxVarintLen32 + 16

// appendMetaJSON appends m's JSON as json.Marshal writes it: written here
// when every field is plain printable ASCII that JSON keeps as it is (the
// metadata written in practice), by encoding/json otherwise.
func appendMetaJSON(b []byte, m eventstore.Metadata) ([]byte, error) {
	if !plainJSON(m.RequestID) || !plainJSON(m.Actor) || !plainJSON(m.Causation) {
		j, err := json.Marshal(m)
		return append(b, j...), err
	}
	b = append(b, '{')
	field := func(key, v string) {
		if v == "" { // omitempty
			return
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, key...)
		b = append(b, v...)
		b = append(b, '"')
	}
	field(`"requestId":"`, m.RequestID)
	field(`"actor":"`, m.Actor)
	field(`"causation":"`, m.Causation)
	return append(b, '}'), nil
}

// plainJSON: s is printable ASCII that json.Marshal writes unchanged
// between quotes (no quote, backslash or HTML character, which it escapes).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// appendHeaderV2 writes a format 2 value's header.
func appendHeaderV2(b []byte, typ, stream, version uint64, recordedAt time.Time, id uuid.UUID) []byte {
	b = append(b, envelopeV2)
	b = binary.AppendUvarint(b, typ)
	b = binary.AppendUvarint(b, stream)
	b = binary.AppendUvarint(b, version)
	b = binary.AppendVarint(b, recordedAt.Unix())
	b = binary.AppendUvarint(b, uint64(recordedAt.Nanosecond()))
	return append(b, id[:]...)
}

var errCorruptValue = errors.New("corrupt value")

// decodeValue reads an event of the log, of either format. Lazy leaves
// Data nil and attaches the packed payload instead; arena, if not nil, is
// where its bytes are copied (one allocation for a page of events).
func (s *Store) decodeValue(tx *bolt.Tx, key, v []byte, lazy bool, arena *arena) (eventstore.Event, error) {
	seq := binary.BigEndian.Uint64(key)
	if len(v) > 0 && v[0] == '{' {
		var e eventstore.Event
		// Format 1: the JSON envelope. Unmarshal copies everything it keeps,
		// so e stays valid after the transaction unmaps v.
		if err := gojson.Unmarshal(v, &e); err != nil {
			return eventstore.Event{}, fmt.Errorf("corrupt event %d: %w", seq, err)
		}
		return e, nil
	}
	e, err := s.decodeV2(tx, seq, v, lazy, arena)
	if err != nil {
		return eventstore.Event{}, fmt.Errorf("corrupt event %d: %w", seq, err)
	}
	return e, nil
}

func (s *Store) decodeV2(tx *bolt.Tx, seq uint64, v []byte, lazy bool, arena *arena) (eventstore.Event, error) {
	if len(v) == 0 || v[0] != envelopeV2 {
		return eventstore.Event{}, fmt.Errorf("%w: unknown envelope version", errCorruptValue)
	}
	i := 1
	next := func() uint64 {
		if i < 0 {
			return 0
		}
		x, n := binary.Uvarint(v[i:])
		if n <= 0 {
			i = -1
			return 0
		}
		i += n
		return x
	}
	typ, stream, version := next(), next(), next()
	if i < 0 {
		return eventstore.Event{}, errCorruptValue
	}
	sec, n := binary.Varint(v[i:])
	if n <= 0 {
		return eventstore.Event{}, errCorruptValue
	}
	i += n
	nsec := next()
	if i < 0 || nsec >= 1e9 || len(v)-i < 16 {
		return eventstore.Event{}, errCorruptValue
	}
	e := eventstore.Event{Version: version, Position: pos(seq), RecordedAt: time.Unix(sec, int64(nsec)).UTC()}
	copy(e.ID[:], v[i:i+16])
	i += 16
	metaLen := next()
	if i < 0 || metaLen > uint64(len(v)-i) {
		return eventstore.Event{}, errCorruptValue
	}
	var err error
	if e.Type, err = s.name(tx, s.tab.types, bucketTypes, typ); err != nil {
		return eventstore.Event{}, err
	}
	if e.Stream, err = s.name(tx, s.tab.streams, bucketStreamNames, stream); err != nil {
		return eventstore.Event{}, err
	}
	meta := v[i : i+int(metaLen)]
	if arena != nil && arena.meta != nil && string(meta) == string(arena.meta) {
		// The events of one request, or of one worker, share their
		// metadata: decoded once, its strings shared.
		e.Meta = arena.lastMeta
	} else {
		// (Decoded into a variable of its own: only this branch pays for
		// the allocation a decoder's target costs, not every event.)
		var md eventstore.Metadata
		if err := s.tab.codec.Unmarshal(meta, &md); err != nil {
			return eventstore.Event{}, fmt.Errorf("metadata: %w", err)
		}
		e.Meta = md
		if arena != nil {
			arena.meta, arena.lastMeta = append(arena.meta[:0], meta...), md
		}
	}
	payload := v[i+int(metaLen):]
	if !lazy {
		// An eager read gives plain events: the JSON and nothing else.
		var err error
		if e.Data, err = s.tab.codec.AppendJSON(make([]byte, 0, 2*len(payload)+16), payload); err != nil {
			return eventstore.Event{}, fmt.Errorf("payload: %w", err)
		}
		return e, nil
	}
	var body []byte
	if arena != nil {
		body = arena.copy(payload)
	} else {
		body = append([]byte(nil), payload...)
	}
	e.SetBody(s.tab.codec, body)
	return e, nil
}

// arena hands out copies of payloads from large chunks: one allocation for
// many events of a page instead of one each. It also keeps the last
// metadata decoded.
type arena struct {
	buf      []byte
	meta     []byte // packed
	lastMeta eventstore.Metadata
}

// Chunks grow from arenaFirst to arenaChunk: a read of a few events (the
// tail of an aggregate a command loads) does not pay for a page's chunk.
const (
	arenaFirst = 1 << 10
	arenaChunk = 64 << 10
)

func (a *arena) copy(p []byte) []byte {
	if cap(a.buf)-len(a.buf) < len(p) {
		next := min(max(2*cap(a.buf), arenaFirst), arenaChunk)
		a.buf = make([]byte, 0, max(next, len(p)))
	}
	start := len(a.buf)
	a.buf = append(a.buf, p...)
	return a.buf[start:len(a.buf):len(a.buf)]
}

// name finds a code's name: in memory, or, for one committed so recently
// that the writer has not added it yet, in the file as this transaction
// sees it.
func (s *Store) name(tx *bolt.Tx, n *names, bucket []byte, code uint64) (string, error) {
	if name, ok := n.get(code); ok {
		return name, nil
	}
	if b := tx.Bucket(bucket); b != nil {
		if v := b.Get(be64(code)); v != nil {
			return string(v), nil
		}
	}
	return "", fmt.Errorf("%w: unknown code %d in %s", errCorruptValue, code, bucket)
}

// txNames gives codes to new names inside one write transaction; the
// store's tables learn them only once it has committed.
type txNames struct {
	types, streams []string
}

// typeCode returns the code of an event type, giving it one if new.
func (s *Store) typeCode(tx *bolt.Tx, pending *txNames, typ string) (uint64, error) {
	if c, ok := s.tab.types.code(typ); ok {
		return c, nil
	}
	for i, t := range pending.types {
		if t == typ {
			return s.tab.types.len() + uint64(i) + 1, nil
		}
	}
	c := s.tab.types.len() + uint64(len(pending.types)) + 1
	if err := tx.Bucket(bucketTypes).Put(be64(c), []byte(typ)); err != nil {
		return 0, err
	}
	pending.types = append(pending.types, typ)
	return c, nil
}

// streamID returns the id of a stream, giving it one if it has none (a new
// stream, or one written by format 1).
func (s *Store) streamID(tx *bolt.Tx, pending *txNames, stream string) (uint64, error) {
	ids := tx.Bucket(bucketStreamIDs)
	if v := ids.Get([]byte(stream)); v != nil {
		if len(v) != 8 {
			return 0, fmt.Errorf("%w: stream id of %q", errCorruptValue, stream)
		}
		return binary.BigEndian.Uint64(v), nil
	}
	id := s.tab.streams.len() + uint64(len(pending.streams)) + 1
	if err := ids.Put([]byte(stream), be64(id)); err != nil {
		return 0, err
	}
	names := tx.Bucket(bucketStreamNames)
	names.FillPercent = 1 // ids only grow
	if err := names.Put(be64(id), []byte(stream)); err != nil {
		return 0, err
	}
	pending.streams = append(pending.streams, stream)
	return id, nil
}

// persistSymbols writes the symbols appenders have numbered since the last
// commit; it runs in every write transaction, before the values that may
// use them.
func (s *Store) persistSymbols(tx *bolt.Tx) (upTo uint32, err error) {
	first, added := s.tab.syms.Unpersisted()
	b := tx.Bucket(bucketSymbols)
	b.FillPercent = 1
	for i, name := range added {
		if err := b.Put(be64(uint64(first)+uint64(i)), []byte(name)); err != nil {
			return 0, err
		}
	}
	return first + uint32(len(added)) - 1, nil
}
