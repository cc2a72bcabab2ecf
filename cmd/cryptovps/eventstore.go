package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/eventstore/esdb"
)

// openEventStore opens KurrentDB when --eventstore-url is set, else the
// embedded store in the data dir.
func openEventStore(ctx context.Context, cfg config, log *slog.Logger) (eventstore.Store, error) {
	if cfg.EventStoreURL != "" {
		s, err := esdb.Open(ctx, cfg.EventStoreURL, esdb.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		log.Info("event store: KurrentDB", "eventstore", s.Dest())
		return s, nil
	}
	return bbolt.Open(filepath.Join(cfg.DataDir, "events.db"), bbolt.Options{})
}

const eventstoreUsage = `usage:
  cryptovps eventstore copy --from DIR --to URL

copy moves the whole history of an embedded event store (DIR/events.db) to
KurrentDB: every event to the same stream, with the same id, type, data and
metadata, in the same global order. Stop the server that uses DIR first: the
file is locked while a server runs. The copy can be interrupted and run
again; it carries on where it stopped. At the end it compares the number of
events and a SHA-256 over every event on both sides, and fails if they
differ.
`

func eventstoreCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "copy" {
		fmt.Fprint(stderr, eventstoreUsage)
		return errors.New("eventstore: copy is the only subcommand")
	}
	fs := flag.NewFlagSet("eventstore copy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "data directory of the embedded store (holding events.db); its server must be stopped")
	to := fs.String("to", "", "KurrentDB connection string, e.g. esdb://localhost:2113?tls=false (env EVENTSTORE_URL)")
	batch := fs.Int("batch", 256, "most events per append (only consecutive events of one stream go together)")
	every := fs.Duration("progress", 2*time.Second, "how often to print progress")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *to == "" {
		*to = os.Getenv("EVENTSTORE_URL")
	}
	if *from == "" || *to == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, eventstoreUsage)
		return errors.New("eventstore copy: --from and --to are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return copyEventStore(ctx, copyOptions{From: *from, To: *to, Batch: *batch, Progress: *every, Log: log}, stdout)
}

type copyOptions struct {
	From, To string
	Batch    int
	Progress time.Duration
	Log      *slog.Logger
}

// copyBatchBytes keeps an append well under KurrentDB's default maximum
// append size (1 MiB).
const copyBatchBytes = 512 << 10

func copyEventStore(ctx context.Context, o copyOptions, out io.Writer) error {
	path := filepath.Join(o.From, "events.db")
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("eventstore copy: no embedded event store at %s: %w", path, err)
	}
	src, err := bbolt.Open(path, bbolt.Options{LockTimeout: time.Second})
	if errors.Is(err, bbolt.ErrLocked) {
		return fmt.Errorf("eventstore copy: %s is locked: a cryptovps server (or another copy) is using it. "+
			"Stop it first: the copy needs the log to stand still", path)
	}
	if err != nil {
		return fmt.Errorf("eventstore copy: %w", err)
	}
	defer src.Close()
	dst, err := esdb.Open(ctx, o.To, esdb.Options{Logger: o.Log})
	if err != nil {
		return fmt.Errorf("eventstore copy: %w", err)
	}
	defer dst.Close()

	head, err := src.Head(ctx)
	if err != nil {
		return fmt.Errorf("eventstore copy: %w", err)
	}
	total := head.Commit // the embedded store numbers its events 1, 2, 3...
	fmt.Fprintf(out, "copying %d events from %s to %s\n", total, path, dst.Dest())

	after, err := resumePoint(ctx, src, dst)
	if err != nil {
		return err
	}
	if !after.IsZero() {
		fmt.Fprintf(out, "resuming: the target already holds the first %d events\n", after.Commit)
	}
	if err := copyFrom(ctx, src, dst, after, total, o, out); err != nil {
		return err
	}
	return verifyCopy(ctx, src, dst, out)
}

// resumePoint finds how far an earlier copy got: the target's last event
// must be an event of the source, and everything up to it has been copied
// (the copy goes in global order).
func resumePoint(ctx context.Context, src *bbolt.Store, dst *esdb.Store) (eventstore.Position, error) {
	last, ok, err := dst.Last(ctx)
	if err != nil || !ok {
		return eventstore.Position{}, err
	}
	evs, err := src.ReadStream(ctx, last.Stream, last.Version)
	if err != nil {
		return eventstore.Position{}, err
	}
	if len(evs) == 0 || evs[0].ID != last.ID {
		return eventstore.Position{}, fmt.Errorf("eventstore copy: the target already holds events that are not from this store "+
			"(its last event, %s in %s at version %d, is not in the source): copy into an empty KurrentDB", last.ID, last.Stream, last.Version)
	}
	return evs[0].Position, nil
}

