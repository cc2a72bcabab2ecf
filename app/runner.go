package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

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
	// Decide turns a command into events, or refuses it.
	Decide func(state S, cmd C, now time.Time) ([]domain.Event, error)
	// Evolve folds one event into a state. It may update the state in place
	// (maps), so the runner hands it a Clone of anything it keeps.
	Evolve func(state S, e domain.Event) S
	// Clone copies a state deeply; nil means states are plain values.
	Clone func(S) S
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
}

// Runner loads an aggregate, decides a command on it and appends the
// result with optimistic concurrency, deciding again on a fresh state when
// another writer got there first. It is the one way every command of every
// aggregate is run. It keeps the states it has seen, so a load reads only
// the events appended since; safe for concurrent use.
type Runner[S, C any] struct {
	store eventstore.Store
	clock domain.Clock
	d     Decider[S, C]

	mu    sync.Mutex
	cache map[string]Decided[S]
}

// NewRunner runs commands of the aggregate d on store at clock's time.
func NewRunner[S, C any](store eventstore.Store, clock domain.Clock, d Decider[S, C]) *Runner[S, C] {
	return &Runner[S, C]{store: store, clock: clock, d: d, cache: map[string]Decided[S]{}}
}

// maxAttempts bounds how often a command is decided again after losing a
// race for its stream; past it the caller gets ErrBusy (retry later).
const maxAttempts = 64

func (r *Runner[S, C]) clone(s S) S {
	if r.d.Clone == nil {
		return s
	}
	return r.d.Clone(s)
}

// Load returns the aggregate's current state, reading only the events this
// runner has not seen yet.
func (r *Runner[S, C]) Load(ctx context.Context, id string) (Decided[S], error) {
	r.mu.Lock()
	c, ok := r.cache[id]
	r.mu.Unlock()
	if !ok {
		c = Decided[S]{State: r.d.Initial(id), Version: eventstore.NoStream}
	}
	stream := r.d.Stream(id)
	events, err := r.store.ReadStream(ctx, stream, uint64(c.Version+1))
	if err != nil {
		return Decided[S]{}, fmt.Errorf("load %s: %w", stream, err)
	}
	if len(events) == 0 {
		return c, nil
	}
	st := r.clone(c.State)
	for _, ev := range events {
		e, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			return Decided[S]{}, fmt.Errorf("load %s: %w", stream, err)
		}
		st = r.d.Evolve(st, e)
	}
	last := events[len(events)-1]
	c = Decided[S]{State: st, Version: int64(last.Version), Position: last.Position}
	r.remember(id, c)
	return c, nil
}

// Known is the log position of the aggregate's last event as this process
// knows it, without reading the store (zero when it knows nothing).
func (r *Runner[S, C]) Known(id string) eventstore.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cache[id].Position
}

func (r *Runner[S, C]) remember(id string, c Decided[S]) {
	c.Events = nil
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.cache[id]; !ok || old.Version < c.Version {
		r.cache[id] = c
	}
}

// Run decides cmd on the aggregate and appends what it decided. On a
// refusal it returns the error with the state the command was decided on,
// so a caller can say why.
func (r *Runner[S, C]) Run(ctx context.Context, id string, cmd C, meta eventstore.Metadata) (Decided[S], error) {
	stream := r.d.Stream(id)
	for attempt := range maxAttempts {
		cur, err := r.Load(ctx, id)
		if err != nil {
			return Decided[S]{}, err
		}
		events, err := r.d.Decide(r.clone(cur.State), cmd, r.clock.Now())
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
		st := r.clone(cur.State)
		for _, e := range events {
			st = r.d.Evolve(st, e)
		}
		done := Decided[S]{State: st, Version: int64(res.Version), Position: res.Position}
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
		Clone: domain.Account.Clone, Bound: domain.EventBound,
	})
}

// NewBackups is the runner of backup streams.
func NewBackups(store eventstore.Store, clock domain.Clock) *Backups {
	return NewRunner(store, clock, Decider[domain.Backup, domain.BackupCommand]{
		Stream: domain.BackupStream, Initial: func(string) domain.Backup { return domain.Backup{} },
		Decide: domain.DecideBackup, Evolve: domain.EvolveBackup, Bound: domain.BackupEventBound,
	})
}

// NewClocks is the runner of the sandbox clock stream (one stream: the id
// is ignored).
func NewClocks(store eventstore.Store, clock domain.Clock) *Clocks {
	return NewRunner(store, clock, Decider[domain.SandboxClock, domain.AdvanceClock]{
		Stream:  func(string) string { return domain.ClockStream },
		Initial: func(string) domain.SandboxClock { return domain.SandboxClock{} },
		Decide:  domain.DecideClock, Evolve: domain.EvolveClock,
	})
}
