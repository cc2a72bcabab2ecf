package eventstore

import (
	"context"
	"fmt"
	"runtime"
	"sync"
)

// ScanOptions tune Scan.
type ScanOptions struct {
	// From: the scan starts strictly after it.
	From Position
	// Head, if not zero, is where the scan stops (events after it are left
	// out); zero reads until the log has nothing more.
	Head Position
	// Page is how many events one read takes (default 2048).
	Page int
	// Workers run prepare (default GOMAXPROCS).
	Workers int
}

// Scan reads the log of s page after page (Store.ReadAllLazy: payloads stay in
// the store's encoding until decoded) and has each page prepared on one of
// Workers goroutines while the next pages are read and the earlier ones
// consumed; consume gets every page with what prepare made of it, in log
// order, on the calling goroutine. It is how the bulk readers (the start-up
// replay, the audit, a rebuild) decode in parallel and apply in order.
//
// Memory stays bounded: a few pages per worker are in flight, and a
// consumer that falls behind holds the reader back. The pages are
// consume's to keep. An error of prepare or consume (or of the read) stops
// the scan and is returned; consume is not called after an error.
func Scan[T any](ctx context.Context, s Store, o ScanOptions, prepare func([]Event) (T, error),
	consume func([]Event, T) error) error {
	if o.Page <= 0 {
		o.Page = 2048
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type result struct {
		v   T
		err error
	}
	type job struct {
		events []Event
		out    chan result // buffered: a worker never waits on it
	}
	// The reader hands each page to the workers and, in the same order, to
	// the consumer, which waits for that page's result: order kept, work
	// spread. Both queues are bounded.
	jobs := make(chan job, 2*o.Workers)
	ordered := make(chan job, 2*o.Workers)
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(jobs)
		defer close(ordered)
		from := o.From
		for o.Head.IsZero() || from.Less(o.Head) {
			events, err := s.ReadAllLazy(ctx, from, o.Page)
			if err != nil {
				if ctx.Err() == nil {
					readErr = fmt.Errorf("read the log after %s: %w", from, err)
				}
				return
			}
			n := len(events)
			for !o.Head.IsZero() && n > 0 && o.Head.Less(events[n-1].Position) {
				n--
			}
			if n == 0 {
				return
			}
			j := job{events: events[:n], out: make(chan result, 1)}
			select {
			case ordered <- j:
			case <-ctx.Done():
				return
			}
			jobs <- j // workers never block, so this cannot wait for ever
			from = events[n-1].Position
		}
	})
	for range o.Workers {
		wg.Go(func() {
			for j := range jobs {
				if ctx.Err() != nil {
					j.out <- result{err: ctx.Err()}
					continue
				}
				v, err := prepare(j.events)
				j.out <- result{v: v, err: err}
			}
		})
	}
	var err error
	for j := range ordered {
		if err = ctx.Err(); err != nil {
			break // the caller gave up: nothing more is consumed
		}
		var r result
		select {
		case r = <-j.out:
		case <-ctx.Done():
			r.err = ctx.Err()
		}
		if r.err == nil {
			r.err = consume(j.events, r.v)
		}
		if r.err != nil {
			err = r.err
			break
		}
	}
	cancel()
	for range ordered { // let the reader finish if the consumer stopped early
	}
	wg.Wait()
	if err != nil {
		return err
	}
	if err := parent.Err(); err != nil {
		return err // the reader stopped for it, the log was not read to its end
	}
	return readErr
}
