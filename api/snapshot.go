package api

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Snapshotter is an event store that can write a consistent copy of itself
// (the embedded bbolt store): what operator tools read while the serving
// process holds the store's file locked.
type Snapshotter interface {
	Snapshot(ctx context.Context, w io.Writer) error
}

// adminSnapshot streams a consistent copy of the event store, as one file
// the embedded store can open. It is operator-only: the log holds every
// customer's data.
func (s *Server) adminSnapshot(c echo.Context) error {
	if s.cfg.Snapshots == nil {
		return apiError(http.StatusNotFound, "not_found",
			"this event store has no snapshot: read it directly (KurrentDB serves many readers)")
	}
	res := c.Response()
	// A large store takes longer than the server's write timeout to send;
	// the copy ends with the request's context instead.
	_ = http.NewResponseController(res.Writer).SetWriteDeadline(time.Time{})
	h := res.Header()
	h.Set(echo.HeaderContentType, "application/octet-stream")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="events.db"`)
	h.Set("Cache-Control", "no-store")
	// Who took a copy of every customer's data, and when: the route is
	// behind requireOperator, so this is a holder of an operator token.
	who := []any{"ip", c.RealIP(), "at", time.Now().UTC().Format(time.RFC3339Nano),
		"operator_token", c.Get(ctxOperatorToken), "request_id", requestID(c)}
	s.log.Warn("event store snapshot taken by an operator", who...)
	w := &countingWriter{w: res}
	err := s.cfg.Snapshots.Snapshot(c.Request().Context(), w)
	if err == nil {
		s.log.Info("event store snapshot sent", append(who, "bytes", w.n)...)
		return nil
	}
	if !res.Committed {
		return err
	}
	// Part of the file is out: the status cannot change any more, and a
	// response that ends normally would pass a truncated copy for a whole
	// one. Aborting drops the connection, which the client sees as an
	// error.
	s.log.Error("event store snapshot failed mid-stream", "err", err, "request_id", requestID(c))
	panic(http.ErrAbortHandler)
}

// countingWriter counts what went through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
