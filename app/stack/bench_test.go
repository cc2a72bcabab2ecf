package stack_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/history"
)

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// deployWriters is the concurrency: 64 accounts deploying at once.
const deployWriters = 64

// BenchmarkCompareDeploys: deploys through the application (load the
// account, check the catalog, the cloud's availability and the balance,
// decide, append, wait until the read model shows it) from 64 writers at
// once, each on accounts of its own, against raw bbolt batched appends
// (go.etcd.io/bbolt's DB.Batch, one put of a deploy's bytes per append) at
// the same concurrency. Both report appends/s: a deploy is one append.
func BenchmarkCompareDeploys(b *testing.B) {
	b.Run("project", func(b *testing.B) {
		ctx := context.Background()
		dir := b.TempDir()
		store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		// Enough accounts that none grows past a handful of servers.
		fleet, err := history.FleetOf(ctx, store, "deploys", 64*deployWriters, 1, time.Now().UTC())
		if err != nil {
			b.Fatal(err)
		}
		st, err := stack.New(ctx, stack.Config{Store: store, Model: memory.New(store),
			SandboxCloud: filepath.Join(dir, "cloud.json"), ManualWork: true})
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		stop := st.Start()
		defer stop()
		// The start-up's background pass over the log is not a deploy's.
		<-st.CredentialsImported()
		var next atomic.Int64
		var wg sync.WaitGroup
		commits0 := store.Commits()
		cpu0 := cpuTime(b)
		b.ResetTimer()
		for w := range deployWriters {
			wg.Go(func() {
				for i := w; next.Add(1) <= int64(b.N); i += deployWriters {
					id := fleet.Accounts[i%len(fleet.Accounts)]
					_, err := st.App.Deploy(ctx, id, []app.ServerRequest{{Label: "bench", Plan: "vc2-1c-1gb", Region: "ams"}},
						false, app.Idempotency{}, eventstore.Metadata{Actor: "account:" + id})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		if err := history.Audit(ctx, store); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		// On a busy machine the CPU a deploy costs says more than the rate.
		b.Logf("%d deploys: %.0f µs of CPU each, %.1f deploys a commit", b.N, float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N),
			float64(b.N)/float64(max(store.Commits()-commits0, 1)))
	})
	b.Run("baseline", func(b *testing.B) {
		db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("log")); return err }); err != nil {
			b.Fatal(err)
		}
		// A deploy's events as the log keeps them: about this many bytes.
		value := make([]byte, 1600)
		for i := range value {
			value[i] = byte('a' + i%26)
		}
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		for range deployWriters {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					err := db.Batch(func(tx *bolt.Tx) error {
						bk := tx.Bucket([]byte("log"))
						seq, err := bk.NextSequence()
						if err != nil {
							return err
						}
						return bk.Put(binary.BigEndian.AppendUint64(nil, seq), value)
					})
					if err != nil {
						b.Error(fmt.Errorf("batch: %w", err))
						return
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	})
}
