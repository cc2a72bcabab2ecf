package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
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
	// Page is how many events one read takes (default 1024).
	Page int
	// Workers decode in parallel (default GOMAXPROCS).
	Workers int
}

// Run feeds the whole log of store, up to its head when Run starts, into a,
// and returns that head. Decoding, hashing and the other per-event checks
// run on every CPU; the fold stays in log order on this goroutine. A log
// that grows meanwhile is audited as it was at the start, so that the read
// model can be compared on the same prefix (see Bounded).
func Run(ctx context.Context, store eventstore.Store, a *Auditor, ro RunOptions) (eventstore.Position, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return head, fmt.Errorf("audit: read the head of the log: %w", err)
	}
	store = unwrap(store)
	if head.IsZero() {
		return head, nil
	}
	page := ro.Page
	if page <= 0 {
		page = 1024
	}
	workers := ro.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	type job struct {
		page logPage
		out  chan []prepared
	}
	// Both queues are bounded, so a fold that falls behind holds the reader
	// back and memory stays a few pages per worker; and pages and their
	// results are recycled once folded, so a long audit allocates little.
	jobs := make(chan job, 2*workers)
	ordered := make(chan job, 2*workers)
	mems := newFreeList[*pageMem](4*workers + 4)
	outs := newFreeList[[]prepared](4*workers + 4)
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(jobs)
		defer close(ordered)
		readErr = readPages(ctx, store, eventstore.Position{}, head, page, mems, func(lp logPage) error {
			j := job{page: lp, out: make(chan []prepared, 1)}
			select {
			case ordered <- j:
			case <-ctx.Done():
				return ctx.Err()
			}
			jobs <- j // workers never block, so this cannot wait for ever
			return nil
		})
	})
	for range workers {
		wg.Go(func() {
			d := newDecoder()
			for j := range jobs {
				n := len(j.page.events)
				out := outs.get()
				if cap(out) < n {
					out = make([]prepared, n)
				}
				out = out[:n]
				for i := range out {
					ev, err := j.page.event(i, d, true)
					if err != nil {
						// The envelope itself is unreadable: only its
						// position is known, and that is what is named.
						out[i] = prepared{ev: ev, err: err}
						continue
					}
					out[i] = prepare(ev, d)
				}
				j.out <- out
			}
		})
	}

	start := time.Now()
	var last eventstore.Position
	for j := range ordered {
		var ps []prepared
		select {
		case ps = <-j.out:
		case <-ctx.Done():
		}
		if ctx.Err() != nil || len(ps) == 0 {
			break
		}
		for i := range ps {
			a.fold(&ps[i])
		}
		last = ps[len(ps)-1].ev.Position
		// Nothing the fold keeps points into the page (it copies what it
		// keeps), so its memory can carry the next one.
		clear(ps)
		outs.put(ps)
		if j.page.mem != nil {
			mems.put(j.page.mem)
		}
		if ro.Progress != nil {
			ro.Progress(Progress{Events: a.report.Events, Position: last, Head: head, Elapsed: time.Since(start)})
		}
	}
	cancel()
	for range ordered { // let the reader finish if the fold stopped early
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return head, err
	}
	if readErr != nil {
		return head, fmt.Errorf("audit: %w", readErr)
	}
	if last.Less(head) {
		return head, fmt.Errorf("audit: the log ended at %s, before its head %s", last, head)
	}
	return head, nil
}

// RawReader is implemented by stores that can hand out each event's JSON
// encoding (eventstore.Event's JSON form) undecoded, as the embedded bbolt
// store does. ReadLog then decodes it with a parser several times faster
// than encoding/json, which is what lets an audit keep up with a million
// events in seconds.
type RawReader interface {
	ReadAllRaw(ctx context.Context, from eventstore.Position, limit int, fn func(raw []byte) error) error
}

// ReadLog calls fn with the events of store strictly after from and up to
// head, in order, a page at a time. Bulk readers (audit, export, replay)
// use it: it takes the fast RawReader path when the store has one. The
// events are fn's to keep. An error of fn stops the read and is returned
// as is.
func ReadLog(ctx context.Context, store eventstore.Store, from, head eventstore.Position, page int,
	fn func([]eventstore.Event) error) error {
	return readPages(ctx, store, from, head, page, nil, func(lp logPage) error {
		if lp.raw == nil {
			return fn(lp.events)
		}
		events := make([]eventstore.Event, len(lp.events))
		for i := range events {
			ev, err := lp.event(i, nil, false)
			if err != nil {
				return err
			}
			events[i] = ev
		}
		return fn(events)
	})
}

// logPage is a page of the log on its way to being decoded: either decoded
// events, or (the RawReader path) their stored JSON, of which the reader
// has only read the positions so that the envelopes are decoded by
// whoever has CPU to spare.
type logPage struct {
	events []eventstore.Event
	raw    [][]byte // nil entries: events[i] is decoded already
	mem    *pageMem // where events and raw live, for recycling
}

// pageMem is the memory of a raw page.
type pageMem struct {
	buf    []byte
	ends   []int
	events []eventstore.Event
	raw    [][]byte
}

