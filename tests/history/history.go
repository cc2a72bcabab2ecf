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

// Generate appends about n events to store, starting at start, and returns
// how many it wrote. Each account registers, is topped up, deploys three
// servers, and is billed until it has produced its share of events; one
// server in three is destroyed halfway.
func Generate(ctx context.Context, store eventstore.Store, n int, start time.Time) (int, error) {
	const perAccount = 1000
	written := 0
	cat := domain.DefaultCatalog()
	plan, _ := cat.Plan("vc2-1c-1gb")
	for i := 0; written < n; i++ {
		id := uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "history-%d", i)).String()
		a := domain.NewAccount(id)
		version := eventstore.NoStream
		now := start
		apply := func(cmd domain.Command) error {
			events, err := domain.Decide(a, cmd, now)
			if err != nil {
				return fmt.Errorf("account %d at %s: %T: %w", i, now, cmd, err)
			}
			if len(events) == 0 {
				return nil
			}
			props, err := eventstore.Propose(eventstore.Metadata{Actor: "history"}, events...)
			if err != nil {
				return err
			}
			for _, e := range events {
				a = domain.Evolve(a, e)
			}
			res, err := store.Append(ctx, domain.AccountStream(id), version, props)
			if err != nil {
				return err
			}
			version = int64(res.Version)
			written += len(events)
			return nil
		}
		topup := uuid.NewString()
		steps := []domain.Command{
			// The email as the log holds it: sealed with the account's data
			// key (a stand-in of the same size: nothing here opens it); the
			// password hash is in the credential store, under a ref.
			domain.Register{AccountID: id, SealedEmail: fmt.Sprintf("v1:%064x", i), CredentialRef: uuid.NewString(),
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
			if err := apply(cmd); err != nil {
				return written, err
			}
		}
		now = now.Add(90 * time.Second)
		for _, s := range servers {
			if err := apply(domain.StartProvision{ServerID: s.ID}); err != nil {
				return written, err
			}
			if err := apply(domain.RecordInstance{ServerID: s.ID, InstanceID: "i-" + s.ID[:8]}); err != nil {
				return written, err
			}
			if err := apply(domain.Activate{ServerID: s.ID, IPv4: "198.18.0.1"}); err != nil {
				return written, err
			}
		}
		budget := min(perAccount, n-written+20)
		// Settle a day at a time: the biller catches up hour by hour inside
		// one decision, as it does after downtime.
		for hour := 24; version < int64(budget) && written < n; hour += 24 {
			now = start.Add(time.Duration(hour) * time.Hour)
			if hour == 96 {
				if err := apply(domain.Destroy{ServerID: servers[0].ID}); err != nil {
					return written, err
				}
				if err := apply(domain.CompleteDestroy{ServerID: servers[0].ID}); err != nil {
					return written, err
				}
			}
			if err := apply(domain.Settle{}); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}
