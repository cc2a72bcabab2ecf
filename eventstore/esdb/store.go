// Package esdb is the KurrentDB (formerly EventStoreDB) adapter of the event
// store port, for deployments that outgrow the embedded bbolt store: several
// API processes share one replicated KurrentDB cluster through the official
// Go client (github.com/EventStore/EventStore-Client-Go/v4).
//
// How the port maps onto KurrentDB:
//
//   - A stream is a KurrentDB stream of the same name; the version of an
//     event is its revision (0-based), the expected versions Any, NoStream
//     and n are the client's Any{}, NoStream{} and Revision(n). A conflict is
//     an error wrapping eventstore.ErrWrongVersion, as with bbolt.
//   - Every event is written with its Proposed.ID as event id, its type,
//     its data as JSON, and its Metadata as the event's JSON metadata.
//     RecordedAt is the time KurrentDB recorded the event, or for events
//     brought over by Import the time the original store had recorded.
//   - The global log is $all without system events (streams or types that
//     start with '$'); positions are KurrentDB's commit/prepare pair and
//     work as projection checkpoints. Subscribe is a catch-up subscription
//     to $all filtered server-side, resubscribed from the last delivered
//     position with backoff whenever it drops.
//   - Idempotency: KurrentDB itself acknowledges a retried append (same ids,
//     same expected revision) without writing it again, but only
//     best-effort for Any, and it writes the same ids again under a new,
//     valid expected revision. So that a retry whose events are already the
//     stream's tail returns the original result whatever expected version
//     it carries, Append first compares the tail of the stream with the
//     events' ids (one small read) unless it expects no stream.
//   - Failures of KurrentDB (unreachable, not ready, no answer in time) are
//     errors wrapping eventstore.ErrUnavailable. After one, calls fail fast
//     while a background probe waits for KurrentDB to answer again, so that
//     an outage costs callers no time and piles up no blocked calls.
//   - Leader changes: a call caught in one (answered "not leader", cut
//     short by the node, or cut off when the client moves to the new leader)
//     is made again, up to three times in all, and then fails with
//     ErrUnavailable. An append caught in one may have been written before
//     its answer was lost: Append makes it again only after looking at the
//     tail of the stream for its events, and KurrentDB recognises the retry
//     of an Import (same ids, same expected revision), so neither is ever
//     written twice. Appends are atomic: a failed append wrote all of its
//     events or none, and a retry with the same ids is safe.
package esdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kurrent "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Options tune a Store. The zero value is usable.
type Options struct {
	// Logger receives the adapter's and the KurrentDB client's log lines.
	// Nil discards them.
	Logger *slog.Logger
	// Timeout bounds each call to KurrentDB: an append, one page of a read.
	// Defaults to 10s.
	Timeout time.Duration
	// BatchSize is the most events a read page or a Subscribe batch holds.
	// Defaults to 512.
	BatchSize int
	// RetryMin and RetryMax bound the backoff between resubscriptions and
	// between probes of an unreachable KurrentDB. Default 100ms and 5s.
	RetryMin, RetryMax time.Duration
}

// closeGrace is how long Close waits for calls stuck inside the client (for
// instance while it looks for an unreachable node) before giving up on
// closing the client cleanly.
const closeGrace = 3 * time.Second

// Store is an eventstore.Store backed by KurrentDB. It is safe for concurrent
// use.
type Store struct {
	cfg  *kurrent.Configuration
	dest string // the connection string without credentials, for messages
	opts Options
	log  *slog.Logger

	base   context.Context // ends at Close
	cancel context.CancelFunc

	mu      sync.Mutex
	conn    *conn
	closed  bool
	down    error // set while KurrentDB is known to be unreachable
	probing bool
	up      chan struct{} // closed while down is nil

	closeOnce sync.Once
}

// conn is one client and the goroutines using it. The client gives up for
// good when it cannot find a node; such a conn is marked dead and replaced,
// never closed, since closing it could panic goroutines still queued inside.
type conn struct {
	client *kurrent.Client
	users  sync.WaitGroup
	dead   atomic.Bool
}

