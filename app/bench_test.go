package app_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/aggsnap"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/tests/history"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// longAccount writes an account of about n events: ten servers billed hour
// after hour (a year of them is 87,600 charges), settled a day at a time
// as the biller would after a pause. It returns the account id and the
// time the history ends at.
func longAccount(b *testing.B, store eventstore.Store, n int) (string, time.Time) {
	b.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a := domain.NewAccount(id)
	version := eventstore.NoStream
	apply := func(cmd domain.Command) {
		events, err := domain.Decide(a, cmd, now)
		if err != nil {
			b.Fatalf("%T: %v", cmd, err)
		}
		if len(events) == 0 {
			return
		}
		for _, e := range events {
			a = domain.Evolve(a, e)
		}
		props, err := eventstore.Propose(eventstore.Metadata{Actor: "history"}, events...)
		if err != nil {
			b.Fatal(err)
		}
		res, err := store.Append(ctx, domain.AccountStream(id), version, props)
		if err != nil {
			b.Fatal(err)
		}
		version = int64(res.Version)
	}
	topup := uuid.NewString()
	apply(domain.Register{AccountID: id, SealedEmail: "v1:long", CredentialRef: uuid.NewString(), ServerLimit: 10,
		SignupCredit: domain.MustMoney("10.00")})
	apply(domain.CreateTopup{TopupID: topup, Amount: domain.MustMoney("10000.00"), Currency: "BTC", PayAddress: "tb1qlong"})
	apply(domain.PayTopup{TopupID: topup})
	specs := make([]domain.ServerSpec, 10)
	for k := range specs {
		specs[k] = domain.ServerSpec{ID: uuid.NewString(), Label: fmt.Sprintf("year-%d", k), Plan: "vc2-1c-1gb", Region: "ams",
			HourlyPrice: domain.MustMoney("0.014")}
	}
	apply(domain.Deploy{Servers: specs, Bulk: true})
	for _, s := range specs {
		apply(domain.StartProvision{ServerID: s.ID})
		apply(domain.RecordInstance{ServerID: s.ID, InstanceID: "i-" + s.ID[:8]})
		apply(domain.Activate{ServerID: s.ID, IPv4: "198.18.0.1"})
	}
	for version < int64(n) {
		now = now.Add(24 * time.Hour)
		apply(domain.Settle{})
	}
	return id, now
}

// BenchmarkCompareLongAccount: the first command on an account of 100,000
// events (a year of ten servers) after a restart, and the commands after
// it. The runner has no read model to start from (the scale-out topology:
// the embedded one starts from its read model's fold, which is faster
// still), only the aggregate snapshots a previous process left: it loads
// the latest and the events after it.
func BenchmarkCompareLongAccount(b *testing.B) {
	b.Run("project", func(b *testing.B) {
		ctx := context.Background()
		dir := b.TempDir()
		path := filepath.Join(dir, "events.db")
		store, err := bbolt.Open(path, bbolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		id, end := longAccount(b, store, 100_000)
		clock := sandbox.NewClock(func() time.Time { return end }, 0)
		snapPath := filepath.Join(dir, "snapshots.db")
		snaps, err := aggsnap.Open(snapPath)
		if err != nil {
			b.Fatal(err)
		}
		// The process before the restart: it folded the account whole once
		// (what every first command cost before snapshots) and kept a
		// snapshot; then it ran commands for a while.
		before := app.NewAccounts(store, clock)
		before.SetSnapshots(snaps, app.SnapshotEvery)
		t0 := time.Now()
		d, err := before.Load(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("account of %d events: folded whole in %s", d.Version+1, time.Since(t0))
		hour := time.Duration(0)
		command := func(r *app.Accounts) {
			hour += time.Hour
			clock.SetOffset(hour)
			if _, err := r.Run(ctx, id, domain.Settle{}, eventstore.Metadata{}); err != nil {
				b.Fatal(err)
			}
		}
		for range 7 {
			command(before)
		}
		snaps.Close()
		store.Close()

		var later time.Duration
		laterN := 0
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			// A restart: the log and the snapshots opened again, nothing
			// kept in memory.
			if store, err = bbolt.Open(path, bbolt.Options{}); err != nil {
				b.Fatal(err)
			}
			if snaps, err = aggsnap.Open(snapPath); err != nil {
				b.Fatal(err)
			}
			r := app.NewAccounts(store, clock)
			r.SetSnapshots(snaps, app.SnapshotEvery)
			b.StartTimer()
			command(r)
			b.StopTimer()
			t := time.Now()
			for range 10 {
				command(r)
			}
			later += time.Since(t)
			laterN += 10
			snaps.Close()
			store.Close()
			b.StartTimer()
		}
		b.StopTimer()
		if store, err = bbolt.Open(path, bbolt.Options{}); err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		if err := history.Audit(ctx, store); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/first-command")
		b.ReportMetric(float64(later.Nanoseconds())/float64(laterN), "ns/later-command")
	})
}
