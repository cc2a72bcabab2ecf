// Package esdbtest is a TEST DOUBLE of KurrentDB (formerly EventStoreDB): an
// in-process gRPC server that speaks the part of KurrentDB's client protocol
// the eventstore/esdb adapter uses, built on the protocol definitions the
// official Go client ships (github.com/EventStore/EventStore-Client-Go/v4/
// protos). It exists so that the event-store contract suite and the
// adapter's own tests run in every `go test` and in CI, where no KurrentDB
// server is available. It is not a product feature, keeps everything in
// memory, has no security, and must never be used to store real data.
//
// What it implements, with KurrentDB's documented semantics:
//
//   - Streams.Append: expected revision any / no-stream / stream-exists /
//     exact, wrong-expected-version answers naming the actual revision, the
//     server-side idempotency check (a retried append with the same event
//     ids and the same expected revision is acknowledged without writing;
//     with any/stream-exists only recently written ids are remembered), the
//     maximum append size, and required event metadata.
//   - Streams.Read: stream reads forwards and backwards from start, end or a
//     revision with a count (a missing stream answers stream-not-found);
//     $all reads forwards (from a position inclusive) and backwards (from a
//     position exclusive) with a count and an optional filter; catch-up
//     subscriptions to $all from start, end or a position (exclusive), with
//     event-type or stream filters (prefixes or regular expression),
//     checkpoints every max-search-window x multiplier examined events,
//     caught-up, and then live events.
//   - $all positions: every event gets commit = prepare = its log position,
//     strictly increasing and growing by roughly the event's size, like a
//     single KurrentDB node; the log starts with a few system events ($
//     streams and types) as a fresh node has, and more can be written.
//   - ServerFeatures.GetSupportedMethods and Gossip.Read (one live leader),
//     which the client calls while connecting.
//
// What it does not implement: stream subscriptions, deletes and tombstones,
// batch append, persistent subscriptions, projections, users and ACLs, TLS,
// stream metadata ($maxAge, $maxCount, ...), link resolution, clustering and
// durability (a Restart keeps the data because it never left memory).
//
// For failure tests it can be stopped and restarted on the same address,
// drop every live subscription, answer "not ready" to every call, answer
// "not leader" (naming itself as the leader) as a follower does after an
// election, and write an append but answer "not leader" instead of its
// result, as a leader stepping down before acknowledging.
package esdbtest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gossipapi "github.com/EventStore/EventStore-Client-Go/v4/protos/gossip"
	featuresapi "github.com/EventStore/EventStore-Client-Go/v4/protos/serverfeatures"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	streamsapi "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Options configure the test double. The zero value is usable.
type Options struct {
	// Addr is the address to listen on. Defaults to 127.0.0.1:0.
	Addr string
	// Now stamps the events' created time. Defaults to time.Now.
	Now func() time.Time
	// MaxAppendSize is the most one append may carry, counted like
	// KurrentDB's --max-append-size (data + metadata + type of every event).
	// Defaults to 1 MiB, KurrentDB's default.
	MaxAppendSize int
	// IdempotencyWindow is how many recently written event ids an append
	// with expected revision any or stream-exists is checked against
	// (KurrentDB keeps a bounded cache of them). Defaults to 10000.
	IdempotencyWindow int
	// StatsInterval, when positive, makes the double write a
	// $statsCollected system event that often, as KurrentDB's statistics
	// collection does: noise that readers of $all must filter out.
	StatsInterval time.Duration
	// NoSystemEvents leaves out the system events written at start.
	NoSystemEvents bool
	// Version is the server version reported to clients. Defaults to
	// "24.10.0".
	Version string
}

// Server is a running test double. Its methods are safe for concurrent use.
type Server struct {
	opts     Options
	addr     string // fixed at the first Start so that Restart reuses it
	listened bool

	mu      sync.Mutex
	log     []*record            // $all, in position order
	streams map[string][]*record // stream name -> its events by revision
	recent  map[uuid.UUID]*record
	recentQ []uuid.UUID // ring of the ids in recent, oldest at recentI
	recentI int
	nextPos uint64
	changed chan struct{} // closed and replaced at every write
	drop    chan struct{} // closed and replaced by DropSubscriptions
	gs      *grpc.Server
	serving sync.WaitGroup

	notReady    atomic.Bool
	notLeader   atomic.Int64
	loseAnswers atomic.Int64
	appendReqs  atomic.Int64

	statsStop chan struct{}
	statsDone chan struct{}
	closeOnce sync.Once
}