var _ eventstore.Store = (*Store)(nil)

// Open connects to the KurrentDB named by connString, the client's own
// connection-string format (esdb://host:2113?tls=false,
// esdb://n1:2113,n2:2113,n3:2113, esdb+discover://...), and checks that it
// answers. An unreachable server is an error wrapping eventstore.ErrUnavailable.
func Open(ctx context.Context, connString string, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 512
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 100 * time.Millisecond
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(5*time.Second, opts.RetryMin)
	}
	dest := redact(connString)
	cfg, err := kurrent.ParseConnectionString(connString)
	if err != nil {
		return nil, fmt.Errorf("eventstore/esdb: connection string %s: %w", dest, err)
	}
	cfg.Logger = clientLogger(opts.Logger)
	client, err := kurrent.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("eventstore/esdb: %s: %w", dest, err)
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Store{cfg: cfg, dest: dest, opts: opts, log: opts.Logger, base: base, cancel: cancel, conn: &conn{client: client},
		up: make(chan struct{})}
	close(s.up)
	if _, err := s.Head(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("eventstore/esdb: connect to %s: %w", dest, err)
	}
	return s, nil
}

// redact drops the password from a connection string.
func redact(connString string) string {
	u, err := url.Parse(connString)
	if err != nil || u.User == nil {
		if i := strings.Index(connString, "@"); i >= 0 {
			if j := strings.Index(connString, "://"); j >= 0 && j < i {
				return connString[:j+3] + "***@" + connString[i+1:]
			}
		}
		return connString
	}
	u.User = url.User(u.User.Username())
	return u.String()
}

// clientLogger routes the client's log lines into ours. The client reports
// every failed call, cancellations included, as an error; the adapter logs
// what matters itself, so the client's lines go at debug or info level.
func clientLogger(l *slog.Logger) kurrent.LoggingFunc {
	return func(level kurrent.LogLevel, format string, args ...any) {
		lvl := slog.LevelDebug
		msg := fmt.Sprintf(format, args...)
		if (level == kurrent.LogWarn || level == kurrent.LogError) && !strings.Contains(msg, "Canceled") {
			lvl = slog.LevelInfo
		}
		l.Log(context.Background(), lvl, "kurrentdb client: "+msg)
	}
}

// Close ends subscriptions (they return ErrClosed) and calls in flight, and
// closes the client. Calling it again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		c := s.conn
		s.mu.Unlock()
		s.cancel()
		idle := make(chan struct{})
		go func() {
			c.users.Wait()
			close(idle)
		}()
		select {
		case <-idle:
			if !c.dead.Load() {
				_ = c.client.Close()
			}
		case <-time.After(closeGrace):
			s.log.Warn("eventstore/esdb: calls into the KurrentDB client still blocked at close; leaving it to the process exit",
				"eventstore", s.dest)
		}
	})
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// use returns the current conn with one more user, or why it cannot be used.
// The caller must call c.users.Done.
func (s *Store) use() (*conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, eventstore.ErrClosed
	}
	if s.down != nil {
		return nil, fmt.Errorf("eventstore/esdb: %w: KurrentDB at %s is unreachable (%v); retrying in the background",
			eventstore.ErrUnavailable, s.dest, s.down)
	}
	s.conn.users.Add(1)
	return s.conn, nil
}

// call runs fn against KurrentDB within the per-call timeout. It returns as
// soon as ctx ends, even while the client is stuck looking for a node; fn's
// result only comes back through the channel, so that a call given up on
// shares nothing with its caller. A call caught in a leader change is made
// again, up to callAttempts times in all (see errLeaderChange); it must be
// safe to repeat, which reads are. Appends have their own loop (append).
func call[T any](s *Store, ctx context.Context, op string, fn func(ctx context.Context, c *kurrent.Client) (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		v, err := callOnce(s, ctx, op, fn)
		if !errors.Is(err, errLeaderChange) {
			return v, err
		}
		if attempt == callAttempts {
			return v, s.unavailable(op, "KurrentDB is electing a leader", err)
		}
	}
}

