// Package bbolt is the embedded default event store: the whole event log of a
// CryptoVPS installation in one crash-safe bbolt file, so that a single binary
// runs without an external database. Larger installations can swap in another
// eventstore.Store adapter (KurrentDB) without touching callers.
//
// File layout (format 2):
//
//	meta/format          "2"
//	log/<seq>            the event, seq 8-byte big-endian, from 1 (see format.go)
//	streams/<name>/<ver> 8-byte big-endian seq followed by the 16-byte event ID
//	streamids/<name>     the stream's id, 8-byte big-endian
//	streamnames/<id>     the stream's name
//	types/<code>         an event type's name
//	symbols/<code>       a key or prefix packed payloads refer to (jsonpack)
//
// Format 1 had only meta, log and streams, and kept each event as its JSON
// envelope. Format 2 reads those values as they are: opening a format 1 file
// to write marks it format 2 (a build that reads only format 1 then refuses
// it rather than misread it), and the events appended from then on are
// written the compact way; nothing is rewritten.
//
// The event ID is kept next to the sequence in the stream index so that the
// idempotency check of a retried append does not have to decode (possibly
// large) events from the log.
//
// The file is locked while a Store has it open, so only one process serves it.
// All appends go through one writer goroutine that packs whatever appends are
// waiting into a single write transaction, so concurrent callers share one
// fsync (group commit) while each keeps its own result.
package bbolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"

	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// ErrLocked is returned by Open when another Store (usually another process)
// holds the file.
var ErrLocked = errors.New("eventstore/bbolt: database file is locked by another process")

const (
	formatVersion = "2"
	// formatV1 is the format this build still reads, and upgrades.
	formatV1 = "1"
)

var errNothingWritten = errors.New("nothing written")

var (
	bucketMeta    = []byte("meta")
	bucketLog     = []byte("log")
	bucketStreams = []byte("streams")
	keyFormat     = []byte("format")
)

const (
	// subscribeBatch bounds a catch-up read so that a subscriber far behind
	// neither holds a read transaction (which can stall the writer's remap)
	// nor memory for long.
	subscribeBatch = 512
	// maxBatchBytes stops a group commit from growing without bound when
	// callers append large events; the rest waits for the next transaction.
	maxBatchBytes = 32 << 20

	defaultLockTimeout = time.Second
	defaultMaxBatch    = 256
)

// Options tune a Store. The zero value is usable.
type Options struct {
	// Now stamps RecordedAt (converted to UTC). Defaults to time.Now; tests
	// set it for reproducible events.
	Now func() time.Time
	// LockTimeout is how long Open waits for the file lock before reporting
	// ErrLocked. Defaults to 1s: long enough to ride over a restarting
	// process, short enough that a second instance fails visibly.
	LockTimeout time.Duration
	// MaxBatch caps how many appends share one transaction. Defaults to 256.
	MaxBatch int
	// FileMode is used when the file is created. Defaults to 0600, since
	// events may contain customer data.
	FileMode os.FileMode
	// InitialMmapSize pre-sizes the memory map (bytes) so that growth of the
	// file does not make the writer wait for long-running readers. Zero lets
	// bbolt grow it on demand.
	InitialMmapSize int
	// ReadOnly opens an existing store without ever writing to the file (a
	// backup being checked, perhaps on read-only media): Append fails with
	// ErrReadOnly. Other read-only opens may share the file; a writer may
	// not.
	ReadOnly bool
}

// ErrReadOnly is Append on a store opened with Options.ReadOnly.
var ErrReadOnly = errors.New("eventstore/bbolt: opened read-only")

// Store is an eventstore.Store backed by one bbolt file. It is safe for
// concurrent use.
type Store struct {
	db       *bolt.DB
	path     string
	now      func() time.Time
	maxBatch int
	readOnly bool
	tab      *tables

	reqs       chan *appendReq
	done       chan struct{} // closed by Close: the writer stops taking work
	writerDone chan struct{} // closed by the writer when it has exited

	commits atomic.Uint64 // write transactions, to observe group commit

	closeOnce sync.Once
	closeErr  error

	mu     sync.Mutex
	head   uint64        // last committed sequence
	notify chan struct{} // closed (and replaced) at every commit and at Close
	closed bool
}

