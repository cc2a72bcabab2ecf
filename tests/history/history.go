// Package history generates realistic event logs for benchmarks and tests:
// accounts that register, top up, deploy servers and are billed hour after
// hour, decided by the real domain so every event is one the service could
// have written.
package history

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// perAccount is about how many events one account makes.
const perAccount = 1000

// Generate appends about n events to store, starting at start, and returns
// how many it wrote. Each account registers, is topped up, deploys three
// servers, and is billed until it has produced its share of events; one
// server in three is destroyed halfway. Every decision is its own append,
// as the service makes them.
func Generate(ctx context.Context, store eventstore.Store, n int, start time.Time) (int, error) {
	written := 0
	for i := 0; written < n; i++ {
		g := account{i: i, store: store}
		if err := g.run(ctx, start, func() int { return n - written - g.written }); err != nil {
			return written + g.written, err
		}
		written += g.written
	}
	return written, nil
}

// Build writes the history Generate makes to store, but fast enough for
// logs of millions of events: each account's events go in a few large
// appends once it is done, many accounts at once (so that they share
// commits). Then every account is settled at the newest time of the
// history (an account stops when it has made its share of events, and its
// hours up to the end would otherwise rightly be found owing), so that the
// audit finds nothing in it. It returns how many events it wrote.
func Build(ctx context.Context, store eventstore.Store, n int, start time.Time) (int, error) {
	const together = 64 // accounts written at once
	written := 0
	var accounts []*account
	var pending []*buffered
	var newest time.Time
	for i := 0; written < n; i++ {
		buf := &buffered{Store: store}
		g := &account{i: i, store: buf}
		if err := g.run(ctx, start, func() int { return n - written - g.written }); err != nil {
			return written, err
		}
		written += g.written
		accounts = append(accounts, g)
		pending = append(pending, buf)
		if g.now.After(newest) {
			newest = g.now
		}
		if len(pending) == together {
			if err := inParallel(pending, func(b *buffered) error { return b.flush(ctx) }); err != nil {
				return written, err
			}
			pending = pending[:0]
		}
	}
	if err := inParallel(pending, func(b *buffered) error { return b.flush(ctx) }); err != nil {
		return written, err
	}
	for i := 0; i < len(accounts); i += together {
		group := accounts[i:min(i+together, len(accounts))]
		err := inParallel(group, func(g *account) error {
			g.store, g.now = store, newest
			return g.apply(ctx, domain.Settle{})
		})
		if err != nil {
			return written, err
		}
		for _, g := range group {
			written += g.settled
		}
	}
	return written, nil
}

// inParallel runs fn on every item at once and returns the first error.
func inParallel[T any](items []T, fn func(T) error) error {
	errs := make(chan error, len(items))
	for _, it := range items {
		go func() { errs <- fn(it) }()
	}
	var first error
	for range items {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// account generates the history of account number i.
type account struct {
	i       int
	store   eventstore.Store
	id      string
	state   domain.Account
	version int64
	now     time.Time
	written int
	settled int // events of the last apply
}

func (g *account) apply(ctx context.Context, cmd domain.Command) error {
	g.settled = 0
	events, err := domain.Decide(g.state, cmd, g.now)
	if err != nil {
		return fmt.Errorf("account %d at %s: %T: %w", g.i, g.now, cmd, err)
	}
	if len(events) == 0 {
		return nil
	}
	props, err := eventstore.Propose(eventstore.Metadata{Actor: "history"}, events...)
	if err != nil {
		return err
	}
	for _, e := range events {
		g.state = domain.Evolve(g.state, e)
	}
	res, err := g.store.Append(ctx, domain.AccountStream(g.id), g.version, props)
	if err != nil {
		return err
	}
	g.version = int64(res.Version)
	g.written += len(events)
	g.settled = len(events)
	return nil
}

// run makes the account's history; left says how many events the whole
// history still lacks.
func (g *account) run(ctx context.Context, start time.Time, left func() int) error {
	g.id = uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "history-%d", g.i)).String()
	g.state = domain.NewAccount(g.id)
	g.version = eventstore.NoStream
	g.now = start
	cat := domain.DefaultCatalog()
	plan, _ := cat.Plan("vc2-1c-1gb")
	topup := uuid.NewString()
	steps := []domain.Command{
		// The email as the log holds it: sealed with the account's data
		// key (a stand-in of the same size: nothing here opens it); the
		// password hash is in the credential store, under a ref.
		domain.Register{AccountID: g.id, SealedEmail: fmt.Sprintf("v1:%064x", g.i), CredentialRef: uuid.NewString(),
			ServerLimit: 10, SignupCredit: domain.MustMoney("10.00")},
		domain.CreateTopup{TopupID: topup, Amount: domain.MustMoney("10000.00"), Currency: "BTC", PayAddress: "tb1qhistory"},
		domain.PayTopup{TopupID: topup},
	}
	var servers []domain.ServerSpec
	for k := range 3 {
		servers = append(servers, domain.ServerSpec{ID: uuid.NewString(), Label: fmt.Sprintf("bot-%d", k),
			Plan: plan.ID, Region: "ams", HourlyPrice: plan.HourlyPrice})
	}
	steps = append(steps, domain.Deploy{Servers: servers})
	for _, cmd := range steps {
		if err := g.apply(ctx, cmd); err != nil {
			return err
		}
	}
	g.now = g.now.Add(90 * time.Second)
	for _, s := range servers {
		for _, cmd := range []domain.Command{domain.StartProvision{ServerID: s.ID},
			domain.RecordInstance{ServerID: s.ID, InstanceID: "i-" + s.ID[:8]},
			domain.Activate{ServerID: s.ID, IPv4: "198.18.0.1"}} {
			if err := g.apply(ctx, cmd); err != nil {
				return err
			}
		}
	}
	budget := min(perAccount, left()+20)
	// Settle a day at a time: the biller catches up hour by hour inside
	// one decision, as it does after downtime.
	for hour := 24; g.version < int64(budget) && left() > 0; hour += 24 {
		g.now = start.Add(time.Duration(hour) * time.Hour)
		if hour == 96 {
			if err := g.apply(ctx, domain.Destroy{ServerID: servers[0].ID}); err != nil {
				return err
			}
			if err := g.apply(ctx, domain.CompleteDestroy{ServerID: servers[0].ID}); err != nil {
				return err
			}
		}
		if err := g.apply(ctx, domain.Settle{}); err != nil {
			return err
		}
	}
	return nil
}

// buffered keeps one account's appends in memory and writes them in large
// appends at flush.
type buffered struct {
	eventstore.Store
	stream  string
	version int64
	events  []eventstore.Proposed
}

func (b *buffered) Append(_ context.Context, stream string, expected int64, events []eventstore.Proposed) (eventstore.AppendResult, error) {
	if b.stream == "" {
		b.stream, b.version = stream, expected
	}
	if stream != b.stream {
		return eventstore.AppendResult{}, fmt.Errorf("history: buffered appends to %s and %s", b.stream, stream)
	}
	b.events = append(b.events, events...)
	return eventstore.AppendResult{Version: uint64(b.version + int64(len(b.events)))}, nil
}

func (b *buffered) flush(ctx context.Context) error {
	expected := b.version
	for len(b.events) > 0 {
		n := min(len(b.events), 2000)
		res, err := b.Store.Append(ctx, b.stream, expected, b.events[:n])
		if err != nil {
			return err
		}
		expected = int64(res.Version)
		b.events = b.events[n:]
	}
	return nil
}
