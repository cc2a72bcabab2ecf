// Package api is the HTTP adapter: it translates requests into application
// calls and answers in the shapes of the agent guide, and nothing more.
package api

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/cryptovps/cryptovps/api/dashboard"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// Config is what the HTTP layer needs to know.
type Config struct {
	JWTSecret []byte
	TokenTTL  time.Duration
	// AdminToken guards /admin/* and /metrics; empty disables the admin
	// API.
	AdminToken string
	// AdminTokenPrevious is accepted as well while the operator token is
	// rotated; empty accepts AdminToken only.
	AdminTokenPrevious string
	// AdminListener serves the admin API from Server.Admin only, for a
	// listener of its own: the public handler answers 404 there.
	AdminListener bool
	// AdminFailures is how many failed operator authentications a client
	// IP may make per minute before it gets 429 (10 when zero).
	AdminFailures int
	// Snapshots serves GET /admin/eventstore/snapshot; nil answers 404.
	Snapshots Snapshotter
	// TrustedProxies may set X-Forwarded-For; nobody else can.
	TrustedProxies []*net.IPNet
	// AccountRate and AuthRate are requests per minute per account and per
	// client IP on /auth/*.
	AccountRate int
	AuthRate    int
	// BaseURL is the public base URL /llms.txt and /docs print (empty:
	// http://localhost:8080, the sandbox's `make run`). It is configured,
	// never taken from a request's Host header, which the client chooses.
	BaseURL string
	// Guide carries the deployment facts /llms.txt prints (signup credit,
	// sandbox delays).
	Guide GuideParams
	// Expected tells agents, as Retry-After on a 202, about how long an
	// accepted operation takes; zero values say nothing.
	Expected Expected
	// Wall is the wall clock used for rate-limit windows.
	Wall func() time.Time
	// Now is the service clock as an account sees it, which token times
	// are checked against (in the sandbox an account moves its own); nil
	// is the application's (app.Service.Now).
	Now func(accountID string) time.Time
	Log *slog.Logger
	// Observer is told of every request (the metrics); nil: nobody.
	Observer Observer
	// Readiness answers GET /readyz; nil: always ready.
	Readiness Readiness
	// Metrics serves GET /metrics to the operator; nil answers 404.
	Metrics http.Handler

	// JWTPreviousSecrets are still accepted while the JWT secret is
	// rotated (tokens signed with them name them by kid); JWTSecret alone
	// signs.
	JWTPreviousSecrets [][]byte
}

// Deps are what the API translates requests into calls of.
type Deps struct {
	// App runs the commands.
	App *app.Service
	// Read answers the queries.
	Read projections.Reader
	// Sandbox moves the sandbox clock; nil outside sandbox mode, where
	// /sandbox/clock/advance does not exist.
	Sandbox Sandbox
	// Feed is the log GET /events streams changes from.
	Feed Feed
	// SandboxPayments: payments are simulated, and POST
	// /sandbox/topups/:id/pay settles a top-up.
	SandboxPayments bool
	// Webhooks reads BTCPay Server's webhooks; nil without BTCPay, where
	// POST /webhooks/btcpay does not exist.
	Webhooks Webhooks
}

// Sandbox is the movable clock of sandbox mode: each account's own, and
// the one every account shares.
type Sandbox interface {
	// Clock is the account's time.
	Clock(accountID string) (app.ClockView, error)
	// AdvanceAccountClock moves the account's own clock forward and
	// returns, at its new time, once everything of the account due by
	// then has happened.
	AdvanceAccountClock(ctx context.Context, accountID string, seconds int64, meta eventstore.Metadata) (app.ClockView, error)
	// AdvanceClock moves every account's clock forward (the operator's
	// move) and returns, at the new shared time, once everything due by
	// then has happened.
	AdvanceClock(ctx context.Context, seconds int64, meta eventstore.Metadata) (time.Time, error)
}