var _ eventstore.Store = (*Store)(nil)

// Open opens or creates the event store file at path. It fails with an error
// wrapping ErrLocked if another process has the file open.
func Open(path string, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = defaultLockTimeout
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = defaultMaxBatch
	}
	if opts.FileMode == 0 {
		opts.FileMode = 0o600
	}
	db, err := bolt.Open(path, opts.FileMode, &bolt.Options{
		Timeout: opts.LockTimeout,
		// The hashmap freelist keeps commits fast once the log is large and
		// fragmented; the log is append-only, so smallest-page reuse the
		// array freelist offers buys nothing.
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: opts.InitialMmapSize,
		ReadOnly:        opts.ReadOnly,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (is another instance running with the same data directory?)", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("eventstore/bbolt: open %s: %w: %w", path, eventstore.ErrUnavailable, err)
	}
	if err := checkSize(db, path); err != nil {
		_ = db.Close()
		return nil, err
	}
	var head uint64
	var tab *tables
	if opts.ReadOnly {
		head, tab, err = readHead(db, path)
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		s := &Store{db: db, path: path, now: opts.Now, maxBatch: opts.MaxBatch, readOnly: true, tab: tab,
			done: make(chan struct{}), writerDone: make(chan struct{}), head: head, notify: make(chan struct{})}
		close(s.writerDone) // no writer
		return s, nil
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(keyFormat); {
		case v == nil, string(v) == formatV1:
			if err := meta.Put(keyFormat, []byte(formatVersion)); err != nil {
				return err
			}
		case string(v) != formatVersion:
			return fmt.Errorf("eventstore/bbolt: %s has format %q, this build reads %q and %q", path, v, formatV1, formatVersion)
		}
		log, err := tx.CreateBucketIfNotExists(bucketLog)
		if err != nil {
			return err
		}
		for _, b := range [][]byte{bucketStreams, bucketStreamIDs, bucketStreamNames, bucketTypes, bucketSymbols} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if k, _ := log.Cursor().Last(); k != nil {
			head = binary.BigEndian.Uint64(k)
		}
		tab, err = loadTables(tx)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("eventstore/bbolt: initialise %s: %w: %w", path, eventstore.ErrUnavailable, err)
	}
	s := &Store{
		db:         db,
		path:       path,
		now:        opts.Now,
		maxBatch:   opts.MaxBatch,
		tab:        tab,
		reqs:       make(chan *appendReq, opts.MaxBatch),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		head:       head,
		notify:     make(chan struct{}),
	}
	go s.writer()
	return s, nil
}

// Path is the file the store was opened on.
func (s *Store) Path() string { return s.path }

// Close stops the writer, fails appends still waiting with ErrClosed, wakes
// subscribers (they return ErrClosed) and closes the file. Appends already
// being committed finish first. Calling Close again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.notify)
		s.mu.Unlock()
		close(s.done)
		<-s.writerDone
		// bolt waits for open read transactions; ours are short.
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("eventstore/bbolt: close %s: %w: %w", s.path, eventstore.ErrUnavailable, err)
		}
	})
	return s.closeErr
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Head is the position of the last committed event.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Position{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return eventstore.Position{}, eventstore.ErrClosed
	}
	return pos(s.head), nil
}

// ---- append ----

type appendReq struct {
	ctx      context.Context
	stream   string
	expected int64
	ids      []uuid.UUID
	types    []string
	// bodies are the events' metadata and payload, packed (format.go):
	// all but the header only the writer can write (type code, stream id,
	// version, recordedAt, id), for which each keeps headerRoom bytes
	// before it. Encoding them here keeps the serialised writer doing
	// little more than copying bytes.
	bodies [][]byte
	size   int
	reply  chan appendResult // buffered: the writer never waits for a caller
}

