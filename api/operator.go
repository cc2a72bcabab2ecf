package api

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// ctxOperatorToken names the operator token a request was let in with:
// "current" or "previous" (during a rotation).
const ctxOperatorToken = "operatorToken"

// operatorToken says which configured operator token raw is ("current",
// or "previous" while one is being rotated out), "" for none. Both are
// compared in constant time, whichever matches.
func (s *Server) operatorToken(raw string) string {
	cur := subtle.ConstantTimeCompare([]byte(raw), []byte(s.cfg.AdminToken)) == 1
	prev := s.cfg.AdminTokenPrevious != "" &&
		subtle.ConstantTimeCompare([]byte(raw), []byte(s.cfg.AdminTokenPrevious)) == 1
	switch {
	case cur:
		return "current"
	case prev:
		return "previous"
	}
	return ""
}

// requireOperator guards the admin API with the operator token, never a
// customer token. Failed attempts are logged and limited per client IP (an
// IPv6 client per /64): past the limit the client gets 429 without its
// token being looked at, so guessing is slow whatever the guesser sends.
func (s *Server) requireOperator(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := "operator:" + clientKey(c.RealIP())
		if over, reset := s.operatorFailures.exhausted(key); over {
			s.rateLimited(key)
			secs := strconv.Itoa(int((reset + time.Second - 1) / time.Second))
			h := c.Response().Header()
			h.Set("RateLimit-Limit", strconv.Itoa(s.operatorFailures.limit))
			h.Set("RateLimit-Remaining", "0")
			h.Set("RateLimit-Reset", secs)
			h.Set("Retry-After", secs)
			return apiError(http.StatusTooManyRequests, "rate_limited",
				"too many failed operator authentications from this address: retry after "+secs+"s")
		}
		raw, _ := bearer(c)
		which := s.operatorToken(raw)
		if which == "" {
			s.operatorFailures.take(key)
			s.log.Warn("operator authentication failed", "method", c.Request().Method, "path", c.Request().URL.Path,
				"ip", c.RealIP(), "token_given", raw != "", "request_id", requestID(c))
			return apiError(http.StatusUnauthorized, "unauthorized", "operator token required")
		}
		if which == "previous" {
			s.log.Warn("operator authenticated with the previous token, which is being rotated out",
				"path", c.Request().URL.Path, "ip", c.RealIP(), "request_id", requestID(c))
		}
		c.Set(ctxOperatorToken, which)
		return next(c)
	}
}

// Admin is the operator API (/admin/*, /metrics) as a handler of its own,
// for the operator listener (Config.AdminListener); nil when the operator
// API is served with the public one, or not at all.
func (s *Server) Admin() http.Handler {
	if s.admin == nil {
		return nil
	}
	return s.admin
}