type record struct {
	stream  string
	rev     uint64
	id      uuid.UUID
	typ     string
	ctype   string
	data    []byte
	meta    []byte
	created int64 // .NET ticks (100 ns) since the Unix epoch, as KurrentDB sends them
	pos     uint64
}

// Start starts a test double. Close it when done.
func Start(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAppendSize <= 0 {
		opts.MaxAppendSize = 1 << 20
	}
	if opts.IdempotencyWindow <= 0 {
		opts.IdempotencyWindow = 10000
	}
	if opts.Version == "" {
		opts.Version = "24.10.0"
	}
	s := &Server{
		opts:    opts,
		addr:    opts.Addr,
		streams: map[string][]*record{},
		recent:  map[uuid.UUID]*record{},
		recentQ: make([]uuid.UUID, 0, opts.IdempotencyWindow),
		nextPos: 1 << 10, // the log begins with records that are not events
		changed: make(chan struct{}),
		drop:    make(chan struct{}),
	}
	if !opts.NoSystemEvents {
		// A fresh node writes a few events of its own before anyone connects.
		s.AppendSystemEvent("$settings", "$update-default-acl", []byte(`{"$userStreamAcl":{"$r":"$all","$w":"$all"}}`))
		s.AppendSystemEvent("$users", "$UserCreated", []byte(`"admin"`))
		s.AppendSystemEvent("$scavenges", "$scavengeIndexInitialized", []byte(`{}`))
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	if opts.StatsInterval > 0 {
		s.statsStop, s.statsDone = make(chan struct{}), make(chan struct{})
		go s.stats()
	}
	return s, nil
}

func (s *Server) listen() error {
	lis, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("esdbtest: listen on %s: %w", s.addr, err)
	}
	if !s.listened {
		// First start: fix the address (the port, if it was 0) for good,
		// before anything else reads it, so that Restart reuses it.
		s.addr = lis.Addr().String()
		s.listened = true
	}
	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(64<<20),
		// The client pings every 10 s even without calls in flight; grpc's
		// default policy would answer that with GOAWAY.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if s.notReady.Load() {
				return nil, status.Error(codes.Unavailable, "Server Is Not Ready")
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if s.notReady.Load() {
				return status.Error(codes.Unavailable, "Server Is Not Ready")
			}
			if take(&s.notLeader) {
				// As a follower answers a call that needs the leader, here
				// before reading the request: the client reconnects to the
				// endpoint named in the trailers (if it gets to read them:
				// a client still sending finds the call ended, io.EOF).
				return s.notLeaderAnswer(ss)
			}
			return h(srv, ss)
		}),
	)
	streamsapi.RegisterStreamsServer(gs, &streamsService{s: s})
	featuresapi.RegisterServerFeaturesServer(gs, &featuresService{s: s})
	gossipapi.RegisterGossipServer(gs, &gossipService{s: s})
	s.mu.Lock()
	s.gs = gs
	s.mu.Unlock()
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		_ = gs.Serve(lis)
	}()
	return nil
}

// Addr is the host:port the double listens on.
func (s *Server) Addr() string { return s.addr }

// URL is the connection string for the double: esdb://ADDR?tls=false.
func (s *Server) URL() string { return "esdb://" + s.addr + "?tls=false" }

// Stop kills the server like a crashed node: the listener and every
// connection are closed at once and calls in flight fail. The data stays;
// Restart serves it again on the same address.
func (s *Server) Stop() {
	s.mu.Lock()
	gs := s.gs
	s.gs = nil
	s.mu.Unlock()
	if gs != nil {
		gs.Stop()
	}
	s.serving.Wait()
}

// Restart listens again on the same address after Stop, with the same data.
func (s *Server) Restart() error {
	s.Stop()
	return s.listen()
}