// callAttempts bounds the attempts of a call caught in a leader change. One
// more than the first is usually enough (the client turns to the leader
// that the follower named); the third covers a call cut short on the old
// connection while another call was moving the client to the new leader.
const callAttempts = 3

// errLeaderChange marks a call that did not reach a decision because of a
// leader change, whose outcome is therefore unknown for an append: it may
// have been written before the answer was lost. It wraps, with the client's
// error as text, one of:
//
//   - "not leader": the node has stepped down and named the leader, to which
//     the client has already turned;
//   - the call ended by the node before the client had sent all of it: gRPC
//     reports that to the sender as io.EOF and keeps the node's answer for a
//     receive that the client (v4.2.0) never makes on an append, so a "not
//     leader" answered early reaches us only as "could not send append
//     request ... EOF", and the client does not turn to the leader;
//   - the client's connection closed under the call ("the client connection
//     is closing", "transport is closing"): the client was moving to the new
//     leader because another call was answered "not leader". Taken for an
//     outage, it would make every call fail fast until the probe succeeds.
//
// None of these is the outage that ErrUnavailable reports at once: the call
// is made again, through the client's current connection; an append looks
// first at the tail of the stream for its events.
var errLeaderChange = errors.New("call caught in a leader change")

// leaderChange returns err wrapped in errLeaderChange if it is one of its
// cases (err is the error of a call with per-call context cctx, made for a
// caller whose context is ctx), and nil otherwise. The client's error is
// kept as text only, so that no caller mistakes the io.EOF inside for an
// end of data.
func (s *Store) leaderChange(ctx, cctx context.Context, err error) error {
	if err == nil || s.isClosed() || ctx.Err() != nil || cctx.Err() != nil {
		return nil
	}
	var ee *kurrent.Error
	switch {
	case errors.As(err, &ee) && ee.Code() == kurrent.ErrorCodeNotLeader:
		return fmt.Errorf("%w: the node is not the leader (%v)", errLeaderChange, err)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: the node ended the call early (%v)", errLeaderChange, err)
	case closedUnder(err):
		return fmt.Errorf("%w: the client closed the connection under the call (%v)", errLeaderChange, err)
	}
	return nil
}

// closedUnder reports whether err is gRPC's answer to a call whose
// connection the client closed while it was in flight: Canceled, or
// Unavailable naming the closing connection or transport, depending on how
// far the call had got. gRPC has no error value to compare these with, only
// their text. A server that dies may cut calls the same way; taking that for
// a leader change costs one more attempt, which then finds the server
// unreachable and reports the outage.
func closedUnder(err error) bool {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Canceled:
		return true
	case codes.Unavailable:
		msg := st.Message()
		return strings.Contains(msg, "client connection is closing") || strings.Contains(msg, "transport is closing")
	}
	return false
}

