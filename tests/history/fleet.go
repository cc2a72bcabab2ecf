package history

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// Fleet is what FleetOf wrote: accounts with live servers.
type Fleet struct {
	// Accounts are the account ids, in the order they were generated.
	Accounts []string
	// Servers counts the live (ACTIVE) servers.
	Servers int
	// Events counts the events written.
	Events int
	// BilledUntil is when every server's next hour is due.
	BilledUntil time.Time
}

// FleetOf appends accounts accounts, each registered (with the highest
// server limit), topped up with far more than it will spend, and running
// perAccount ACTIVE servers deployed at start (so each is billed until
// start + 1h), as the service would have decided them. Accounts are written concurrently (64 at a time), one
// append per account, so a large fleet is quick to build. The ids are
// derived from seed and the account's number, so two fleets of one seed
// are the same accounts.
func FleetOf(ctx context.Context, store eventstore.Store, seed string, accounts, perAccount int, start time.Time) (Fleet, error) {
	plan, ok := domain.DefaultCatalog().Plan("vc2-1c-1gb")
	if !ok {
		return Fleet{}, fmt.Errorf("no plan vc2-1c-1gb in the default catalog")
	}
	ids := make([]string, accounts)
	for i := range ids {
		ids[i] = uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "fleet-%s-%d", seed, i)).String()
	}
	var (
		next   atomic.Int64
		events atomic.Int64
		mu     sync.Mutex
		first  error
		wg     sync.WaitGroup
	)
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= accounts || ctx.Err() != nil {
					return
				}
				n, err := fleetAccount(ctx, store, ids[i], i, perAccount, plan, start)
				events.Add(int64(n))
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return Fleet{Accounts: ids, Servers: accounts * perAccount, Events: int(events.Load()),
		BilledUntil: start.Add(time.Hour).UTC()}, first
}

// fleetAccount decides one account's history and appends it at once.
func fleetAccount(ctx context.Context, store eventstore.Store, id string, i, servers int, plan domain.Plan, now time.Time) (int, error) {
	a := domain.NewAccount(id)
	var all []domain.Event
	apply := func(cmd domain.Command) error {
		events, err := domain.Decide(a, cmd, now)
		if err != nil {
			return fmt.Errorf("fleet account %d: %T: %w", i, cmd, err)
		}
		for _, e := range events {
			a = domain.Evolve(a, e)
		}
		all = append(all, events...)
		return nil
	}
	topup := uuid.NewSHA1(uuid.NameSpaceOID, []byte(id+"/topup")).String()
	cmds := []domain.Command{
		domain.Register{AccountID: id, SealedEmail: fmt.Sprintf("v1:%064x", i), CredentialRef: uuid.NewSHA1(uuid.NameSpaceOID, []byte(id+"/credential")).String(),
			ServerLimit: domain.MaxServerLimit, SignupCredit: domain.MustMoney("10.00")},
		domain.CreateTopup{TopupID: topup, Amount: domain.MustMoney("10000.00"), Currency: "BTC", PayAddress: "tb1qfleet"},
		domain.PayTopup{TopupID: topup},
	}
	specs := make([]domain.ServerSpec, servers)
	for k := range specs {
		specs[k] = domain.ServerSpec{ID: uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "%s/server-%d", id, k)).String(),
			Label: fmt.Sprintf("bot-%d", k), Plan: plan.ID, Region: "ams", HourlyPrice: plan.HourlyPrice}
	}
	cmds = append(cmds, domain.Deploy{Servers: specs, Bulk: servers > 1})
	for k, s := range specs {
		cmds = append(cmds, domain.StartProvision{ServerID: s.ID},
			domain.RecordInstance{ServerID: s.ID, InstanceID: fmt.Sprintf("fleet-%d-%d", i, k)},
			domain.Activate{ServerID: s.ID, IPv4: fmt.Sprintf("198.18.%d.%d", (i/250)%256, i%250+1)})
	}
	for _, cmd := range cmds {
		if err := apply(cmd); err != nil {
			return 0, err
		}
	}
	props, err := eventstore.Propose(eventstore.Metadata{Actor: "history"}, all...)
	if err != nil {
		return 0, err
	}
	if _, err := store.Append(ctx, domain.AccountStream(id), eventstore.NoStream, props); err != nil {
		return 0, fmt.Errorf("fleet account %d: %w", i, err)
	}
	return len(all), nil
}