type appendResult struct {
	res eventstore.AppendResult
	err error
}

// Append implements eventstore.Store. If ctx ends while the append waits for
// the writer, Append returns ctx.Err() and the append may or may not have
// been committed; retrying with the same event IDs is safe.
func (s *Store) Append(ctx context.Context, stream string, expected int64, events []eventstore.Proposed) (eventstore.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	req, err := s.newAppendReq(ctx, stream, expected, events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if s.isClosed() {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	if s.readOnly {
		return eventstore.AppendResult{}, ErrReadOnly
	}
	select {
	case s.reqs <- req:
	case <-s.done:
		return eventstore.AppendResult{}, eventstore.ErrClosed
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r.res, r.err
	case <-ctx.Done():
		return eventstore.AppendResult{}, ctx.Err()
	case <-s.writerDone:
		// The send above may have raced with Close and landed after the
		// writer's final drain; the writer answers everything it took
		// before exiting, so no reply now means nobody will answer.
		select {
		case r := <-req.reply:
			return r.res, r.err
		default:
			return eventstore.AppendResult{}, eventstore.ErrClosed
		}
	}
}

// Commits is the number of write transactions committed so far: appends
// over commits is how many appends a group commit carries.
func (s *Store) Commits() uint64 { return s.commits.Load() }

func (s *Store) newAppendReq(ctx context.Context, stream string, expected int64, events []eventstore.Proposed) (*appendReq, error) {
	switch {
	case stream == "":
		return nil, errors.New("eventstore/bbolt: append: empty stream name")
	case len(stream) > bolt.MaxKeySize:
		return nil, fmt.Errorf("eventstore/bbolt: append: stream name longer than %d bytes", bolt.MaxKeySize)
	case len(events) == 0:
		return nil, fmt.Errorf("eventstore/bbolt: append to %q: no events", stream)
	case expected < eventstore.Any:
		return nil, fmt.Errorf("eventstore/bbolt: append to %q: invalid expected version %d", stream, expected)
	}
	req := &appendReq{
		ctx:      ctx,
		stream:   stream,
		expected: expected,
		ids:      make([]uuid.UUID, len(events)),
		types:    make([]string, len(events)),
		bodies:   make([][]byte, len(events)),
		reply:    make(chan appendResult, 1),
	}
	for i, e := range events {
		if e.ID == uuid.Nil {
			return nil, fmt.Errorf("eventstore/bbolt: append to %q: event %d has no ID", stream, i)
		}
		if e.Type == "" {
			return nil, fmt.Errorf("eventstore/bbolt: append to %q: event %d (%s) has no type", stream, i, e.ID)
		}
		data := e.Data
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		// The payload reads back as its compact JSON, byte for byte, as
		// format 1 kept it (no HTML escaping). Packing it checks it is JSON.
		body, err := encodeBody(s.tab.syms, e, data)
		if err != nil {
			if !json.Valid(data) {
				return nil, fmt.Errorf("eventstore/bbolt: append to %q: event %d (%s): data is not valid JSON", stream, i, e.ID)
			}
			return nil, fmt.Errorf("eventstore/bbolt: append to %q: encode event %d (%s): %w", stream, i, e.ID, err)
		}
		if len(body)-headerRoom > bolt.MaxValueSize-256 || len(stream) > bolt.MaxValueSize/2 {
			return nil, fmt.Errorf("eventstore/bbolt: append to %q: event %d (%s) is too large", stream, i, e.ID)
		}
		req.ids[i] = e.ID
		req.types[i] = e.Type
		req.bodies[i] = body
		req.size += len(body) - headerRoom
	}
	return req, nil
}

// writer is the only goroutine that writes to the database.
func (s *Store) writer() {
	defer close(s.writerDone)
	batch := make([]*appendReq, 0, s.maxBatch)
	for {
		// Prefer stopping over taking more work once Close has begun.
		select {
		case <-s.done:
			s.drain()
			return
		default:
		}
		var first *appendReq
		select {
		case first = <-s.reqs:
		case <-s.done:
			s.drain()
			return
		}
		// Whatever queued up while the previous transaction was fsyncing
		// rides along in this one: that is the group commit.
		batch = append(batch[:0], first)
		size := first.size
	collect:
		for len(batch) < s.maxBatch && size < maxBatchBytes {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
				size += r.size
			default:
				break collect
			}
		}
		s.commit(batch)
		clear(batch) // let answered requests be collected
	}
}

func (s *Store) drain() {
	for {
		select {
		case r := <-s.reqs:
			r.reply <- appendResult{err: eventstore.ErrClosed}
		default:
			return
		}
	}
}

// commit writes the batch in one transaction and answers every request.
func (s *Store) commit(batch []*appendReq) {
	results := make([]appendResult, len(batch))
	var last uint64
	var added txNames
	var symsUpTo uint32
	err := s.db.Update(func(tx *bolt.Tx) error {
		added = txNames{}
		var err error
		if symsUpTo, err = s.persistSymbols(tx); err != nil {
			return err
		}
		last, err = s.applyAll(tx, batch, results, &added)
		if err == nil && last == 0 {
			// Only refusals and retries: rolling back spares an fsync.
			return errNothingWritten
		}
		return err
	})
	if err == errNothingWritten {
		err = nil
	}
	if err != nil && len(batch) > 1 {
		// A storage error in the middle of one append aborts the whole
		// transaction. Redo each append alone so that only the ones that
		// really cannot be written fail.
		for _, r := range batch {
			s.commit([]*appendReq{r})
		}
		return
	}
	if err != nil {
		for i := range results {
			results[i] = appendResult{err: s.storageErr("append", err)}
		}
	} else if last != 0 {
		// The names this commit numbered are in the file: readers may now
		// find them in memory.
		s.tab.types.add(added.types)
		s.tab.streams.add(added.streams)
		s.tab.syms.Persisted(symsUpTo)
		s.commits.Add(1)
		s.publish(last)
	}
	for i, r := range batch {
		r.reply <- results[i]
	}
}

// applyAll applies each request in order against the state the earlier ones
// in the same transaction left. A request refused for its own reasons gets
// its error in results and writes nothing; a storage error is returned and
// aborts the transaction. Names numbered on the way are added to added.
func (s *Store) applyAll(tx *bolt.Tx, batch []*appendReq, results []appendResult, added *txNames) (last uint64, err error) {
	log := tx.Bucket(bucketLog)
	streams := tx.Bucket(bucketStreams)
	if log == nil || streams == nil {
		return 0, errors.New("missing buckets")
	}
	// Keys only grow: full pages, where bbolt's default of half-full pages
	// after a split suits random inserts.
	log.FillPercent = 1
	var seq uint64
	if k, _ := log.Cursor().Last(); k != nil {
		seq = binary.BigEndian.Uint64(k)
	}
	now := s.now().UTC()
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			// Nobody is waiting for this answer any more; writing it anyway
			// would surprise a caller that was told it failed.
			results[i] = appendResult{err: err}
			continue
		}
		sb := streams.Bucket([]byte(r.stream))
		cur := int64(-1) // version of the stream's last event, -1 if none
		if sb != nil {
			if k, _ := sb.Cursor().Last(); k != nil {
				cur = int64(binary.BigEndian.Uint64(k))
			}
		}
		if res, ok := retried(sb, cur, r.ids); ok {
			results[i] = appendResult{res: res}
			continue
		}
		if r.expected != eventstore.Any && r.expected != cur {
			results[i] = appendResult{err: fmt.Errorf("%w: stream %q expected %s, actual %s",
				eventstore.ErrWrongVersion, r.stream, versionString(r.expected), versionString(cur))}
			continue
		}
		if sb == nil {
			if sb, err = streams.CreateBucket([]byte(r.stream)); err != nil {
				return 0, err
			}
		}
		sb.FillPercent = 1
		streamID, err := s.streamID(tx, added, r.stream)
		if err != nil {
			return 0, err
		}
		for j, body := range r.bodies {
			seq++
			version := uint64(cur + 1 + int64(j))
			typ, err := s.typeCode(tx, added, r.types[j])
			if err != nil {
				return 0, err
			}
			// bolt keeps keys and values by reference until commit, so
			// every Put gets slices of its own: the value is the body with
			// its header written in the room left before it (this request's
			// memory, which nothing else reads), and the keys and index
			// entry share one allocation.
			var hb [headerRoom]byte
			h := appendHeaderV2(hb[:0], typ, streamID, version, now, r.ids[j])
			val := body[headerRoom-len(h):]
			copy(val, h)
			kb := make([]byte, 8+24+8)
			logKey, idx, verKey := kb[:8:8], kb[8:32:32], kb[32:]
			binary.BigEndian.PutUint64(logKey, seq)
			binary.BigEndian.PutUint64(idx[:8], seq)
			copy(idx[8:], r.ids[j][:])
			binary.BigEndian.PutUint64(verKey, version)
			if err := log.Put(logKey, val); err != nil {
				return 0, err
			}
			if err := sb.Put(verKey, idx); err != nil {
				return 0, err
			}
		}
		results[i] = appendResult{res: eventstore.AppendResult{
			Version:  uint64(cur) + uint64(len(r.bodies)),
			Position: pos(seq),
		}}
		last = seq
	}
	return last, nil
}