func callOnce[T any](s *Store, ctx context.Context, op string, fn func(ctx context.Context, c *kurrent.Client) (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	c, err := s.use()
	if err != nil {
		return zero, err
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	stop := context.AfterFunc(s.base, cancel)
	defer stop()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer c.users.Done()
		v, err := fn(cctx, c.client)
		done <- result{v, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-cctx.Done():
		select {
		case r = <-done: // finished at the same moment: keep its answer
		default:
			r = result{zero, cctx.Err()}
		}
	}
	if r.err != nil {
		if err := s.leaderChange(ctx, cctx, r.err); err != nil {
			return zero, err
		}
		return zero, s.classify(ctx, c, op, r.err)
	}
	return r.v, nil
}

// wrongVersion is KurrentDB's wrong-expected-version answer inside the
// adapter; detail names the expected and the actual revision.
type wrongVersion struct{ detail error }

func (w wrongVersion) Error() string { return w.detail.Error() }

// classify turns a client error into the port's: the caller's own
// cancellation stays as is, a closed store is ErrClosed, a refusal on the
// data is a plain error, and everything else is KurrentDB failing
// (ErrUnavailable). A call that found the node unreachable makes the
// following calls fail fast (markDown); a dropped subscription alone does
// not, since the node may well be up.
func (s *Store) classify(ctx context.Context, c *conn, op string, err error) error {
	return s.classifyErr(ctx, c, op, err, true)
}

func (s *Store) classifyErr(ctx context.Context, c *conn, op string, err error, canMarkDown bool) error {
	if err == nil {
		return nil
	}
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	var ee *kurrent.Error
	if errors.As(err, &ee) {
		switch ee.Code() {
		case kurrent.ErrorCodeWrongExpectedVersion:
			return wrongVersion{ee.Err()}
		case kurrent.ErrorCodeConnectionClosed:
			c.dead.Store(true)
			s.markDown(err) // this client is of no more use
			return s.unavailable(op, "cannot find a KurrentDB node", err)
		case kurrent.ErrorCodeNotLeader:
			// The client reconnects to the leader by itself: not an outage.
			return s.unavailable(op, "KurrentDB is changing leader", err)
		case kurrent.ErrorUnavailable:
			if canMarkDown {
				s.markDown(err)
			}
			return s.unavailable(op, "KurrentDB is unavailable", err)
		case kurrent.ErrorCodeDeadlineExceeded:
			return s.unavailable(op, "KurrentDB did not answer in time", err)
		case kurrent.ErrorCodeAccessDenied, kurrent.ErrorCodeUnauthenticated:
			return s.unavailable(op, "KurrentDB refused access (check the credentials in the connection string)", err)
		case kurrent.ErrorCodeStreamDeleted:
			return fmt.Errorf("eventstore/esdb: %s: the stream is deleted in KurrentDB: %w", op, err)
		}
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return fmt.Errorf("eventstore/esdb: %s: KurrentDB refused the request: %w", op, err)
	case codes.Unavailable:
		if canMarkDown {
			s.markDown(err)
		}
		return s.unavailable(op, "KurrentDB is unavailable", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return s.unavailable(op, fmt.Sprintf("KurrentDB did not answer within %s", s.opts.Timeout), err)
	}
	return s.unavailable(op, "KurrentDB failed", err)
}

func (s *Store) unavailable(op, what string, err error) error {
	return fmt.Errorf("eventstore/esdb: %s: %w: %s at %s: %w", op, eventstore.ErrUnavailable, what, s.dest, err)
}

// markDown makes calls fail fast until a probe reaches KurrentDB again.
func (s *Store) markDown(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.down == nil {
		s.down, s.up = cause, make(chan struct{})
		s.log.Warn("eventstore/esdb: KurrentDB unreachable; failing calls fast until it answers again",
			"eventstore", s.dest, "err", cause)
	}
	if !s.probing {
		s.probing = true
		go s.probe()
	}
}

// reachable returns a channel closed once KurrentDB is not known to be
// unreachable: at once unless calls are failing fast, else when the probe
// reaches it again.
func (s *Store) reachable() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.up
}

// probe waits, with backoff, until KurrentDB answers, replacing a client that
// gave up looking for a node.
func (s *Store) probe() {
	backoff := s.opts.RetryMin
	for {
		select {
		case <-s.base.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, s.opts.RetryMax)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		if s.conn.dead.Load() {
			client, err := kurrent.NewClient(s.cfg)
			if err != nil { // cannot happen: the configuration was valid at Open
				s.mu.Unlock()
				continue
			}
			s.conn = &conn{client: client}
		}
		c := s.conn
		c.users.Add(1)
		s.mu.Unlock()

		ctx, cancel := context.WithTimeout(s.base, s.opts.Timeout)
		_, err := lastPositions(ctx, c.client, 1)
		cancel()
		c.users.Done()
		if err == nil {
			s.mu.Lock()
			s.down, s.probing = nil, false
			close(s.up)
			s.mu.Unlock()
			s.log.Info("eventstore/esdb: KurrentDB answers again", "eventstore", s.dest)
			return
		}
		var ee *kurrent.Error
		if errors.As(err, &ee) && ee.Code() == kurrent.ErrorCodeConnectionClosed {
			c.dead.Store(true)
		}
		s.log.Debug("eventstore/esdb: KurrentDB still unreachable", "err", err, "retry_in", backoff)
	}
}

// lastPositions reads up to n events of $all backwards from the end.
func lastPositions(ctx context.Context, c *kurrent.Client, n uint64) ([]*kurrent.RecordedEvent, error) {
	return collect(c.ReadAll(ctx, kurrent.ReadAllOptions{Direction: kurrent.Backwards, From: kurrent.End{}}, n))
}

// collect drains a read. A stream that does not exist has no events.
func collect(rs *kurrent.ReadStream, err error) ([]*kurrent.RecordedEvent, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*kurrent.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		var ee *kurrent.Error
		if errors.As(err, &ee) && ee.Code() == kurrent.ErrorCodeResourceNotFound {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if e := ev.OriginalEvent(); e != nil {
			out = append(out, e)
		}
	}
}

// ---- append ----

// storedMeta is the JSON metadata of an event in KurrentDB: the port's
// Metadata, plus the original recording time of an imported event.
type storedMeta struct {
	eventstore.Metadata
	RecordedAt *time.Time `json:"recordedAt,omitempty"`
}

type outgoing struct {
	id   uuid.UUID
	data kurrent.EventData
}

// Append implements eventstore.Store. If it fails with ErrUnavailable or
// because ctx ended, the events may or may not have been written (all or
// none of them); retrying with the same event ids is safe.
func (s *Store) Append(ctx context.Context, stream string, expected int64, events []eventstore.Proposed) (eventstore.AppendResult, error) {
	out := make([]outgoing, len(events))
	for i, e := range events {
		d, err := encode(stream, i, e.ID, e.Type, e.Data, storedMeta{Metadata: e.Meta})
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		out[i] = d
	}
	return s.append(ctx, stream, expected, out, true)
}

// Import appends events copied from another store: each keeps its id, type,
// data and metadata, and reads back with the RecordedAt it had there. Stream
// and Version of the events are not used. Unlike Append it does not look at
// the tail of the stream first: a copy always appends at the exact expected
// version, and KurrentDB itself recognises a retry of such an append.
func (s *Store) Import(ctx context.Context, stream string, expected int64, events []eventstore.Event) (eventstore.AppendResult, error) {
	out := make([]outgoing, len(events))
	for i, e := range events {
		at := e.RecordedAt.UTC()
		d, err := encode(stream, i, e.ID, e.Type, e.Data, storedMeta{Metadata: e.Meta, RecordedAt: &at})
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		out[i] = d
	}
	return s.append(ctx, stream, expected, out, false)
}

func encode(stream string, i int, id uuid.UUID, typ string, data json.RawMessage, meta storedMeta) (outgoing, error) {
	switch {
	case id == uuid.Nil:
		return outgoing{}, fmt.Errorf("eventstore/esdb: append to %q: event %d has no ID", stream, i)
	case typ == "":
		return outgoing{}, fmt.Errorf("eventstore/esdb: append to %q: event %d (%s) has no type", stream, i, id)
	case strings.HasPrefix(typ, "$"):
		return outgoing{}, fmt.Errorf("eventstore/esdb: append to %q: event type %q: types starting with '$' are KurrentDB's", stream, typ)
	}
	if len(data) == 0 {
		data = json.RawMessage("null")
	} else if !json.Valid(data) {
		return outgoing{}, fmt.Errorf("eventstore/esdb: append to %q: event %d (%s): data is not valid JSON", stream, i, id)
	}
	m, err := json.Marshal(meta)
	if err != nil {
		return outgoing{}, fmt.Errorf("eventstore/esdb: append to %q: event %d (%s): metadata: %w", stream, i, id, err)
	}
	return outgoing{id: id, data: kurrent.EventData{EventID: id, EventType: typ, ContentType: kurrent.ContentTypeJson,
		Data: data, Metadata: m}}, nil
}

func (s *Store) append(ctx context.Context, stream string, expected int64, events []outgoing, tailCheck bool) (eventstore.AppendResult, error) {
	switch {
	case stream == "":
		return eventstore.AppendResult{}, errors.New("eventstore/esdb: append: empty stream name")
	case strings.HasPrefix(stream, "$"):
		return eventstore.AppendResult{}, fmt.Errorf("eventstore/esdb: append to %q: stream names starting with '$' are KurrentDB's system streams", stream)
	case len(events) == 0:
		return eventstore.AppendResult{}, fmt.Errorf("eventstore/esdb: append to %q: no events", stream)
	case expected < eventstore.Any:
		return eventstore.AppendResult{}, fmt.Errorf("eventstore/esdb: append to %q: invalid expected version %d", stream, expected)
	}
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, err
	}
	if s.isClosed() {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	ids := make([]uuid.UUID, len(events))
	data := make([]kurrent.EventData, len(events))
	for i, e := range events {
		ids[i], data[i] = e.id, e.data
	}
	op := "append to " + stream
	var rev kurrent.ExpectedRevision
	switch expected {
	case eventstore.Any:
		rev = kurrent.Any{}
	case eventstore.NoStream:
		rev = kurrent.NoStream{}
	default:
		rev = kurrent.Revision(uint64(expected))
	}
	appendOnce := func(ctx context.Context, c *kurrent.Client) (*kurrent.WriteResult, error) {
		return c.AppendToStream(ctx, stream, kurrent.AppendToStreamOptions{ExpectedRevision: rev}, data...)
	}
	// KurrentDB recognises a retry that carries the expected revision it
	// had the first time; NoStream always counts as that. Other retries
	// are recognised here, from the tail of the stream.
	checkTail := tailCheck && expected != eventstore.NoStream
	var wr *kurrent.WriteResult
	var err error
	for attempt := 1; ; attempt++ {
		if checkTail {
			if res, ok, err := s.retried(ctx, stream, ids); err != nil || ok {
				return res, err
			}
		}
		wr, err = callOnce(s, ctx, op, appendOnce)
		if !errors.Is(err, errLeaderChange) {
			break
		}
		if attempt == callAttempts {
			return eventstore.AppendResult{}, s.unavailable(op, "KurrentDB is changing leader", err)
		}
		// The append may have been written before its answer was lost:
		// whatever the expected version, the next attempt looks at the
		// tail first, so that it never writes the events twice. That read
		// also gets the "not leader" answer that an append cut short did
		// not, which turns the client to the leader.
		checkTail = tailCheck
	}
	var wrong wrongVersion
	if errors.As(err, &wrong) {
		// KurrentDB recognises a NoStream retry only when the events are
		// the start of the stream; they may be its tail instead. (For the
		// other expected versions the tail was looked at already, and a
		// concurrent original write carries the same expected revision,
		// which KurrentDB recognises.)
		if tailCheck && expected == eventstore.NoStream {
			if res, ok, rerr := s.retried(ctx, stream, ids); rerr == nil && ok {
				return res, nil
			}
		}
		return eventstore.AppendResult{}, fmt.Errorf("%w: stream %q expected %s: %v",
			eventstore.ErrWrongVersion, stream, versionString(expected), wrong.detail)
	}
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	res := eventstore.AppendResult{Version: wr.NextExpectedVersion,
		Position: eventstore.Position{Commit: wr.CommitPosition, Prepare: wr.PreparePosition}}
	if res.Position.IsZero() {
		// Servers before 22.10 do not say where a recognised retry landed.
		evs, err := s.readStream(ctx, stream, kurrent.ReadStreamOptions{From: kurrent.Revision(res.Version)}, 1)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if len(evs) == 1 {
			res.Position = position(evs[0])
		}
	}
	return res, nil
}

// retried reports whether ids are exactly the events at the tail of stream,
// and the result of the append that wrote them.
func (s *Store) retried(ctx context.Context, stream string, ids []uuid.UUID) (eventstore.AppendResult, bool, error) {
	back := kurrent.ReadStreamOptions{Direction: kurrent.Backwards, From: kurrent.End{}}
	// The last event first: a small read, and almost always the answer.
	tail, err := s.readStream(ctx, stream, back, 1)
	if err != nil || len(tail) == 0 || tail[0].EventID != ids[len(ids)-1] {
		return eventstore.AppendResult{}, false, err
	}
	if len(ids) > 1 {
		if tail, err = s.readStream(ctx, stream, back, uint64(len(ids))); err != nil {
			return eventstore.AppendResult{}, false, err
		}
		if len(tail) != len(ids) {
			return eventstore.AppendResult{}, false, nil
		}
		for i, e := range tail { // newest first
			if e.EventID != ids[len(ids)-1-i] {
				return eventstore.AppendResult{}, false, nil
			}
		}
	}
	return eventstore.AppendResult{Version: tail[0].EventNumber, Position: position(tail[0])}, true, nil
}

func versionString(v int64) string {
	switch v {
	case eventstore.Any:
		return "any"
	case eventstore.NoStream:
		return "no stream"
	}
	return fmt.Sprint(v)
}

// ---- read ----

func (s *Store) readStream(ctx context.Context, stream string, o kurrent.ReadStreamOptions, n uint64) ([]*kurrent.RecordedEvent, error) {
	return call(s, ctx, "read stream "+stream, func(ctx context.Context, c *kurrent.Client) ([]*kurrent.RecordedEvent, error) {
		return collect(c.ReadStream(ctx, stream, o, n))
	})
}

func (s *Store) readAll(ctx context.Context, o kurrent.ReadAllOptions, n uint64) ([]*kurrent.RecordedEvent, error) {
	return call(s, ctx, "read $all", func(ctx context.Context, c *kurrent.Client) ([]*kurrent.RecordedEvent, error) {
		return collect(c.ReadAll(ctx, o, n))
	})
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	if stream == "" {
		return nil, nil
	}
	page := uint64(s.opts.BatchSize)
	var events []eventstore.Event
	for {
		recs, err := s.readStream(ctx, stream, kurrent.ReadStreamOptions{From: kurrent.Revision(from)}, page)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			events = append(events, toEvent(r))
		}
		if uint64(len(recs)) < page {
			return events, nil
		}
		from = recs[len(recs)-1].EventNumber + 1
	}
}

// ReadAllLazy implements eventstore.Store: KurrentDB keeps payloads as
// JSON, so it is ReadAll.
func (s *Store) ReadAllLazy(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	return s.ReadAll(ctx, from, limit)
}

// ReadStreamLazy implements eventstore.Store: it is ReadStream.
func (s *Store) ReadStreamLazy(ctx context.Context, stream string, from uint64) ([]eventstore.Event, error) {
	return s.ReadStream(ctx, stream, from)
}

// ReadStreamPage implements eventstore.Store: a single read of at most
// limit events, KurrentDB's own count.
func (s *Store) ReadStreamPage(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("eventstore/esdb: read stream: limit must be positive, got %d", limit)
	}
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	if stream == "" {
		return nil, nil
	}
	recs, err := s.readStream(ctx, stream, kurrent.ReadStreamOptions{From: kurrent.Revision(from)}, uint64(limit))
	if err != nil {
		return nil, err
	}
	events := make([]eventstore.Event, 0, len(recs))
	for _, r := range recs {
		events = append(events, toEvent(r))
	}
	return events, nil
}