// Close stops the server for good.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		if s.statsStop != nil {
			close(s.statsStop)
			<-s.statsDone
		}
		s.Stop()
	})
}

// DropSubscriptions ends every live subscription with an Unavailable error,
// as a node that loses leadership or shuts down does; connections stay up.
func (s *Server) DropSubscriptions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.drop)
	s.drop = make(chan struct{})
}

// SetNotReady makes every call fail with Unavailable ("Server Is Not Ready"),
// as a node still starting up or electing a leader answers, until it is
// called again with false.
func (s *Server) SetNotReady(v bool) { s.notReady.Store(v) }

// FailAsNotLeader makes the next n streaming calls (reads, appends,
// subscriptions) answer as a follower does after a leader change: "not
// leader", naming the leader's endpoint (this double itself). The answer
// comes as soon as the call starts, without reading the request, so an
// append may find its call ended while it is still sending.
func (s *Server) FailAsNotLeader(n int) { s.notLeader.Store(int64(n)) }

// LoseAppendAnswers makes the next n appends that reach the log be decided
// and written as usual, and then answered "not leader" instead of with their
// result, as a leader that steps down after writing (and replicating) an
// append but before acknowledging it: the client never learns that the
// append succeeded, and a retry must not write it again.
func (s *Server) LoseAppendAnswers(n int) { s.loseAnswers.Store(int64(n)) }

// take uses up one of the failures counted by n, if any is left.
func take(n *atomic.Int64) bool {
	if n.Add(-1) >= 0 {
		return true
	}
	n.Store(0)
	return false
}

// notLeaderAnswer is a follower's answer to a call that needs the leader,
// naming the leader: this double itself.
func (s *Server) notLeaderAnswer(ss grpc.ServerStream) error {
	host, port, _ := net.SplitHostPort(s.addr)
	ss.SetTrailer(metadata.Pairs("exception", "not-leader",
		"leader-endpoint-host", host, "leader-endpoint-port", port))
	return status.Error(codes.NotFound, "Leader info available")
}

// AppendRequests counts the append calls the double has answered, retries
// and refusals included.
func (s *Server) AppendRequests() int { return int(s.appendReqs.Load()) }

// AppendSystemEvent writes an event the way KurrentDB writes its own (stream
// and type usually start with '$'), at the end of $all.
func (s *Server) AppendSystemEvent(stream, eventType string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := int64(len(s.streams[stream])) - 1
	s.write(stream, cur, []proposed{{id: uuid.New(), typ: eventType, ctype: "application/json", data: data}})
}

func (s *Server) stats() {
	defer close(s.statsDone)
	t := time.NewTicker(s.opts.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-s.statsStop:
			return
		case <-t.C:
			s.AppendSystemEvent("$stats-"+s.addr, "$statsCollected", []byte(`{"proc-cpu":0.1}`))
		}
	}
}

// Count is the number of events in $all, system events included.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.log)
}

// ---- the log ----

type proposed struct {
	id    uuid.UUID
	typ   string
	ctype string
	data  []byte
	meta  []byte
}

// Expected-revision markers, as KurrentDB numbers them internally.
const (
	expectAny          int64 = -2
	expectNoStream     int64 = -1
	expectStreamExists int64 = -4
)

// appendResult is the outcome of an append: either wrong (a wrong expected
// version with the stream's actual revision, -1 for no stream) or the last
// revision and position of the events, written now or found already there.
type appendResult struct {
	wrong   bool
	current int64
	pos     uint64 // 0 when no event is involved
}

