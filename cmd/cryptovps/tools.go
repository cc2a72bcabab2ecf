package main

// The finance and support tools: audit, ledger export and replay. They read
// the same log serve writes, with serve's configuration (flags and
// environment), and never write to it. A stopped data dir is opened
// directly; when a running server holds the embedded store locked they read
// a consistent online snapshot of it, fetched from that server's operator
// API, instead.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
)

// snapshotterOf is the store's online snapshot for the operator API, if it
// has one (the embedded store does; KurrentDB serves readers itself).
func snapshotterOf(store any) api.Snapshotter {
	if s, ok := store.(api.Snapshotter); ok {
		return s
	}
	return nil
}

// toolFlags are serve's flags plus where the running server is, for the
// snapshot of a locked store.
type toolFlags struct {
	cfg    config
	server string
}

func newToolFlags(name string, stderr io.Writer) (*flag.FlagSet, *toolFlags) {
	tf := &toolFlags{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	tf.cfg.flags(fs)
	fs.StringVar(&tf.server, "server", defaultOperatorServer(),
		"base URL of the running server's operator API, asked for a snapshot when it holds the embedded store locked (env CRYPTOVPS_SERVER; default: the operator listener serve's environment gives, else http://localhost:8080)")
	return fs, tf
}

// toolLog is the log an operator tool reads.
type toolLog struct {
	eventstore.Store
	where string
	close func() error
}

func (l *toolLog) Close() error { return l.close() }

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openToolLog opens serve's event log read-only in spirit: KurrentDB when
// configured; else the data dir's embedded store, which it will not create
// (a mistyped --data-dir must not audit an empty log and pass), or, when a
// running server holds it locked, a snapshot from that server.
func openToolLog(ctx context.Context, tf *toolFlags, stderr io.Writer) (*toolLog, error) {
	cfg := tf.cfg
	if cfg.EventStoreURL != "" {
		s, err := openEventStore(ctx, cfg, quietLogger())
		if err != nil {
			return nil, err
		}
		return &toolLog{Store: s, where: "KurrentDB", close: s.Close}, nil
	}
	path := filepath.Join(cfg.DataDir, "events.db")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no event store at %s (is --data-dir right?): %w", path, err)
	}
	s, err := bbolt.Open(path, bbolt.Options{LockTimeout: 500 * time.Millisecond})
	if err == nil {
		return &toolLog{Store: s, where: path, close: s.Close}, nil
	}
	if !errors.Is(err, bbolt.ErrLocked) {
		return nil, err
	}
	fmt.Fprintf(stderr, "%s is locked by a running server: reading a consistent snapshot from %s\n", path, tf.server)
	return fetchSnapshot(ctx, tf, stderr)
}

// toolAdminToken is --admin-token or the one serve keeps in the data dir;
// unlike serve, a tool never generates one.
func toolAdminToken(cfg config) (string, error) {
	if cfg.AdminToken != "" {
		return cfg.AdminToken, nil
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, "admin-token"))
	if err != nil {
		return "", fmt.Errorf("no --admin-token and none in the data dir: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// fetchSnapshot downloads GET /admin/eventstore/snapshot into a temporary
// file (removed on Close) and opens it.
func fetchSnapshot(ctx context.Context, tf *toolFlags, stderr io.Writer) (*toolLog, error) {
	f, err := os.CreateTemp("", "cryptovps-snapshot-*.db")
	if err != nil {
		return nil, err
	}
	name := f.Name()
	n, err := downloadSnapshot(ctx, tf, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(name)
		return nil, err
	}
	s, err := bbolt.Open(name, bbolt.Options{})
	if err != nil {
		os.Remove(name)
		return nil, fmt.Errorf("open the snapshot: %w", err)
	}
	fmt.Fprintf(stderr, "snapshot: %d bytes\n", n)
	return &toolLog{Store: s, where: "snapshot of " + tf.server, close: func() error {
		err := s.Close()
		return errors.Join(err, os.Remove(name))
	}}, nil
}

// downloadSnapshot writes the running server's consistent snapshot of its
// event store (GET /admin/eventstore/snapshot, with the operator token) to
// w, and says how many bytes it wrote; a short or broken download is an
// error.
func downloadSnapshot(ctx context.Context, tf *toolFlags, w io.Writer) (int64, error) {
	token, err := toolAdminToken(tf.cfg)
	if err != nil {
		return 0, fmt.Errorf("the store is locked and the snapshot needs the operator token: %w", err)
	}
	url := strings.TrimRight(tf.server, "/") + "/admin/eventstore/snapshot"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	// No overall timeout: a large store takes as long as it takes; ctx
	// (Ctrl-C) ends it.
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: time.Minute}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("fetch a snapshot from %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		hint := ""
		if resp.StatusCode == http.StatusNotFound {
			hint = notOperatorHint
		}
		return 0, fmt.Errorf("fetch a snapshot from %s: %s %s%s", url, resp.Status, strings.TrimSpace(string(body)), hint)
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	if err != nil {
		return n, fmt.Errorf("fetch a snapshot from %s: %w", url, err)
	}
	return n, nil
}

// timeFlag reads a moment: RFC 3339, or a date or date and time in UTC.
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339Nano)
}

func (f *timeFlag) Set(s string) error {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			f.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("%q is not a time: use RFC 3339 (2026-01-02T15:04:05Z) or a UTC date (2026-01-02)", s)
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (every option is a flag)", fs.Name(), fs.Arg(0))
	}
	return nil
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
