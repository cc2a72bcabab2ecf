package app

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// Decider is an aggregate as the runner sees it: where its events live, its
// state before any, and the pure decide and evolve functions of the domain.
type Decider[S, C any] struct {
	// Stream names the aggregate's stream.
	Stream func(id string) string
	// Initial is the state of a stream with no events.
	Initial func(id string) S
	// Decide turns a command into events, or refuses it. It must not
	// change the state it is given (the runner hands over the state it
	// keeps).
	Decide func(state S, cmd C, now time.Time) ([]domain.Event, error)
	// Evolve folds one event into a state. It may update the state in place
	// (maps), so the runner hands it a Clone of anything it keeps.
	Evolve func(state S, e domain.Event) S
	// Fold, when set, is Decide returning also the state its events leave
	// (a copy of its own): the runner keeps it instead of copying the
	// state and folding the events again.
	Fold func(state S, cmd C, now time.Time) ([]domain.Event, S, error)
	// Clone copies a state deeply; nil means states are plain values.
	Clone func(S) S
	// Refold takes from a stored event a Source folded already what the
	// source left out of its state (an account's ledger hash chain),
	// decoding only what it needs; nil: nothing.
	Refold func(state S, ev *eventstore.Event) (S, error)
	// Owner names the account whose clock a command is decided at
	// (domain.AccountNow: in the sandbox an account can move its own
	// clock); nil, or "", decides at the clock every account shares.
	Owner func(id string, state S, cmd C) string
	// Bound is the most events one decision of a command may record
	// (domain.EventBound); the runner refuses a decision over it, so no
	// request appends without limit. Nil: no bound (the deployment-mode
	// and sandbox-clock streams, one event per command).
	Bound func(state S, cmd C) int
}

// Decided is a state of an aggregate and where it stands in the log: what a
// command decided, or what Load found.
type Decided[S any] struct {
	State S
	// Events are what the command appended (none for Load, or when the
	// command had nothing to do).
	Events []domain.Event
	// Version is the stream's last version (eventstore.NoStream if empty).
	Version int64
	// Position is the global log position of the stream's last event as far
	// as this process knows: what a read waits for to show the state.
	Position eventstore.Position

	// folded counts the events folded since the last snapshot was taken
	// (or since the start of the stream).
	folded int
}

// Runner loads an aggregate, decides a command on it and appends the
// result with optimistic concurrency, deciding again on a fresh state when
// another writer got there first. It is the one way every command of every
// aggregate is run. Safe for concurrent use.
//
// It keeps the states it used last (a bounded cache, CacheSize), so a
// load of a hot aggregate reads only the events appended since. A state it
// does not keep comes from its Source if it has one (the embedded read
// model, which folds every stream anyway: no second copy of every state is
// held), else from the start of the stream; either way every event after
// it is read from the log, which is always trusted over the head start.
type Runner[S, C any] struct {
	store  eventstore.Store
	clock  domain.Clock
	d      Decider[S, C]
	source Source[S]
	// snaps keeps snapshots, one every snapEvery events (SetSnapshots).
	snaps      Snapshots
	snapEvery  int
	snapSchema string

	// shards split the states kept and the positions known by id, so
	// that commands on different aggregates never wait on one lock.
	shards [runnerShards]runnerShard[S]
}

const runnerShards = 16

type runnerShard[S any] struct {
	mu    sync.Mutex
	cache *lru[Decided[S]]
	known map[string]eventstore.Position
}

func (r *Runner[S, C]) shard(id string) *runnerShard[S] {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return &r.shards[h.Sum32()%runnerShards]
}

// Source gives a runner the state of an aggregate it does not keep, as
// another part of the process folded it from the log with the same Evolve,
// with the version and position of the last event it folded (ok false:
// it has none). The state must be the runner's to keep: a copy. A source
// that leaves out something of what it folded says from which version the
// runner must read the log again (reread ≤ version; version + 1 when
// nothing is left out): the runner folds the events up to version with
// Decider.Refold, the later ones with Evolve.
type Source[S any] func(id string) (state S, version int64, pos eventstore.Position, reread int64, ok bool)

// CacheSize is how many aggregate states a runner keeps by default: enough
// for the accounts in use at any moment, not a copy of every account.
const CacheSize = 1024

