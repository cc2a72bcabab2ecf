package api

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// Expected is how long the operations an API answers 202 to usually take.
type Expected struct {
	Provision time.Duration
	Destroy   time.Duration
	Backup    time.Duration
}

// accepted202 points the client at the object to watch (Location) and says
// when it is worth looking (Retry-After), so nobody has to poll blindly.
func accepted202(c echo.Context, location string, expect time.Duration) {
	h := c.Response().Header()
	h.Set(echo.HeaderLocation, location)
	if expect > 0 {
		h.Set("Retry-After", strconv.Itoa(int((expect+time.Second-1)/time.Second)))
	}
}

// maxWait bounds a long-poll: one request never holds a connection longer.
const maxWait = 60 * time.Second

// waitQuery reads ?waitFor=A,B&timeout=N: the statuses to wait for (each
// one of valid) and how long (1..60 s, 30 by default). No waitFor, no wait.
func waitQuery(c echo.Context, valid []string) (want []string, timeout time.Duration, err error) {
	if c.Request().URL.RawQuery == "" {
		return nil, 0, nil // a plain GET: no query to parse
	}
	raw, rawTimeout := c.QueryParam("waitFor"), c.QueryParam("timeout")
	details := map[string]string{}
	if raw != "" {
		for _, st := range strings.Split(raw, ",") {
			if !slices.Contains(valid, st) {
				details["waitFor"] = "comma-separated statuses, each one of " + strings.Join(valid, ", ")
				break
			}
			want = append(want, st)
		}
	}
	timeout = 30 * time.Second
	if rawTimeout != "" {
		n, err := strconv.Atoi(rawTimeout)
		if err != nil || n < 1 || n > int(maxWait/time.Second) {
			details["timeout"] = fmt.Sprintf("whole seconds from 1 to %d", int(maxWait/time.Second))
		}
		timeout = time.Duration(n) * time.Second
		if raw == "" {
			details["waitFor"] = "required with timeout"
		}
	}
	if len(details) > 0 {
		return nil, 0, validation(details)
	}
	return want, timeout, nil
}

// longPoll reads an object until its status is one of want or the timeout
// passes, and returns what it read last. It wakes when this process's read
// model moves on, and checks at least every second for what other processes
// write to a shared one.
func longPoll[V any](ctx context.Context, s *Server, want []string, timeout time.Duration,
	read func(context.Context) (V, error), status func(V) string) (V, error) {
	if len(want) == 0 {
		return read(ctx) // no wait asked: no timers either
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		changed := s.app.Projector.Changed()
		v, err := read(ctx)
		if err != nil || len(want) == 0 || slices.Contains(want, status(v)) {
			return v, err
		}
		select {
		case <-changed:
		case <-tick.C:
		case <-deadline.C:
			return read(ctx)
		case <-ctx.Done():
			return v, nil // the client went away: nothing to answer to
		}
	}
}

var (
	serverStatuses = []string{"PROVISIONING", "ACTIVE", "SUSPENDED", "DESTROYING", "DESTROYED", "ERROR"}
	backupStatuses = []string{"PENDING", "AVAILABLE", "ERROR", "EXPIRED"}
	topupStatuses  = []string{"PENDING", "PROCESSING", "PAID", "EXPIRED", "INVALID", "REVIEW"}
)
