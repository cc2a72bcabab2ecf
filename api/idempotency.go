package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
)

// idemHeader is the header a client names a request with, so that a retry
// is answered instead of done again.
const idemHeader = "Idempotency-Key"

// checkIdemKey adds what is wrong with the request's Idempotency-Key, if
// anything, to the request's other problems: one 400 names them all.
func checkIdemKey(c echo.Context, details map[string]string) {
	key := c.Request().Header.Get(idemHeader)
	if key == "" {
		return
	}
	if err := domain.CheckIdempotencyKey(key); err != nil {
		if de, ok := err.(*domain.Error); ok {
			for f, p := range de.Fields {
				details[f] = p
			}
		}
	}
}

// idempotency reads the Idempotency-Key header and fingerprints the request
// it came with (method, route, path id and the decoded body), so the same
// key with another request can be refused.
func idempotency(c echo.Context, req any) (app.Idempotency, error) {
	key := c.Request().Header.Get(idemHeader)
	if key == "" {
		return app.Idempotency{}, nil
	}
	if err := domain.CheckIdempotencyKey(key); err != nil {
		return app.Idempotency{}, toAPI(err)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return app.Idempotency{}, err
	}
	sum := sha256.Sum256(append([]byte(c.Request().Method+" "+c.Path()+" "+c.Param("id")+"\n"), body...))
	return app.Idempotency{Key: key, RequestHash: hex.EncodeToString(sum[:])}, nil
}

// reply is the successful answer to a request that creates or moves
// something.
type reply struct {
	status int
	body   any
	// location names what was created; retryAfter says about when to look
	// at it again (a 202).
	location   string
	retryAfter time.Duration
	// written is where the work landed in the log.
	written app.Written
	// replayed: the request's key had been used for it already, and the
	// work was answered, not done again.
	replayed bool
	// secret: the body shows a secret (kept sealed in the log).
	secret bool
	// credential: the body shows a credential, which never goes into the
	// log, even sealed: the answer is not kept, and a retry runs the work
	// again, which answers from the credential store (POST /auth/api-keys).
	credential bool
}

// once answers a request that creates or moves something, honouring its
// Idempotency-Key: run does the work (the key goes with its command, which
// claims it), the first answer is kept with the key, and a retry with the
// same key and request gets that answer back, byte for byte, with
// Idempotent-Replayed: true; the same key with another request is a 422.
// Keys are per account and held for 24 hours of real time. A request
// without a key is simply run. Every handler of such a request answers
// through once: one mechanism for all.
//
// A new endpoint: validate the body (with checkIdemKey, for one 400), then
//
//	return s.once(c, req, func(idem app.Idempotency) (reply, error) { ... })
//
// where the work's domain command carries the key (in package app:
// s.idem(idem), a domain.Idem) and its decision calls keyed (a retry:
// *domain.ReplayError, whose Ref names what the first try made) and claim
// (with the work, in the same append); work on another stream claims first
// (app claim). Set reply.secret when the body shows a secret: it is kept
// sealed.
func (s *Server) once(c echo.Context, req any, run func(idem app.Idempotency) (reply, error)) error {
	idem, err := idempotency(c, req)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if idem.Key != "" {
		kept, err := s.app.Answered(ctx, accountOf(c), idem)
		if err != nil {
			return err
		}
		if kept != nil {
			h := c.Response().Header()
			if kept.Location != "" {
				h.Set(echo.HeaderLocation, kept.Location)
			}
			if kept.RetryAfter > 0 {
				h.Set("Retry-After", strconv.Itoa(kept.RetryAfter))
			}
			h.Set("Idempotent-Replayed", "true")
			if kept.Secret {
				h.Set(echo.HeaderCacheControl, "no-store")
			}
			return c.Blob(kept.Status, echo.MIMEApplicationJSON, []byte(kept.Body))
		}
	}
	r, err := run(idem)
	if err != nil {
		return err
	}
	body, err := json.Marshal(r.body)
	if err != nil {
		return err
	}
	// The same bytes as every other JSON answer (Echo's encoder ends
	// them with a newline).
	body = append(body, '\n')
	ans := domain.IdemAnswer{Status: r.status, Body: string(body), Location: r.location}
	if r.retryAfter > 0 {
		ans.RetryAfter = int((r.retryAfter + time.Second - 1) / time.Second)
	}
	if idem.Key != "" && !r.replayed && !r.credential {
		// The work stands whether or not its answer is kept: a retry
		// then answers from what the key's record names.
		if err := s.app.RecordAnswer(ctx, accountOf(c), idem, ans, r.secret, meta(c)); err != nil {
			s.log.Warn("could not keep the answer to a keyed request", "request_id", requestID(c), "err", err)
		}
	}
	h := c.Response().Header()
	if r.location != "" {
		h.Set(echo.HeaderLocation, r.location)
	}
	if ans.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(ans.RetryAfter))
	}
	if r.replayed {
		h.Set("Idempotent-Replayed", "true")
	}
	written(c, r.written)
	if r.secret {
		h.Set(echo.HeaderCacheControl, "no-store")
	}
	return c.Blob(r.status, echo.MIMEApplicationJSON, body)
}