// retried reports whether ids are exactly the IDs at the tail of the stream,
// i.e. this append already happened, and the result it had.
func retried(sb *bolt.Bucket, cur int64, ids []uuid.UUID) (eventstore.AppendResult, bool) {
	n := int64(len(ids))
	if sb == nil || cur+1 < n {
		return eventstore.AppendResult{}, false
	}
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], uint64(cur+1-n))
	c := sb.Cursor()
	var lastSeq uint64
	i := 0
	for k, v := c.Seek(key[:]); k != nil && i < len(ids); k, v = c.Next() {
		if len(v) != 24 || !bytes.Equal(v[8:], ids[i][:]) {
			return eventstore.AppendResult{}, false
		}
		lastSeq = binary.BigEndian.Uint64(v[:8])
		i++
	}
	if i != len(ids) {
		return eventstore.AppendResult{}, false
	}
	return eventstore.AppendResult{Version: uint64(cur), Position: pos(lastSeq)}, true
}

func versionString(v int64) string {
	switch {
	case v == eventstore.Any:
		return "any"
	case v < 0:
		return "no stream"
	default:
		return fmt.Sprint(v)
	}
}

// publish makes a commit visible to Head and wakes waiting subscribers.
func (s *Store) publish(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.head = seq
	if !s.closed { // Close already closed notify for good
		close(s.notify)
		s.notify = make(chan struct{})
	}
}

