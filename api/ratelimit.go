package api

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// limiter is a fixed-window request counter per key. Windows are wall time:
// moving the sandbox clock does not refill anyone's allowance.
type limiter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	windows map[string]*window
	swept   time.Time
}

type window struct {
	start time.Time
	count int
}

func newLimiter(limit int, per time.Duration, now func() time.Time) *limiter {
	return &limiter{limit: limit, window: per, now: now, windows: map[string]*window{}}
}

// take counts one request for key and says whether it is allowed, how many
// remain and when the window resets.
func (l *limiter) take(key string) (ok bool, remaining int, reset time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > l.window {
		for k, w := range l.windows {
			if now.Sub(w.start) >= l.window {
				delete(l.windows, k)
			}
		}
		l.swept = now
	}
	w, found := l.windows[key]
	if !found || now.Sub(w.start) >= l.window {
		w = &window{start: now}
		l.windows[key] = w
	}
	reset = w.start.Add(l.window).Sub(now)
	if w.count >= l.limit {
		return false, 0, reset
	}
	w.count++
	return true, l.limit - w.count, reset
}

// exhausted says whether key has no request left in its window, without
// counting one, and when the window resets.
func (l *limiter) exhausted(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w, found := l.windows[key]
	if !found || now.Sub(w.start) >= l.window || w.count < l.limit {
		return false, 0
	}
	return true, w.start.Add(l.window).Sub(now)
}

// clientKey is the per-client-IP limit's key of ip: the address itself for
// IPv4, its /64 for IPv6, since one subscriber is usually given a whole
// /64 and could otherwise take a fresh allowance from every address in it.
func clientKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return "ip:" + ip
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return "ip:" + addr.String()
	}
	p, err := addr.WithZone("").Prefix(64)
	if err != nil {
		return "ip:" + ip
	}
	return "ip:" + p.String()
}

// limit applies l to key and sets the RateLimit headers either way.
func (s *Server) limit(c echo.Context, l *limiter, key string) error {
	ok, remaining, reset := l.take(key)
	secs := int((reset + time.Second - 1) / time.Second)
	h := c.Response().Header()
	h.Set("RateLimit-Limit", strconv.Itoa(l.limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(secs))
	if !ok {
		s.rateLimited(key)
		h.Set("Retry-After", strconv.Itoa(secs))
		return apiError(http.StatusTooManyRequests, "rate_limited",
			"rate limit of "+strconv.Itoa(l.limit)+" requests per minute exceeded: retry after "+strconv.Itoa(secs)+"s with exponential backoff")
	}
	return nil
}

// limitAuth is the per-client-IP limit on /auth/* (per /64 for IPv6).
func (s *Server) limitAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.limit(c, s.authLimit, clientKey(c.RealIP())); err != nil {
			return err
		}
		return next(c)
	}
}