// NewRunner runs commands of the aggregate d on store at clock's time.
func NewRunner[S, C any](store eventstore.Store, clock domain.Clock, d Decider[S, C]) *Runner[S, C] {
	r := &Runner[S, C]{store: store, clock: clock, d: d}
	r.SetCacheSize(CacheSize)
	for i := range r.shards {
		r.shards[i].known = map[string]eventstore.Position{}
	}
	return r
}

// SetSource has the runner start from src's state for an aggregate it does
// not keep; call it before the runner is used.
func (r *Runner[S, C]) SetSource(src Source[S]) { r.source = src }

// SetCacheSize bounds the states the runner keeps (at least 1); call it
// before the runner is used.
func (r *Runner[S, C]) SetCacheSize(n int) {
	for i := range r.shards {
		r.shards[i].cache = newLRU[Decided[S]](max((n+runnerShards-1)/runnerShards, 1))
	}
}

// maxAttempts bounds how often a command is decided again after losing a
// race for its stream; past it the caller gets ErrBusy (retry later).
const maxAttempts = 64

// now is the time a command on the aggregate is decided at.
func (r *Runner[S, C]) now(id string, s S, cmd C) time.Time {
	if r.d.Owner == nil {
		return r.clock.Now()
	}
	return domain.AccountNow(r.clock, r.d.Owner(id, s, cmd))
}

func (r *Runner[S, C]) clone(s S) S {
	if r.d.Clone == nil {
		return s
	}
	return r.d.Clone(s)
}

// Load returns the aggregate's current state, reading only the events this
// runner has not seen yet.
func (r *Runner[S, C]) Load(ctx context.Context, id string) (Decided[S], error) {
	sh := r.shard(id)
	sh.mu.Lock()
	c, cached := sh.cache.get(id)
	sh.mu.Unlock()
	sourced := false
	from := c.Version + 1
	if !cached && r.source != nil {
		var st S
		if st, c.Version, c.Position, from, sourced = r.source(id); sourced {
			c.State = st
		}
	}
	if !cached && !sourced && r.snaps != nil {
		snap, last, ok, err := r.fromSnapshot(ctx, id)
		if err != nil {
			return Decided[S]{}, err
		}
		if ok {
			// The snapshot and everything after it: nothing more to read.
			snap = r.maybeSnapshot(ctx, id, snap, last)
			r.remember(id, snap)
			return snap, nil
		}
	}
	if !cached && !sourced {
		c = Decided[S]{State: r.d.Initial(id), Version: eventstore.NoStream}
		from = 0
	}
	stream := r.d.Stream(id)
	// Every payload read is decoded: the store's own encoding will do.
	events, err := r.store.ReadStreamLazy(ctx, stream, uint64(max(from, 0)))
	if err != nil {
		return Decided[S]{}, fmt.Errorf("load %s: %w", stream, err)
	}
	st := c.State
	if sourced && from <= c.Version {
		// What the source left out, from the events it folded already.
		for len(events) > 0 && int64(events[0].Version) <= c.Version {
			if r.d.Refold != nil {
				if st, err = r.d.Refold(st, &events[0]); err != nil {
					return Decided[S]{}, fmt.Errorf("load %s: %w", stream, err)
				}
			}
			events = events[1:]
		}
		c.State = st
	}
	if len(events) == 0 {
		if sourced {
			r.remember(id, c)
		}
		return c, nil
	}
	st = r.clone(c.State)
	for _, ev := range events {
		if st, err = r.evolveStored(stream, st, ev); err != nil {
			return Decided[S]{}, err
		}
	}
	last := events[len(events)-1]
	c = Decided[S]{State: st, Version: int64(last.Version), Position: last.Position, folded: c.folded + len(events)}
	c = r.maybeSnapshot(ctx, id, c, last.ID)
	r.remember(id, c)
	return c, nil
}

// maybeSnapshot takes a snapshot of c when enough events were folded since
// the last one, and returns c with its count started again.
func (r *Runner[S, C]) maybeSnapshot(ctx context.Context, id string, c Decided[S], last uuid.UUID) Decided[S] {
	if r.snaps == nil || c.folded < r.snapEvery {
		return c
	}
	r.snapshot(ctx, id, c, last)
	c.folded = 0
	return c
}