// ---- read ----

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Event, error) {
	return s.readStream(ctx, stream, from, false, 0)
}

// ReadStreamLazy implements eventstore.Store: ReadStream without
// making the payloads' JSON, for a caller that decodes them (Event.Decode).
func (s *Store) ReadStreamLazy(ctx context.Context, stream string, from uint64) ([]eventstore.Event, error) {
	return s.readStream(ctx, stream, from, true, 0)
}

// ReadStreamPage implements eventstore.Store: ReadStreamLazy that stops
// after limit events.
func (s *Store) ReadStreamPage(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.Event, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("eventstore/bbolt: read stream: limit must be positive, got %d", limit)
	}
	return s.readStream(ctx, stream, from, true, limit)
}

// readStream reads from version from to the end of the stream, or at most
// limit events when limit is positive.
func (s *Store) readStream(ctx context.Context, stream string, from uint64, lazy bool, limit int) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	var events []eventstore.Event
	var a arena
	err := s.db.View(func(tx *bolt.Tx) error {
		log := tx.Bucket(bucketLog)
		sb := tx.Bucket(bucketStreams).Bucket([]byte(stream))
		if sb == nil || stream == "" {
			return nil
		}
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], from)
		c := sb.Cursor()
		n := 0
		for k, v := c.Seek(key[:]); k != nil && (limit <= 0 || n < limit); k, v = c.Next() {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if len(v) != 24 {
				return fmt.Errorf("corrupt index entry for stream %q version %d", stream, binary.BigEndian.Uint64(k))
			}
			val := log.Get(v[:8])
			if val == nil {
				return fmt.Errorf("event %d missing from log", binary.BigEndian.Uint64(v[:8]))
			}
			e, err := s.decodeValue(tx, v[:8], val, lazy, &a)
			if err != nil {
				return err
			}
			events = append(events, e)
		}
		return nil
	})
	if err != nil {
		return nil, s.readErr(ctx, "read stream "+stream, err)
	}
	return events, nil
}