// commit decides an append as KurrentDB's index writer does and writes it
// when it is new. The caller holds s.mu.
func (s *Server) commit(stream string, expected int64, evs []proposed) appendResult {
	evsOf := s.streams[stream]
	cur := int64(len(evsOf)) - 1
	if cur < 0 {
		if expected == expectAny || expected == expectNoStream {
			return s.write(stream, cur, evs)
		}
		return appendResult{wrong: true, current: cur}
	}
	if expected == expectAny || expected == expectStreamExists {
		// Best-effort idempotency: only ids still in the recent window
		// are recognised.
		var first, last *record
		for i, e := range evs {
			r, ok := s.recent[e.id]
			if !ok || r.stream != stream {
				if i == 0 {
					return s.write(stream, cur, evs)
				}
				// Part of the append was written, part was not: KurrentDB
				// calls this corrupted idempotency and refuses it.
				return appendResult{wrong: true, current: cur}
			}
			if first == nil {
				first = r
			}
			last = r
		}
		if last == nil {
			return appendResult{current: cur}
		}
		return appendResult{current: int64(last.rev), pos: last.pos}
	}
	if expected < cur {
		// Writing earlier than the end: acknowledged only if exactly these
		// events already follow the expected revision.
		n := expected
		for _, e := range evs {
			n++
			if n > cur || evsOf[n].id != e.id {
				// Whether none or only some were written, the append is
				// refused as a wrong expected version.
				return appendResult{wrong: true, current: cur}
			}
		}
		if len(evs) == 0 {
			return appendResult{wrong: true, current: cur}
		}
		r := evsOf[n]
		return appendResult{current: int64(r.rev), pos: r.pos}
	}
	if expected > cur {
		return appendResult{wrong: true, current: cur}
	}
	return s.write(stream, cur, evs)
}

// write appends evs after revision cur. The caller holds s.mu.
func (s *Server) write(stream string, cur int64, evs []proposed) appendResult {
	if len(evs) == 0 {
		return appendResult{current: cur}
	}
	created := s.opts.Now().UnixNano() / 100
	var last *record
	for _, e := range evs {
		cur++
		r := &record{stream: stream, rev: uint64(cur), id: e.id, typ: e.typ, ctype: e.ctype,
			data: e.data, meta: e.meta, created: created, pos: s.nextPos}
		// Log positions are byte offsets in KurrentDB: the next record
		// starts after this one.
		s.nextPos += uint64(96 + len(stream) + len(e.typ) + len(e.data) + len(e.meta))
		s.log = append(s.log, r)
		s.streams[stream] = append(s.streams[stream], r)
		s.remember(r)
		last = r
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return appendResult{current: int64(last.rev), pos: last.pos}
}

func (s *Server) remember(r *record) {
	if len(s.recentQ) < s.opts.IdempotencyWindow {
		s.recentQ = append(s.recentQ, r.id)
	} else {
		delete(s.recent, s.recentQ[s.recentI])
		s.recentQ[s.recentI] = r.id
		s.recentI = (s.recentI + 1) % len(s.recentQ)
	}
	s.recent[r.id] = r
}

// after returns the index in s.log of the first event strictly after pos.
// The caller holds s.mu.
func (s *Server) after(pos uint64) int {
	lo, hi := 0, len(s.log)
	for lo < hi {
		m := (lo + hi) / 2
		if s.log[m].pos <= pos {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// ---- connect-time services ----

type featuresService struct {
	featuresapi.UnimplementedServerFeaturesServer
	s *Server
}

func (f *featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*featuresapi.SupportedMethods, error) {
	m := func(service, method string) *featuresapi.SupportedMethod {
		return &featuresapi.SupportedMethod{ServiceName: service, MethodName: method}
	}
	return &featuresapi.SupportedMethods{
		EventStoreServerVersion: f.s.opts.Version,
		Methods: []*featuresapi.SupportedMethod{
			m("event_store.client.streams.streams", "read"),
			m("event_store.client.streams.streams", "append"),
			m("event_store.client.gossip.gossip", "read"),
			m("event_store.client.server_features.serverfeatures", "getsupportedmethods"),
		},
	}, nil
}

type gossipService struct {
	gossipapi.UnimplementedGossipServer
	s *Server
}

var instanceID = uuid.New()

func (g *gossipService) Read(context.Context, *shared.Empty) (*gossipapi.ClusterInfo, error) {
	host, port, err := net.SplitHostPort(g.s.addr)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &gossipapi.ClusterInfo{Members: []*gossipapi.MemberInfo{{
		InstanceId:   protoUUID(instanceID, false),
		TimeStamp:    time.Now().UnixNano() / 100,
		State:        gossipapi.MemberInfo_Leader,
		IsAlive:      true,
		HttpEndPoint: &gossipapi.EndPoint{Address: host, Port: uint32(p)},
	}}}, nil
}