// Server is the HTTP API.
type Server struct {
	app          *app.Service
	read         projections.Reader
	sandbox      Sandbox
	feed         Feed
	cfg          Config
	log          *slog.Logger
	tokens       tokens
	accountLimit *limiter
	authLimit    *limiter
	echo         *echo.Echo
	webhooks     Webhooks
	deliveries   *deliveries
	routeSet

	// admin serves the admin API when it has a listener of its own.
	admin *echo.Echo
	// operatorFailures counts failed operator authentications per client.
	operatorFailures *limiter

	// verified are the credentials this process verified; touched, when
	// it last wrote each API key's last use.
	verified *verified
	touched  sync.Map
	ids      *requestIDSource
}

// New builds the HTTP API on d.
func New(d Deps, cfg Config) *Server {
	if cfg.Wall == nil {
		cfg.Wall = time.Now
	}
	if cfg.Now == nil {
		cfg.Now = d.App.Now
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 15 * time.Minute
	}
	if cfg.AccountRate <= 0 {
		cfg.AccountRate = 100
	}
	if cfg.AuthRate <= 0 {
		cfg.AuthRate = 10
	}
	if cfg.AdminFailures <= 0 {
		cfg.AdminFailures = 10
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://localhost:8080"
	}
	// Every 202 says when to look; these are the sandbox's own delays.
	if cfg.Expected.Provision <= 0 {
		cfg.Expected.Provision = time.Minute
	}
	if cfg.Expected.Destroy <= 0 {
		cfg.Expected.Destroy = 5 * time.Second
	}
	if cfg.Expected.Backup <= 0 {
		cfg.Expected.Backup = 3 * time.Minute
	}
	s := &Server{app: d.App, read: d.Read, sandbox: d.Sandbox, feed: d.Feed, cfg: cfg, log: cfg.Log,
		tokens:       newTokens(cfg.JWTSecret, cfg.JWTPreviousSecrets, cfg.TokenTTL, cfg.Now),
		accountLimit: newLimiter("account", cfg.AccountRate, time.Minute, cfg.Wall),
		authLimit:    newLimiter("ip", cfg.AuthRate, time.Minute, cfg.Wall),
		verified:     newVerified(maxVerified),
		ids:          newRequestIDSource(),
	}
	s.operatorFailures = newLimiter("operator", cfg.AdminFailures, time.Minute, cfg.Wall)
	e := s.newEcho()
	// The human dashboard at /app (and / redirecting there): static files,
	// a client of this API only, outside the API's routing table.
	dashboard.Register(e, dashboard.Options{Sandbox: d.Sandbox != nil})

	e.GET("/healthz", s.health)
	e.GET("/readyz", s.ready)
	e.GET("/llms.txt", s.llms)
	e.GET("/plans", s.plans)
	e.GET("/regions", s.regions)
	e.GET("/openapi.json", s.openapi)
	e.GET("/docs", s.docs)
	e.GET("/docs/custom-requests", s.customRequests)

	auth := e.Group("/auth", s.limitAuth)
	auth.POST("/register", s.register)
	auth.POST("/login", s.login)
	// /auth/me is an account read: it spends the account's budget, not
	// the per-IP login budget, and its RateLimit-* headers say so.
	e.GET("/auth/me", s.me, s.requireAccount)
	e.DELETE("/auth/me", s.forgetMe, s.requireAccount)
	// Changing the password checks the current one: it spends the login
	// budget of the client's address as well as the account's.
	auth.POST("/password", s.changePassword, s.requireAccount)
	// API keys are account operations: the account's budget only.
	e.POST("/auth/api-keys", s.createAPIKey, s.requireAccount)
	e.GET("/auth/api-keys", s.apiKeys, s.requireAccount)
	e.DELETE("/auth/api-keys/:id", s.deleteAPIKey, s.requireAccount)

	// Routes are registered one by one rather than as a group with the auth
	// middleware: Echo gives such a group a catch-all route, which would make
	// every unknown path a 401 instead of a 404.
	g := routes{e: e, m: []echo.MiddlewareFunc{s.requireAccount}}
	g.GET("/billing", s.billing)
	g.GET("/billing/ledger", s.ledger)
	g.GET("/billing/topups", s.topups)
	g.GET("/billing/topups/:id", s.topup)
	g.POST("/billing/topups", s.createTopup)
	g.GET("/servers", s.servers)
	g.GET("/servers/:id", s.server)
	g.POST("/servers", s.deploy)
	g.POST("/servers/bulk", s.deployBulk)
	g.DELETE("/servers/:id", s.destroy)
	g.GET("/backups", s.backups)
	g.GET("/backups/:id", s.backup)
	g.GET("/events", s.events)
	g.POST("/ssh-keys", s.createSSHKey)
	g.GET("/ssh-keys", s.sshKeys)
	g.DELETE("/ssh-keys/:id", s.deleteSSHKey)
	g.POST("/limit-requests", s.createLimitRequest)
	g.GET("/limit-requests", s.limitRequests)
	g.POST("/backups", s.createBackup)
	g.POST("/backups/:id/restore", s.restore)
	g.DELETE("/backups/:id", s.deleteBackup)

	if d.Sandbox != nil {
		g.GET("/sandbox/clock", s.clock)
		g.POST("/sandbox/clock/advance", s.advance)
	}
	if d.SandboxPayments {
		g.POST("/sandbox/topups/:id/pay", s.payTopup)
	}
	if d.Webhooks != nil {
		s.webhooks, s.deliveries = d.Webhooks, newDeliveries(deliveriesKept)
		e.POST("/webhooks/btcpay", s.btcpayWebhook)
	}
	if cfg.AdminToken != "" {
		// On a listener of its own the admin API is not on the public
		// one at all: /admin and /metrics are unknown paths there (404).
		on := e
		if cfg.AdminListener {
			s.admin = s.newEcho()
			on = s.admin
		}
		a := on.Group("/admin", s.requireOperator)
		a.POST("/accounts/:who/suspend", s.adminSuspend)
		a.POST("/accounts/:who/unsuspend", s.adminUnsuspend)
		a.POST("/accounts/:who/limit", s.adminSetLimit)
		a.GET("/accounts/:who", s.adminAccount)
		a.POST("/accounts/:who/forget", s.adminForget)
		a.GET("/limit-requests", s.adminPendingLimits)
		a.POST("/accounts/:who/limit-requests/:id/approve", s.adminDecideLimit(true))
		a.POST("/accounts/:who/limit-requests/:id/deny", s.adminDecideLimit(false))
		a.GET("/eventstore/snapshot", s.adminSnapshot)
		a.GET("/topups/review", s.adminReviewTopups)
		a.POST("/topups/:id/credit", s.adminCreditTopup)
		a.POST("/topups/:id/dismiss", s.adminDismissTopup)
		if d.Sandbox != nil {
			a.POST("/sandbox/clock/advance", s.adminAdvance)
		}
		on.GET("/metrics", s.metrics, s.requireOperator)
	}
	s.echo = e
	return s
}