// ReadAll implements eventstore.Store: at most limit events after from, in
// order, system events left out.
func (s *Store) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("eventstore/esdb: read all: limit must be positive, got %d", limit)
	}
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	var events []eventstore.Event
	cursor := from
	for len(events) < limit {
		var start kurrent.AllPosition = kurrent.Start{}
		if !cursor.IsZero() {
			start = kurrent.Position{Commit: cursor.Commit, Prepare: cursor.Prepare}
		}
		// KurrentDB reads $all from a position inclusively: one more than
		// needed, since the event at the cursor comes back first.
		want := uint64(min(limit-len(events)+1, s.opts.BatchSize))
		want = max(want, 2)
		recs, err := s.readAll(ctx, kurrent.ReadAllOptions{From: start}, want)
		if err != nil {
			return nil, err
		}
		moved := false
		for _, r := range recs {
			p := position(r)
			if !cursor.Less(p) {
				continue
			}
			cursor, moved = p, true
			if isSystem(r) {
				continue
			}
			events = append(events, toEvent(r))
			if len(events) == limit {
				break
			}
		}
		if uint64(len(recs)) < want || !moved {
			break
		}
	}
	return events, nil
}

// Head implements eventstore.Store: the position of the last event that is
// not a system event.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	e, _, err := s.Last(ctx)
	return e.Position, err
}