func copyFrom(ctx context.Context, src *bbolt.Store, dst *esdb.Store, after eventstore.Position, total uint64, o copyOptions, out io.Writer) error {
	started := time.Now()
	lastReport := started
	startedAt := after.Commit
	done := after.Commit
	for {
		page, err := src.ReadAll(ctx, after, 1024)
		if err != nil {
			return fmt.Errorf("eventstore copy: read the source: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for len(page) > 0 {
			// Consecutive events of one stream go in one append: the order
			// of the log is kept, and the appends are fewer.
			n, size := 1, len(page[0].Data)
			for n < len(page) && n < o.Batch && page[n].Stream == page[0].Stream && size+len(page[n].Data) <= copyBatchBytes {
				size += len(page[n].Data)
				n++
			}
			run := page[:n]
			page = page[n:]
			expected := int64(run[0].Version) - 1 // NoStream for the first event of a stream
			if _, err := dst.Import(ctx, run[0].Stream, expected, run); err != nil {
				if errors.Is(err, eventstore.ErrWrongVersion) {
					return fmt.Errorf("eventstore copy: stream %s in the target is not at version %d, where the source has it: "+
						"the target holds other events (copy into an empty KurrentDB that nothing else writes to): %w",
						run[0].Stream, expected, err)
				}
				if strings.Contains(err.Error(), "Maximum Append Size") {
					return fmt.Errorf("eventstore copy: KurrentDB refuses an event this large; raise its maximum append size "+
						"(EVENTSTORE_MAX_APPEND_SIZE) and run the copy again: %w", err)
				}
				return fmt.Errorf("eventstore copy: %w (run the same command again to carry on)", err)
			}
			after = run[len(run)-1].Position
			done += uint64(len(run))
			if now := time.Now(); now.Sub(lastReport) >= o.Progress {
				lastReport = now
				fmt.Fprintf(out, "copied %d/%d events (%.1f%%), %.0f events/s\n", done, total,
					100*float64(done)/float64(max(total, 1)), float64(done-startedAt)/now.Sub(started).Seconds())
			}
		}
	}
	fmt.Fprintf(out, "copied %d/%d events (%d in this run) in %s\n", done, total, done-startedAt, time.Since(started).Round(time.Millisecond))
	return nil
}

// verifyCopy compares both logs event by event: counts, and a SHA-256 over
// every event's stream, version, id, type, data and metadata.
func verifyCopy(ctx context.Context, src, dst eventstore.Store, out io.Writer) error {
	fmt.Fprintln(out, "verifying...")
	sw, dw := &logWalker{s: src}, &logWalker{s: dst}
	sh, dh := sha256.New(), sha256.New()
	var ns, nd uint64
	var firstDiff string
	for {
		se, sok, err := sw.next(ctx)
		if err != nil {
			return fmt.Errorf("eventstore copy: verify: read the source: %w", err)
		}
		de, dok, err := dw.next(ctx)
		if err != nil {
			return fmt.Errorf("eventstore copy: verify: read the target: %w", err)
		}
		if !sok && !dok {
			break
		}
		var sd, dd [32]byte
		if sok {
			ns++
			sd = eventDigest(se)
			sh.Write(sd[:])
		}
		if dok {
			nd++
			dd = eventDigest(de)
			dh.Write(dd[:])
		}
		if firstDiff == "" && (sok != dok || sd != dd) {
			firstDiff = fmt.Sprintf("event %d differs: source %s, target %s", max(ns, nd), describe(se, sok), describe(de, dok))
		}
	}
	ssum, dsum := hex.EncodeToString(sh.Sum(nil)), hex.EncodeToString(dh.Sum(nil))
	fmt.Fprintf(out, "source: %d events, sha256 %s\n", ns, ssum)
	fmt.Fprintf(out, "target: %d events, sha256 %s\n", nd, dsum)
	if ns != nd || ssum != dsum {
		return fmt.Errorf("eventstore copy: verification FAILED: %s", firstDiff)
	}
	fmt.Fprintln(out, "verified: the target holds exactly the events of the source, in the same order")
	return nil
}

func describe(e eventstore.Event, ok bool) string {
	if !ok {
		return "(none)"
	}
	return fmt.Sprintf("%s in %s at version %d", e.ID, e.Stream, e.Version)
}

// eventDigest hashes what a copy must keep of an event, each field with its
// length so that no two events can run together.
func eventDigest(e eventstore.Event) [32]byte {
	h := sha256.New()
	field := func(h hash.Hash, b []byte) {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(b))))
		h.Write(b)
	}
	meta, _ := json.Marshal(e.Meta)
	field(h, []byte(e.Stream))
	field(h, binary.BigEndian.AppendUint64(nil, e.Version))
	field(h, e.ID[:])
	field(h, []byte(e.Type))
	field(h, e.Data)
	field(h, meta)
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// logWalker hands out a store's log one event at a time, a page at a time.
type logWalker struct {
	s     eventstore.Store
	buf   []eventstore.Event
	after eventstore.Position
	end   bool
}

func (w *logWalker) next(ctx context.Context) (eventstore.Event, bool, error) {
	if len(w.buf) == 0 && !w.end {
		page, err := w.s.ReadAll(ctx, w.after, 1024)
		if err != nil {
			return eventstore.Event{}, false, err
		}
		if len(page) == 0 {
			w.end = true
		} else {
			w.buf, w.after = page, page[len(page)-1].Position
		}
	}
	if len(w.buf) == 0 {
		return eventstore.Event{}, false, nil
	}
	e := w.buf[0]
	w.buf = w.buf[1:]
	return e, true, nil
}