// decide decides cmd on st at the aggregate's time; folded is the state
// the events leave when the decider says it (Fold).
func (r *Runner[S, C]) decide(id string, st S, cmd C) (events []domain.Event, folded S, err error) {
	now := r.now(id, st, cmd)
	if r.d.Fold != nil {
		return r.d.Fold(st, cmd, now)
	}
	events, err = r.d.Decide(st, cmd, now)
	return events, folded, err
}

// kept is the state the runner keeps for the aggregate, if any, without
// reading the log.
func (r *Runner[S, C]) kept(id string) (Decided[S], bool) {
	sh := r.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.cache.get(id)
}

// Known is the log position of the aggregate's last event as this process
// knows it, without reading the store (zero when it knows nothing).
func (r *Runner[S, C]) Known(id string) eventstore.Position {
	sh := r.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.known[id]
}

func (r *Runner[S, C]) remember(id string, c Decided[S]) {
	c.Events = nil
	sh := r.shard(id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.known[id].Less(c.Position) {
		sh.known[id] = c.Position
	}
	if old, ok := sh.cache.peek(id); !ok || old.Version < c.Version {
		sh.cache.put(id, c)
	}
}

// Run decides cmd on the aggregate and appends what it decided. On a
// refusal it returns the error with the state the command was decided on,
// so a caller can say why.
func (r *Runner[S, C]) Run(ctx context.Context, id string, cmd C, meta eventstore.Metadata) (Decided[S], error) {
	stream := r.d.Stream(id)
	for attempt := range maxAttempts {
		// The first attempt decides on the state kept, without reading
		// the log: if another writer appended meanwhile, the append is
		// refused (expected version) and the command decided again on a
		// fresh state. A refusal, or nothing to do, is only trusted on a
		// fresh state.
		cur, kept := r.kept(id)
		if attempt > 0 || !kept {
			var err error
			if cur, err = r.Load(ctx, id); err != nil {
				return Decided[S]{}, err
			}
			kept = false
		}
		// Decide is pure and leaves the state it is given alone (the
		// domain's decisions fold into a copy of their own), so the kept
		// state is handed over as is.
		events, folded, err := r.decide(id, cur.State, cmd)
		if (err != nil || len(events) == 0) && kept {
			if cur, err = r.Load(ctx, id); err != nil {
				return Decided[S]{}, err
			}
			events, folded, err = r.decide(id, cur.State, cmd)
		}
		if err != nil || len(events) == 0 {
			return cur, err
		}
		if r.d.Bound != nil {
			// A command records a few events of its own; more means
			// settling a backlog the background work is there for.
			if bound := r.d.Bound(cur.State, cmd); len(events) > bound {
				return cur, fmt.Errorf("%w: this would record %d events, over the %d one command may: "+
					"the account's billing is behind and the background work is catching up; retry in a few seconds",
					domain.ErrBusy, len(events), bound)
			}
		}
		props, err := eventstore.Propose(meta, events...)
		if err != nil {
			return cur, err
		}
		res, err := r.store.Append(ctx, stream, cur.Version, props)
		if errors.Is(err, eventstore.ErrWrongVersion) {
			// Another writer changed the stream: back off a little, with
			// jitter so contenders spread out, and decide again.
			wait := time.Duration(rand.IntN(1+attempt*2)) * time.Millisecond
			select {
			case <-ctx.Done():
				return cur, ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		if err != nil {
			return cur, fmt.Errorf("append to %s: %w", stream, err)
		}
		st := folded
		if r.d.Fold == nil {
			st = r.clone(cur.State)
			for _, e := range events {
				st = r.d.Evolve(st, e)
			}
		}
		done := Decided[S]{State: st, Version: int64(res.Version), Position: res.Position, folded: cur.folded + len(events)}
		done = r.maybeSnapshot(ctx, id, done, props[len(props)-1].ID)
		r.remember(id, done)
		done.Events = events
		return done, nil
	}
	return Decided[S]{}, fmt.Errorf("%w: %s changed under %d attempts to decide on it", domain.ErrBusy, stream, maxAttempts)
}

// The aggregates of CryptoVPS, as runners see them.
type (
	// Accounts runs account commands (ledger and servers).
	Accounts = Runner[domain.Account, domain.Command]
	// Backups runs backup commands.
	Backups = Runner[domain.Backup, domain.BackupCommand]
	// Clocks runs the sandbox clock's one command.
	Clocks = Runner[domain.SandboxClock, domain.AdvanceClock]
)

// NewAccounts is the runner of account streams.
func NewAccounts(store eventstore.Store, clock domain.Clock) *Accounts {
	return NewRunner(store, clock, Decider[domain.Account, domain.Command]{
		Stream: domain.AccountStream, Initial: domain.NewAccount, Decide: domain.Decide, Evolve: domain.Evolve,
		Fold: domain.DecideFolded, Clone: domain.Account.Clone, Bound: domain.EventBound,
		Owner: func(id string, _ domain.Account, _ domain.Command) string { return id },
		// A read model may fold accounts without their ledger's hash chain.
		Refold: chainHead,
	})
}

// ledgerType is the event type of a ledger transaction.
var ledgerType = domain.LedgerPosted{}.EventType()

// chainHead takes the hash of a ledger transaction into the account: the
// head of its hash chain, which the next transaction links to. Only the
// hash is decoded.
func chainHead(a domain.Account, ev *eventstore.Event) (domain.Account, error) {
	if ev.Type != ledgerType {
		return a, nil
	}
	var tx struct {
		Hash string `json:"hash"`
	}
	if err := ev.Decode(&tx); err != nil {
		return a, err
	}
	a.LastHash = tx.Hash
	return a, nil
}

// NewBackups is the runner of backup streams.
func NewBackups(store eventstore.Store, clock domain.Clock) *Backups {
	return NewRunner(store, clock, Decider[domain.Backup, domain.BackupCommand]{
		Stream: domain.BackupStream, Initial: func(string) domain.Backup { return domain.Backup{} },
		Decide: domain.DecideBackup, Evolve: domain.EvolveBackup, Bound: domain.BackupEventBound,
		// A backup lives on its account's clock.
		Owner: func(_ string, b domain.Backup, cmd domain.BackupCommand) string {
			if r, ok := cmd.(domain.RequestBackup); ok && b.AccountID == "" {
				return r.AccountID
			}
			return b.AccountID
		},
	})
}

// NewClocks is the runner of the sandbox clock stream (one stream: the id
// is ignored).
func NewClocks(store eventstore.Store, clock domain.Clock) *Clocks {
	return NewRunner(store, clock, Decider[domain.SandboxClock, domain.AdvanceClock]{
		Stream:  func(string) string { return domain.ClockStream },
		Initial: func(string) domain.SandboxClock { return domain.SandboxClock{} },
		Decide:  domain.DecideClock, Evolve: domain.EvolveClock, Clone: domain.SandboxClock.Clone,
		// An account's move is decided (stamped) at that account's time.
		Owner: func(_ string, _ domain.SandboxClock, cmd domain.AdvanceClock) string { return cmd.AccountID },
	})
}

// lru is a bounded map that forgets the entry used least recently.
type lru[V any] struct {
	max   int
	order *list.List // of *lruEntry, most recent first
	byID  map[string]*list.Element
}

type lruEntry[V any] struct {
	id string
	v  V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, order: list.New(), byID: map[string]*list.Element{}}
}

// get returns id's value and makes it the most recent.
func (l *lru[V]) get(id string) (V, bool) {
	e, ok := l.byID[id]
	if !ok {
		var zero V
		return zero, false
	}
	l.order.MoveToFront(e)
	return e.Value.(*lruEntry[V]).v, true
}

// peek returns id's value without touching its recency.
func (l *lru[V]) peek(id string) (V, bool) {
	e, ok := l.byID[id]
	if !ok {
		var zero V
		return zero, false
	}
	return e.Value.(*lruEntry[V]).v, true
}

// put sets id's value, the most recent, forgetting the least recent entry
// past the bound.
func (l *lru[V]) put(id string, v V) {
	if e, ok := l.byID[id]; ok {
		e.Value.(*lruEntry[V]).v = v
		l.order.MoveToFront(e)
		return
	}
	l.byID[id] = l.order.PushFront(&lruEntry[V]{id: id, v: v})
	for l.order.Len() > l.max {
		last := l.order.Back()
		l.order.Remove(last)
		delete(l.byID, last.Value.(*lruEntry[V]).id)
	}
}