// Last returns the last event of the log that is not a system event, and
// false when there is none.
func (s *Store) Last(ctx context.Context) (eventstore.Event, bool, error) {
	if err := ctx.Err(); err != nil {
		return eventstore.Event{}, false, err
	}
	if s.isClosed() {
		return eventstore.Event{}, false, eventstore.ErrClosed
	}
	// Usually the very last event is ours: start small, and widen the pages
	// when a run of system events has to be skipped.
	page := uint64(4)
	var from kurrent.AllPosition = kurrent.End{}
	var cursor *eventstore.Position
	for ; ; page = min(page*8, uint64(s.opts.BatchSize)) {
		recs, err := s.readAll(ctx, kurrent.ReadAllOptions{Direction: kurrent.Backwards, From: from}, page)
		if err != nil {
			return eventstore.Event{}, false, err
		}
		moved := false
		for _, r := range recs {
			p := position(r)
			if cursor != nil && !p.Less(*cursor) {
				continue // reads from a position may include it
			}
			cursor, moved = &p, true
			if !isSystem(r) {
				return toEvent(r), true, nil
			}
		}
		if uint64(len(recs)) < page || !moved {
			return eventstore.Event{}, false, nil
		}
		from = kurrent.Position{Commit: cursor.Commit, Prepare: cursor.Prepare}
	}
}

// Dest is the connection string the store was opened with, without its
// password: fit for logs.
func (s *Store) Dest() string { return s.dest }

func isSystem(r *kurrent.RecordedEvent) bool {
	return strings.HasPrefix(r.StreamID, "$") || strings.HasPrefix(r.EventType, "$")
}

func position(r *kurrent.RecordedEvent) eventstore.Position {
	return eventstore.Position{Commit: r.Position.Commit, Prepare: r.Position.Prepare}
}

func toEvent(r *kurrent.RecordedEvent) eventstore.Event {
	e := eventstore.Event{
		ID:         r.EventID,
		Stream:     r.StreamID,
		Version:    r.EventNumber,
		Position:   position(r),
		Type:       r.EventType,
		Data:       json.RawMessage(r.Data),
		RecordedAt: r.CreatedDate.UTC(),
	}
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("null")
	}
	var m storedMeta
	if len(r.UserMetadata) > 0 && json.Unmarshal(r.UserMetadata, &m) == nil {
		e.Meta = m.Metadata
		if m.RecordedAt != nil && !m.RecordedAt.IsZero() {
			e.RecordedAt = m.RecordedAt.UTC()
		}
	}
	return e
}