// newEcho is an Echo with the middleware every listener has: request ids,
// the request log and metrics, panics as 500s, the body limit.
func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = ipExtractor(s.cfg.TrustedProxies)
	e.Use(s.requestIDs)
	e.Use(s.logRequests)
	e.Use(s.recoverPanics)
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: "64KiB"}))
	return e
}

// allRoutes are the routes of every listener's Echo.
func (s *Server) allRoutes() []*echo.Route {
	routes := s.echo.Routes()
	if s.admin != nil {
		routes = append(routes, s.admin.Routes()...)
	}
	return routes
}

// routes registers routes with middleware, without a group's catch-all.
type routes struct {
	e *echo.Echo
	m []echo.MiddlewareFunc
}

func (r routes) GET(path string, h echo.HandlerFunc)    { r.e.GET(path, h, r.m...) }
func (r routes) POST(path string, h echo.HandlerFunc)   { r.e.POST(path, h, r.m...) }
func (r routes) DELETE(path string, h echo.HandlerFunc) { r.e.DELETE(path, h, r.m...) }

// ServeHTTP makes the API an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,64}$`)

// headerRequestID is X-Request-ID as net/http keys it: set and read
// straight in the header map, with no canonicalising on every request.
var headerRequestID = http.CanonicalHeaderKey(echo.HeaderXRequestID)

