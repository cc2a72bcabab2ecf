package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// Progress is what Run reports as it goes.
type Progress struct {
	Events   int64
	Position eventstore.Position
	// Head is where the audit stops: the end of the log when it began.
	Head    eventstore.Position
	Elapsed time.Duration
}

// RunOptions tune how Run reads the log.
type RunOptions struct {
	// Progress, if set, is called after every page the fold has taken, from
	// the goroutine that called Run.
	Progress func(Progress)
	// Page is how many events one read takes (default 2048).
	Page int
	// Workers decode in parallel (default GOMAXPROCS).
	Workers int
	// Model, if set, is a read model to build from the same read of the
	// log (check 6 against the in-memory model): every page is applied to
	// it, in order, with the events the audit decoded, on a goroutine of
	// its own alongside the fold. The log is read and decoded once for
	// both.
	Model projections.DecodedApplier
}

// ErrModel wraps a failure to build RunOptions.Model: a log the read model
// cannot take (an event it cannot decode) would not start a server either.
var ErrModel = errors.New("build the read model")

// Run feeds the whole log of store, up to its head when Run starts, into a,
// and returns that head. It reads through the store port alone, page after
// page (eventstore.Scan); decoding the domain events, checking hashes and
// the other per-event work run on Workers goroutines meanwhile, and the
// fold stays in log order on this goroutine. A log that grows meanwhile is
// audited as it was at the start, so that the read model can be compared
// on the same prefix (see Bounded).
func Run(ctx context.Context, store eventstore.Store, a *Auditor, ro RunOptions) (eventstore.Position, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return head, fmt.Errorf("audit: read the head of the log: %w", err)
	}
	if head.IsZero() {
		return head, nil
	}
	workers := ro.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// Results are recycled once folded, so a long audit allocates less.
	outs := newFreeList[[]prepared](4*workers + 8)
	type page struct {
		ps []prepared
		// decoded are the domain events for the model; modelErr the first
		// event of a stream it folds that did not decode.
		decoded  []domain.Event
		modelErr error
	}
	prep := func(events []eventstore.Event) (page, error) {
		out := outs.get()
		if cap(out) < len(events) {
			out = make([]prepared, len(events))
		}
		out = out[:len(events)]
		var pg page
		if ro.Model != nil {
			pg.decoded = make([]domain.Event, len(events))
		}
		for i := range events {
			p := &out[i]
			prepare(p, &events[i])
			if ro.Model == nil {
				continue
			}
			if p.err != nil && projections.Folded(p.ev.Stream) && pg.modelErr == nil {
				pg.modelErr = fmt.Errorf("event %s at %s: %w", p.ev.ID, p.ev.Position, p.err)
			}
			pg.decoded[i] = p.e
		}
		pg.ps = out
		return pg, nil
	}

	// The model applies on its own goroutine, a few pages behind the fold.
	type modelPage struct {
		events  []eventstore.Event
		decoded []domain.Event
	}
	var modelPages chan modelPage
	modelDone := make(chan error, 1)
	var modelErr error
	if ro.Model != nil {
		modelPages = make(chan modelPage, 4)
		go func() {
			var err error
			for mp := range modelPages {
				if err == nil {
					err = ro.Model.ApplyDecoded(ctx, mp.events, mp.decoded)
				}
			}
			modelDone <- err
		}()
	}

	start := time.Now()
	var last eventstore.Position
	err = eventstore.Scan(ctx, store, eventstore.ScanOptions{Head: head, Page: ro.Page, Workers: workers}, prep,
		func(events []eventstore.Event, pg page) error {
			for i := range pg.ps {
				a.fold(&pg.ps[i])
			}
			last = pg.ps[len(pg.ps)-1].ev.Position
			// Nothing the fold keeps points into ps (it copies what it
			// keeps), so its memory can carry the next page.
			clear(pg.ps)
			outs.put(pg.ps)
			if modelPages != nil && modelErr == nil {
				if pg.modelErr != nil {
					modelErr = pg.modelErr
				} else {
					select {
					case modelPages <- modelPage{events: events, decoded: pg.decoded}:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			if ro.Progress != nil {
				ro.Progress(Progress{Events: a.report.Events, Position: last, Head: head, Elapsed: time.Since(start)})
			}
			return nil
		})
	if modelPages != nil {
		close(modelPages)
		if e := <-modelDone; modelErr == nil {
			modelErr = e
		}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return head, ctxErr
	}
	if err != nil {
		return head, fmt.Errorf("audit: %w", err)
	}
	if last.Less(head) {
		return head, fmt.Errorf("audit: the log ended at %s, before its head %s", last, head)
	}
	if modelErr != nil {
		return head, fmt.Errorf("%w: %w", ErrModel, modelErr)
	}
	return head, nil
}

// ReadLog calls fn with the events of store strictly after from and up to
// head, in order, a page (default 1024 events) at a time, through the
// store's ReadAll. The bulk readers (audit, export, replay) use it. The
// events are fn's to keep. An error of fn stops the read and is returned
// as is.
func ReadLog(ctx context.Context, store eventstore.Store, from, head eventstore.Position, page int,
	fn func([]eventstore.Event) error) error {
	if page <= 0 {
		page = 1024
	}
	for from.Less(head) {
		events, err := store.ReadAll(ctx, from, page)
		if err != nil {
			return fmt.Errorf("read the log after %s: %w", from, err)
		}
		n := len(events)
		for n > 0 && head.Less(events[n-1].Position) {
			n--
		}
		if n == 0 {
			return nil
		}
		if err := fn(events[:n]); err != nil {
			return err
		}
		from = events[n-1].Position
	}
	return nil
}

// freeList hands back memory put into it, or the zero value.
type freeList[T any] chan T

func newFreeList[T any](n int) freeList[T] { return make(chan T, n) }

func (f freeList[T]) get() T {
	select {
	case v := <-f:
		return v
	default:
		var zero T
		return zero
	}
}

func (f freeList[T]) put(v T) {
	select {
	case f <- v:
	default:
	}
}

// BalanceReader is what check 6 needs of a read model.
type BalanceReader interface {
	// Balance returns the account's balance, or ok false if the read model
	// does not have the account.
	Balance(ctx context.Context, accountID string) (b domain.Money, ok bool, err error)
}

// ReaderBalances adapts any read model (memory, Postgres) to check 6.
func ReaderBalances(r projections.Reader) BalanceReader { return readerBalances{r} }

type readerBalances struct{ r projections.Reader }

func (rb readerBalances) Balance(ctx context.Context, id string) (domain.Money, bool, error) {
	v, err := rb.r.Account(ctx, id)
	if errors.Is(err, projections.ErrNotFound) {
		return domain.Money{}, false, nil
	}
	if err != nil {
		return domain.Money{}, false, err
	}
	return v.Balance, true, nil
}

// Bounded is a read-only view of store that ends at head. The audit reads
// through it, and so does the projector that builds the read model check 6
// compares against, so both see the same log even while a live store grows.
func Bounded(store eventstore.Store, head eventstore.Position) eventstore.Store {
	return bounded{Store: store, head: head}
}

type bounded struct {
	eventstore.Store
	head eventstore.Position
}

var errReadOnly = errors.New("audit: the audited log is read-only")

func (b bounded) Append(context.Context, string, int64, []eventstore.Proposed) (eventstore.AppendResult, error) {
	return eventstore.AppendResult{}, errReadOnly
}

func (b bounded) cut(events []eventstore.Event) []eventstore.Event {
	for len(events) > 0 && b.head.Less(events[len(events)-1].Position) {
		events = events[:len(events)-1]
	}
	return events
}

func (b bounded) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Event, error) {
	events, err := b.Store.ReadStream(ctx, stream, from)
	return b.cut(events), err
}

func (b bounded) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	events, err := b.Store.ReadAll(ctx, from, limit)
	return b.cut(events), err
}

func (b bounded) ReadAllLazy(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	events, err := b.Store.ReadAllLazy(ctx, from, limit)
	return b.cut(events), err
}

func (b bounded) ReadStreamLazy(ctx context.Context, stream string, from uint64) ([]eventstore.Event, error) {
	events, err := b.Store.ReadStreamLazy(ctx, stream, from)
	return b.cut(events), err
}

func (b bounded) Head(context.Context) (eventstore.Position, error) { return b.head, nil }

// Subscribe delivers the log up to head, then waits for ctx like a
// subscription to a log nobody appends to.
func (b bounded) Subscribe(ctx context.Context, from eventstore.Position, fn func([]eventstore.Event) error) error {
	for from.Less(b.head) {
		events, err := b.ReadAll(ctx, from, 512)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			break
		}
		if err := fn(events); err != nil {
			return err
		}
		from = events[len(events)-1].Position
	}
	<-ctx.Done()
	return ctx.Err()
}

// Close does not close the underlying store, which the caller owns.
func (b bounded) Close() error { return nil }