// ReadAll implements eventstore.Store. limit must be positive: a reader paging
// through the log with limit 0 would otherwise think it had caught up.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("eventstore/bbolt: read all: limit must be positive, got %d", limit)
	}
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	events, err := s.readAll(from.Commit, limit, false)
	if err != nil {
		return nil, s.readErr(ctx, "read all", err)
	}
	return events, nil
}

// ReadAllLazy implements eventstore.Store: ReadAll without making the
// payloads' JSON (Data is nil unless the event is of format 1): the
// start-up replay and the audit decode them with Event.Decode.
func (s *Store) ReadAllLazy(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("eventstore/bbolt: read all: limit must be positive, got %d", limit)
	}
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	events, err := s.readAll(from.Commit, limit, true)
	if err != nil {
		return nil, s.readErr(ctx, "read all", err)
	}
	return events, nil
}

func (s *Store) readAll(after uint64, limit int, lazy bool) ([]eventstore.Event, error) {
	var events []eventstore.Event
	var a arena
	err := s.db.View(func(tx *bolt.Tx) error {
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], after+1)
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := c.Seek(key[:]); k != nil && len(events) < limit; k, v = c.Next() {
			e, err := s.decodeValue(tx, k, v, lazy, &a)
			if err != nil {
				return err
			}
			if events == nil {
				events = make([]eventstore.Event, 0, min(limit, 4096))
			}
			events = append(events, e)
		}
		return nil
	})
	return events, err
}

// Subscribe implements eventstore.Store. It returns ErrClosed when the store
// is closed.
func (s *Store) Subscribe(ctx context.Context, from eventstore.Position, fn func([]eventstore.Event) error) error {
	after := from.Commit
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Take the notification channel before reading: a commit that lands
		// after the read closes this very channel, so it cannot be missed.
		s.mu.Lock()
		wake, head, closed := s.notify, s.head, s.closed
		s.mu.Unlock()
		if closed {
			return eventstore.ErrClosed
		}
		if after >= head {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		events, err := s.readAll(after, subscribeBatch, false)
		if err != nil {
			return s.readErr(ctx, "subscribe", err)
		}
		if len(events) == 0 {
			// head is only published after commit, so this means the log
			// is shorter than head, which should not happen; wait rather
			// than spin.
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := fn(events); err != nil {
			return err
		}
		after = events[len(events)-1].Position.Commit
	}
}

func be64(n uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n)
}

func pos(seq uint64) eventstore.Position {
	return eventstore.Position{Commit: seq, Prepare: seq}
}

// readErr classifies a failed read: the caller's cancellation stays as is,
// a store closed underneath becomes ErrClosed, anything else is an outage.
func (s *Store) readErr(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return ctxErr
	}
	return s.storageErr(op, err)
}

func (s *Store) storageErr(op string, err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return eventstore.ErrClosed
	}
	return fmt.Errorf("eventstore/bbolt: %s: %w: %w", op, eventstore.ErrUnavailable, err)
}