// requestIDs keeps a client's X-Request-ID only when it is a short, plain
// token (it ends up in the permanent event log); anything else gets ours.
func (s *Server) requestIDs(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rid := c.Request().Header.Get(echo.HeaderXRequestID)
		if rid == "" || !requestIDPattern.MatchString(rid) {
			rid = s.ids.next()
		}
		c.Response().Header()[headerRequestID] = []string{rid}
		return next(c)
	}
}

func requestID(c echo.Context) string {
	if v := c.Response().Header()[headerRequestID]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// requestIDSource makes this process's request ids: UUIDs (version 8) of a
// random prefix drawn at start and a counter, unique without reading the
// system's randomness on every request.
type requestIDSource struct {
	prefix [8]byte
	n      atomic.Uint64
}

func newRequestIDSource() *requestIDSource {
	s := &requestIDSource{}
	_, _ = rand.Read(s.prefix[:]) // crypto/rand never fails on supported platforms
	return s
}

func (s *requestIDSource) next() string {
	var u uuid.UUID
	copy(u[:8], s.prefix[:])
	binary.BigEndian.PutUint64(u[8:], s.n.Add(1))
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // the RFC 9562 variant
	return u.String()
}

// meta is the event metadata of a request: who, and which request.
func meta(c echo.Context) eventstore.Metadata {
	m := eventstore.Metadata{RequestID: requestID(c)}
	if id := accountOf(c); id != "" {
		m.Actor = "account:" + id
	}
	return m
}

func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		took := time.Since(start)
		s.observe(c, took)
		// Attributes, not key-value pairs: nothing is boxed, and nothing at
		// all is built when the level is off (this runs on every request).
		if ctx := c.Request().Context(); s.log.Enabled(ctx, slog.LevelInfo) {
			s.log.LogAttrs(ctx, slog.LevelInfo, "request", slog.String("method", c.Request().Method),
				slog.String("path", c.Path()), slog.Int("status", c.Response().Status),
				slog.Int64("duration_ms", took.Milliseconds()), slog.String("request_id", requestID(c)),
				slog.String("ip", c.RealIP()), slog.String("account", accountOf(c)))
		}
		return nil
	}
}

func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				s.log.Error("panic in handler", "panic", r, "request_id", requestID(c), "path", c.Path())
				err = apiError(http.StatusInternalServerError, "internal", "internal error")
			}
		}()
		return next(c)
	}
}

// positionHeader carries log positions: a write answers with where it
// landed, and a read given one answers only once the read model shows the
// log up to it (read-your-writes across processes, at no store read).
const positionHeader = "X-Log-Position"

// written tells the client where its write landed.
func written(c echo.Context, w app.Written) {
	if !w.Position.IsZero() {
		c.Response().Header().Set(positionHeader, w.Position.String())
	}
}

// awaitReads waits, before an authenticated request reads, until the read
// model shows what the client says it wrote (the position header) and what
// this process knows of the account from memory; it never reads the store.
func (s *Server) awaitReads(c echo.Context, accountID string) error {
	want := s.app.Known(accountID)
	if h := c.Request().Header.Get(positionHeader); h != "" {
		p, err := eventstore.ParsePosition(h)
		if err != nil {
			return domain.InvalidField(positionHeader, "a log position as a write answered it")
		}
		if want.Less(p) {
			want = p
		}
	}
	return s.app.WaitFor(c.Request().Context(), want)
}
