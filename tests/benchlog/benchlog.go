// Package benchlog hands the figures' benchmarks (make bench-compare) the
// realistic log tests/history builds, as an embedded store file. Building
// a large log takes far longer than most figures do, so with
// CRYPTOVPS_BENCH_CACHE set to a directory (make bench-compare sets one
// for its run) the log of each size is built once and copied for every
// benchmark; without it each benchmark builds its own.
//
// The history ends about now: a server started on it has little to bill.
package benchlog

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/tests/history"
)

// EnvCache names the directory logs are built in once per run.
const EnvCache = "CRYPTOVPS_BENCH_CACHE"

// EnvEvents sets the size of the figures' logs (1000000 for the figures the
// issue states).
const EnvEvents = "CRYPTOVPS_BENCH_EVENTS"

// Events is how many events the figures' logs hold: CRYPTOVPS_BENCH_EVENTS,
// else def.
func Events(def int) int {
	if v, err := strconv.Atoi(os.Getenv(EnvEvents)); err == nil && v > 0 {
		return v
	}
	return def
}

// span is about how long tests/history's accounts live.
const span = 20 * 24 * time.Hour

// Start is where the logs begin: span before today, so that they end
// about now.
func Start() time.Time { return time.Now().UTC().Truncate(24 * time.Hour).Add(-span) }

// File returns the path of a store file of tb's own holding the history of
// about n events, and how many events it holds.
func File(tb testing.TB, n int) (string, int) {
	tb.Helper()
	dst := filepath.Join(tb.TempDir(), "events.db")
	dir := os.Getenv(EnvCache)
	if dir == "" {
		events, err := build(dst, n)
		if err != nil {
			tb.Fatal(err)
		}
		return dst, events
	}
	name := filepath.Join(dir, fmt.Sprintf("history-%d-%s.db", n, Start().Format("20060102")))
	events, err := cached(name)
	if err != nil {
		tmp := name + fmt.Sprintf(".%d.tmp", os.Getpid())
		if events, err = build(tmp, n); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(name+".events", []byte(strconv.Itoa(events)), 0o600); err != nil {
			tb.Fatal(err)
		}
		// Renamed last: a file of that name is a whole log.
		if err := os.Rename(tmp, name); err != nil {
			tb.Fatal(err)
		}
	}
	if err := copyFile(dst, name); err != nil {
		tb.Fatal(err)
	}
	return dst, events
}

// Store opens File's store; it is closed when tb ends.
func Store(tb testing.TB, n int) (*bbolt.Store, int) {
	tb.Helper()
	path, events := File(tb, n)
	s, err := bbolt.Open(path, bbolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s, events
}

func build(path string, n int) (int, error) {
	s, err := bbolt.Open(path, bbolt.Options{})
	if err != nil {
		return 0, err
	}
	events, err := history.Build(context.Background(), s, n, Start())
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return events, err
}

func cached(name string) (int, error) {
	if _, err := os.Stat(name); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(name + ".events")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// CPU is the CPU time the process has used (user and system, every thread):
// a benchmark reports it per event beside its rate, because on a machine
// shared with other work the wall time says how busy the machine was as
// much as what the code costs.
func CPU() time.Duration {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