// event returns the i-th event of the page, decoding it if need be.
func (lp logPage) event(i int, d *decoder, lite bool) (eventstore.Event, error) {
	if lp.raw == nil || lp.raw[i] == nil {
		return lp.events[i], nil
	}
	ev, err := decodeEnvelope(lp.raw[i], d, lite)
	if err != nil {
		return lp.events[i], fmt.Errorf("corrupt event at %s: %w", lp.events[i].Position, err)
	}
	return ev, nil
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

// readPages reads pages; with mems, raw pages reuse memory from it (and
// the caller puts it back), without, every page is fresh.
func readPages(ctx context.Context, store eventstore.Store, from, head eventstore.Position, page int,
	mems freeList[*pageMem], fn func(logPage) error) error {
	if page <= 0 {
		page = 1024
	}
	if b, ok := store.(bounded); ok {
		store, head = b.Store, minPosition(head, b.head)
	}
	raw, _ := store.(RawReader)
	for from.Less(head) {
		var lp logPage
		var err error
		if raw != nil {
			var mem *pageMem
			if mems != nil {
				mem = mems.get()
			}
			lp, err = readRawPage(ctx, raw, from, page, mem)
		} else {
			lp.events, err = store.ReadAll(ctx, from, page)
		}
		if err != nil {
			return fmt.Errorf("read the log after %s: %w", from, err)
		}
		n := len(lp.events)
		for n > 0 && head.Less(lp.events[n-1].Position) {
			n--
		}
		if n == 0 {
			return nil
		}
		lp.events = lp.events[:n]
		if lp.raw != nil {
			lp.raw = lp.raw[:n]
		}
		if err := fn(lp); err != nil {
			return err
		}
		from = lp.events[n-1].Position
	}
	return nil
}

// readRawPage reads a page through RawReader into one buffer (the raw
// bytes are only lent for the call) and reads only each event's position,
// from the prefix the embedded store writes; an event that does not start
// that way is decoded whole here.
func readRawPage(ctx context.Context, r RawReader, from eventstore.Position, page int, mem *pageMem) (logPage, error) {
	if mem == nil {
		mem = &pageMem{}
	}
	mem.buf, mem.ends = mem.buf[:0], mem.ends[:0]
	err := r.ReadAllRaw(ctx, from, page, func(raw []byte) error {
		mem.buf = append(mem.buf, raw...)
		mem.ends = append(mem.ends, len(mem.buf))
		return nil
	})
	if err != nil {
		return logPage{}, err
	}
	n := len(mem.ends)
	if cap(mem.events) < n {
		mem.events, mem.raw = make([]eventstore.Event, n), make([][]byte, n)
	}
	mem.events, mem.raw = mem.events[:n], mem.raw[:n]
	clear(mem.events)
	lp := logPage{events: mem.events, raw: mem.raw, mem: mem}
	start := 0
	for i, end := range mem.ends {
		raw := mem.buf[start:end:end]
		start = end
		if pos, ok := quickPosition(raw); ok {
			lp.events[i].Position, lp.raw[i] = pos, raw
			continue
		}
		ev, err := decodeEnvelope(raw, nil, false)
		if err != nil {
			return logPage{}, fmt.Errorf("corrupt event #%d after %s: %w", i+1, from, err)
		}
		lp.events[i], lp.raw[i] = ev, nil
	}
	return lp, nil
}

// quickPosition reads the position from the prefix the embedded store
// writes, {"version":N,"position":{"commit":C,"prepare":P}.
func quickPosition(raw []byte) (eventstore.Position, bool) {
	s := scanner{b: raw}
	var p eventstore.Position
	if !s.lit(`{"version":`) {
		return p, false
	}
	if _, ok := s.uint(); !ok || !s.lit(`,"position":{"commit":`) {
		return p, false
	}
	var ok bool
	if p.Commit, ok = s.uint(); !ok || !s.lit(`,"prepare":`) {
		return p, false
	}
	if p.Prepare, ok = s.uint(); !ok || !s.lit(`}`) {
		return p, false
	}
	return p, true
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

var (
	errReadOnly = errors.New("audit: the audited log is read-only")
	errStopPage = errors.New("one page read")
)

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
	if limit <= 0 {
		return nil, fmt.Errorf("audit: read all: limit must be positive, got %d", limit)
	}
	// The projector that fills the read model for check 6 reads through
	// here: ReadLog's fast decoding saves it most of its time.
	var events []eventstore.Event
	err := ReadLog(ctx, b.Store, from, b.head, limit, func(page []eventstore.Event) error {
		events = page
		return errStopPage
	})
	if errors.Is(err, errStopPage) {
		err = nil
	}
	return events, err
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

// unwrap sees through a bounded view, whose head the caller has already
// taken, to the store and its fast path.
func unwrap(store eventstore.Store) eventstore.Store {
	if b, ok := store.(bounded); ok {
		return b.Store
	}
	return store
}

func minPosition(p, q eventstore.Position) eventstore.Position {
	if q.Less(p) {
		return q
	}
	return p
}

// Close does not close the underlying store, which the caller owns.
func (b bounded) Close() error { return nil }
