// Package api is the HTTP adapter: it translates requests into application
// calls and answers in the shapes of the agent guide, and nothing more.
package api

import (
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/cryptovps/cryptovps/api/dashboard"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/eventstore"
)

// Config is what the HTTP layer needs to know.
type Config struct {
	JWTSecret []byte
	TokenTTL  time.Duration
	// SandboxClock is set in sandbox mode only: /sandbox/* exists then.
	SandboxClock app.MovableClock
	// AdminToken guards /admin/*; empty disables the admin API.
	AdminToken string
	// Snapshots serves GET /admin/eventstore/snapshot; nil answers 404.
	Snapshots Snapshotter
	// TrustedProxies may set X-Forwarded-For; nobody else can.
	TrustedProxies []*net.IPNet
	// AccountRate and AuthRate are requests per minute per account and per
	// client IP on /auth/*.
	AccountRate int
	AuthRate    int
	// BaseURL is printed in /llms.txt; empty means the request's own.
	BaseURL string
	// Guide carries the deployment facts /llms.txt prints (signup credit,
	// sandbox delays).
	Guide GuideParams
	// Wall is the wall clock used for rate-limit windows.
	Wall func() time.Time
	Log  *slog.Logger
}

// Server is the HTTP API.
type Server struct {
	svc          *app.Service
	cfg          Config
	log          *slog.Logger
	tokens       tokens
	accountLimit *limiter
	authLimit    *limiter
	echo         *echo.Echo
}

// New builds the HTTP API on svc.
func New(svc *app.Service, cfg Config) *Server {
	if cfg.Wall == nil {
		cfg.Wall = time.Now
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
	s := &Server{svc: svc, cfg: cfg, log: cfg.Log,
		tokens:       tokens{secret: cfg.JWTSecret, ttl: cfg.TokenTTL, clock: svc},
		accountLimit: newLimiter(cfg.AccountRate, time.Minute, cfg.Wall),
		authLimit:    newLimiter(cfg.AuthRate, time.Minute, cfg.Wall),
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = ipExtractor(cfg.TrustedProxies)
	e.Use(requestIDs)
	e.Use(s.logRequests)
	e.Use(s.recoverPanics)
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: "64KiB"}))
	// The human dashboard at /app (and / redirecting there): static files,
	// a client of this API only, outside the API's routing table.
	dashboard.Register(e, dashboard.Options{Sandbox: cfg.SandboxClock != nil})

	e.GET("/healthz", s.health)
	e.GET("/llms.txt", s.llms)
	e.GET("/plans", s.plans)
	e.GET("/regions", s.regions)
	e.GET("/openapi.json", s.openapi)
	e.GET("/docs", s.docs)

	auth := e.Group("/auth", s.limitAuth)
	auth.POST("/register", s.register)
	auth.POST("/login", s.login)
	e.GET("/auth/me", s.me, s.limitAuth, s.requireAccount)

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
	g.POST("/backups", s.createBackup)
	g.POST("/backups/:id/restore", s.restore)
	g.DELETE("/backups/:id", s.deleteBackup)

	if cfg.SandboxClock != nil {
		g.POST("/sandbox/clock/advance", s.advance)
		g.POST("/sandbox/topups/:id/pay", s.payTopup)
	}
	if cfg.AdminToken != "" {
		a := e.Group("/admin", s.requireOperator)
		a.POST("/accounts/:who/suspend", s.adminSuspend)
		a.POST("/accounts/:who/unsuspend", s.adminUnsuspend)
		a.POST("/accounts/:who/limit", s.adminSetLimit)
		a.GET("/accounts/:who", s.adminAccount)
		a.GET("/eventstore/snapshot", s.adminSnapshot)
	}
	s.echo = e
	return s
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

// requestIDs keeps a client's X-Request-ID only when it is a short, plain
// token (it ends up in the permanent event log); anything else gets ours.
func requestIDs(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		rid := c.Request().Header.Get(echo.HeaderXRequestID)
		if !requestIDPattern.MatchString(rid) {
			rid = uuid.NewString()
		}
		c.Response().Header().Set(echo.HeaderXRequestID, rid)
		return next(c)
	}
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
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
		s.log.Info("request", "method", c.Request().Method, "path", c.Path(), "status", c.Response().Status,
			"duration_ms", time.Since(start).Milliseconds(), "request_id", requestID(c), "ip", c.RealIP(),
			"account", accountOf(c))
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
