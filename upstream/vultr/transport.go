package vultr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Call describes one HTTP request sent upstream (one attempt: a retried
// GET is several calls), for Config.OnCall.
type Call struct {
	Method string
	Path   string // "/v2/instances/…", without the query
	Status int    // 0 when no answer came (timeout, connection error)
	Err    error  // the transport error, if any
	Retry  bool   // whether another attempt follows
}

// maxBody bounds the answers we read: Vultr's are a few KiB.
const maxBody = 8 << 20

// transport is the one way out to Vultr: it adds the API key, waits for the
// rate limiter, puts a timeout on every attempt, retries reads and deletes
// (never POST, PATCH or PUT) on 429, 5xx and transport errors with backoff
// and jitter, counts calls, and notes the outcome for the adapter, which
// classifies errors on it (govultr's own error strings lose the status).
type transport struct {
	base     http.RoundTripper
	key      string
	prefix   string // the base URL's path, without the trailing slash
	limiter  *rate.Limiter
	timeout  time.Duration
	retries  int
	backoff  time.Duration
	maxWait  time.Duration
	calls    atomic.Int64
	onCall   func(Call)
	redactor func(string) string
}

// outcome is what the transport learned of the last attempt of one call.
type outcome struct {
	status  int
	message string // the "error" field of a 4xx/5xx answer, or its start
	err     error  // transport error of the last attempt
}

type outcomeKey struct{}

func withOutcome(ctx context.Context) (context.Context, *outcome) {
	o := &outcome{}
	return context.WithValue(ctx, outcomeKey{}, o), o
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	o, _ := ctx.Value(outcomeKey{}).(*outcome)
	if o == nil {
		o = &outcome{}
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	idempotent := req.Method == http.MethodGet || req.Method == http.MethodDelete || req.Method == http.MethodHead
	for attempt := 0; ; attempt++ {
		if err := t.limiter.Wait(ctx); err != nil {
			o.status, o.message, o.err = 0, "", err
			return nil, err
		}
		resp, data, err := t.once(ctx, req, body)
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		retry := idempotent && attempt < t.retries && ctx.Err() == nil &&
			(err != nil || status == http.StatusTooManyRequests || status >= 500)
		if t.onCall != nil {
			t.onCall(Call{Method: req.Method, Path: req.URL.Path, Status: status, Err: err, Retry: retry})
		}
		if retry {
			if werr := t.wait(ctx, attempt, resp); werr != nil {
				o.status, o.message, o.err = 0, "", werr
				return nil, werr
			}
			continue
		}
		o.status, o.err, o.message = status, err, ""
		if err != nil {
			return nil, err
		}
		if status >= 400 {
			o.message = t.redactor(errorMessage(data))
		}
		resp.Body = io.NopCloser(bytes.NewReader(data))
		resp.ContentLength = int64(len(data))
		return resp, nil
	}
}

// once sends one attempt and reads its whole answer within the timeout.
func (t *transport) once(ctx context.Context, req *http.Request, body []byte) (*http.Response, []byte, error) {
	actx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	r := req.Clone(actx)
	r.URL.Path = t.prefix + req.URL.Path
	r.URL.RawPath = ""
	r.Header.Set("Authorization", "Bearer "+t.key)
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	} else {
		r.Body, r.ContentLength = http.NoBody, 0
	}
	t.calls.Add(1)
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, nil, t.cleanErr(ctx, actx, err)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if err != nil {
		return nil, nil, t.cleanErr(ctx, actx, err)
	}
	return resp, data, nil
}

// errAttemptTimeout is an attempt that ran out of Config.RequestTimeout.
var errAttemptTimeout = errors.New("no answer within the request timeout")

// cleanErr names a timeout plainly and keeps the key out of the text.
func (t *transport) cleanErr(ctx, actx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w (%s): %w", errAttemptTimeout, t.timeout, context.DeadlineExceeded)
	}
	return &redactedError{msg: t.redactor(err.Error()), err: err}
}

// redactedError shows a cleaned text but still unwraps to the original.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// wait sleeps before the next attempt: exponential backoff with full
// jitter, or the server's Retry-After if it asks for longer (capped).
func (t *transport) wait(ctx context.Context, attempt int, resp *http.Response) error {
	d := t.backoff << attempt
	if d > t.maxWait || d <= 0 {
		d = t.maxWait
	}
	d = d/2 + rand.N(d/2+1)
	if resp != nil {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			if ra := time.Duration(s) * time.Second; ra > d {
				d = min(ra, t.maxWait)
			}
		}
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// errorMessage is the "error" field of a Vultr error answer, or the start of
// the body when it is not one.
func errorMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if jsonUnmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
