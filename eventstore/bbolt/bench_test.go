package bbolt

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/google/uuid"
)

var benchData = json.RawMessage(`{"vm":"vm-123","plan":"s-2vcpu-4gb","region":"fra1","price":{"amount":"24.00","currency":"USDT"}}`)

// BenchmarkAppend measures durable appends of one event each, every appender
// on its own stream with an exact expected version, so the concurrent case
// shows what group commit buys.
func BenchmarkAppend(b *testing.B) {
	for _, appenders := range []int{1, 64} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			s := openTemp(b, Options{})
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for a := range appenders {
				wg.Go(func() {
					stream := fmt.Sprint("bench-", a)
					expected := eventstore.NoStream
					for next.Add(1) <= int64(b.N) {
						ev := []eventstore.Proposed{{ID: uuid.New(), Type: "VMOrdered", Data: benchData}}
						res, err := s.Append(ctx, stream, expected, ev)
						if err != nil {
							b.Error(err)
							return
						}
						expected = int64(res.Version)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			if c := s.commits.Load(); c > 0 {
				b.ReportMetric(float64(b.N)/float64(c), "appends/commit")
			}
		})
	}
}

// BenchmarkReadAll pages through the global log 512 events at a time, as a
// catching-up projection does. One op is one page.
func BenchmarkReadAll(b *testing.B) {
	const total, perAppend, page = 20_000, 100, 512
	s := openTemp(b, Options{})
	ctx := context.Background()
	for i := 0; i < total/perAppend; i++ {
		evs := make([]eventstore.Proposed, perAppend)
		for j := range evs {
			evs[j] = eventstore.Proposed{ID: uuid.New(), Type: "VMOrdered", Data: benchData}
		}
		if _, err := s.Append(ctx, fmt.Sprint("bench-", i%50), eventstore.Any, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var read int
	var from eventstore.Position
	for range b.N {
		evs, err := s.ReadAll(ctx, from, page)
		if err != nil {
			b.Fatal(err)
		}
		read += len(evs)
		if len(evs) < page {
			from = eventstore.Position{}
		} else {
			from = evs[len(evs)-1].Position
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
}
