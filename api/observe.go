package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Observer is told of every answered request and every rate-limit
// refusal: the metrics. Its methods must be quick.
type Observer interface {
	// Request is one answered request: route is the route template
	// ("/servers/:id"), or "unmatched" for a path no route serves.
	Request(method, route string, status int, took time.Duration)
	// RateLimited is one request refused by a limit: "account" or "ip".
	RateLimited(limit string)
}

// Readiness says whether this process can serve now: nil, or an error
// whose message is the reason, fit for anyone to read.
type Readiness interface {
	Ready(ctx context.Context) error
}

// ready is GET /readyz: 200 while this process can serve, 503 with the
// reason otherwise. It is public like /healthz, since load balancers probe
// it without credentials, and says only which dependency is missing.
func (s *Server) ready(c echo.Context) error {
	if s.cfg.Readiness != nil {
		if err := s.cfg.Readiness.Ready(c.Request().Context()); err != nil {
			return apiError(http.StatusServiceUnavailable, "unavailable", err.Error())
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "ready"})
}

// metrics is GET /metrics, for the operator's Prometheus: it names routes,
// upstreams and volumes, so it is guarded like /admin.
func (s *Server) metrics(c echo.Context) error {
	if s.cfg.Metrics == nil {
		return apiError(http.StatusNotFound, "not_found", "this process exports no metrics")
	}
	s.cfg.Metrics.ServeHTTP(c.Response(), c.Request())
	return nil
}

// observe tells the Observer of an answered request.
func (s *Server) observe(c echo.Context, took time.Duration) {
	if s.cfg.Observer == nil {
		return
	}
	s.cfg.Observer.Request(c.Request().Method, s.routeLabel(c), c.Response().Status, took)
}

// routeLabel is the request's route template when a registered route
// served it. Echo gives a path that matched no route a partial path (or
// none); counting those by path would let any client create label values,
// so they are all "unmatched".
func (s *Server) routeLabel(c echo.Context) string {
	s.routesOnce.Do(func() {
		s.routes = map[string]bool{}
		for _, r := range s.allRoutes() {
			s.routes[r.Method+" "+r.Path] = true
		}
	})
	if p := c.Path(); s.routes[c.Request().Method+" "+p] {
		return p
	}
	return "unmatched"
}

// rateLimited tells the Observer of a refusal by the limit keyed key.
func (s *Server) rateLimited(scope string) {
	if s.cfg.Observer == nil {
		return
	}
	s.cfg.Observer.RateLimited(scope)
}

// routeSet is the registered routes ("GET /servers/:id"), built at the
// first request, once every route is registered.
type routeSet struct {
	routesOnce sync.Once
	routes     map[string]bool
}
