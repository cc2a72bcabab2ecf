package api

import (
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// limiter is a fixed-window request counter per key. Windows are wall time:
// moving the sandbox clock does not refill anyone's allowance. It takes no
// lock on the way of a request: each key's window is one atomic word (when
// it started, and how many it counted), so the requests of one busy
// account do not queue behind each other.
type limiter struct {
	// scope names the limit in the metrics: "account" or "ip".
	scope  string
	limit  int
	window time.Duration
	now    func() time.Time
	// limitText is limit in the header's words, written once; counts are
	// the header values of the numbers a window can show (0 to the limit
	// or to its length in seconds, at most maxTexts), made once, so a
	// counted request does not format and allocate its headers.
	limitText []string
	counts    [][]string
	// epoch is what window starts are counted from, in milliseconds.
	epoch time.Time

	windows sync.Map // key -> *atomic.Uint64 (window start ms << countBits | count)
	sweptAt atomic.Int64
}

// A window's word: its start in milliseconds since the epoch above, then
// its count.
const (
	countBits = 24
	countMask = 1<<countBits - 1
	// swept marks a word the sweep took out of the map: a request that
	// meets it starts the key afresh, so none counts in a forgotten word.
	swept = ^uint64(0)
)

func newLimiter(scope string, limit int, per time.Duration, now func() time.Time) *limiter {
	limit = min(limit, countMask-1)
	l := &limiter{scope: scope, limit: limit, window: per, now: now, limitText: []string{strconv.Itoa(limit)}, epoch: now()}
	for i := range min(max(limit, int(per/time.Second))+1, maxTexts) {
		l.counts = append(l.counts, []string{strconv.Itoa(i)})
	}
	return l
}

// maxTexts bounds the header values made in advance.
const maxTexts = 1024

// text is n as a header value.
func (l *limiter) text(n int) []string {
	if n >= 0 && n < len(l.counts) {
		return l.counts[n]
	}
	return []string{strconv.Itoa(n)}
}

// take counts one request for key and says whether it is allowed, how many
// remain and when the window resets.
func (l *limiter) take(key string) (ok bool, remaining int, reset time.Duration) {
	now := l.now()
	ms := uint64(max(now.Sub(l.epoch).Milliseconds(), 0))
	l.sweep(ms)
	w, found := l.windows.Load(key)
	if !found {
		w, _ = l.windows.LoadOrStore(key, new(atomic.Uint64))
	}
	word := w.(*atomic.Uint64)
	span := uint64(l.window.Milliseconds())
	for {
		old := word.Load()
		if old == swept {
			l.windows.CompareAndDelete(key, w)
			w, _ = l.windows.LoadOrStore(key, new(atomic.Uint64))
			word = w.(*atomic.Uint64)
			continue
		}
		start, count := old>>countBits, old&countMask
		if old == 0 || ms-start >= span || ms < start {
			start, count = ms, 0
		}
		reset = time.Duration(start+span-ms) * time.Millisecond
		if count >= uint64(l.limit) {
			return false, 0, reset
		}
		if word.CompareAndSwap(old, start<<countBits|(count+1)) {
			return true, l.limit - int(count+1), reset
		}
	}
}

// sweep forgets the windows that ended, once a window at most: one caller
// does it, the others go on.
func (l *limiter) sweep(ms uint64) {
	last := l.sweptAt.Load()
	span := uint64(l.window.Milliseconds())
	if ms-uint64(last) < span || !l.sweptAt.CompareAndSwap(last, int64(ms)) {
		return
	}
	l.windows.Range(func(k, v any) bool {
		word := v.(*atomic.Uint64)
		if old := word.Load(); old != swept && ms-old>>countBits >= span && word.CompareAndSwap(old, swept) {
			l.windows.CompareAndDelete(k, v)
		}
		return true
	})
}

// exhausted says whether key has no request left in its window, without
// counting one, and when the window resets.
func (l *limiter) exhausted(key string) (bool, time.Duration) {
	w, found := l.windows.Load(key)
	if !found {
		return false, 0
	}
	ms := uint64(max(l.now().Sub(l.epoch).Milliseconds(), 0))
	span := uint64(l.window.Milliseconds())
	old := w.(*atomic.Uint64).Load()
	start, count := old>>countBits, old&countMask
	if old == swept || ms < start || ms-start >= span || count < uint64(l.limit) {
		return false, 0
	}
	return true, time.Duration(start+span-ms) * time.Millisecond
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
	// Set by their canonical keys, straight into the map: every counted
	// request sends these three.
	h := c.Response().Header()
	h["Ratelimit-Limit"] = l.limitText
	h["Ratelimit-Remaining"] = l.text(remaining)
	h["Ratelimit-Reset"] = l.text(secs)
	if !ok {
		s.rateLimited(l.scope)
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
