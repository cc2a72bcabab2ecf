// Package metrics is the Prometheus instrumentation of one CryptoVPS
// process: HTTP requests, event-store appends, read-model lag, the
// background work, calls to the upstreams (cloud, payments), rate-limit
// refusals and the one invariant worth a gauge, balances never below zero.
//
// There is no global state: New registers everything on the registry the
// composition root (app/stack) made for the process, and the instruments
// reach the code they watch as decorators (Store, Provider, Payments) or as
// the observers the API and the background work already call (Request,
// RateLimited, Leading, Round), never through package variables.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cryptovps/cryptovps/app/work"
)

const namespace = "cryptovps"

// Latency buckets: HTTP and appends are milliseconds when healthy (an
// append waits for an fsync), seconds when something is wrong.
var fastBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Upstream calls and rounds of background work take longer: a cloud API
// answers in hundreds of milliseconds, a round does many of them.
var slowBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120}

// Metrics holds the instruments of one process.
type Metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	rateLimited  *prometheus.CounterVec

	appendDuration *prometheus.HistogramVec
	appendEvents   prometheus.Histogram

	upstreamCalls    *prometheus.CounterVec
	upstreamDuration *prometheus.HistogramVec

	workLeader   prometheus.Gauge
	workRounds   *prometheus.CounterVec
	workDuration prometheus.Histogram
	workBacklog  *prometheus.GaugeVec

	// requests keeps the instruments of each (method, route, status) seen,
	// so a request does not format its status and hash its labels: routes
	// and statuses are few, so it stays small.
	requests sync.Map // requestKey -> requestInstruments
}

type requestKey struct {
	method, route string
	status        int
}

type requestInstruments struct {
	count prometheus.Counter
	took  prometheus.Observer
}

// New creates the instruments and registers them on reg.
func New(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		reg: reg,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP requests answered, by route (the route template, \"unmatched\" for unknown paths) and status code."},
			[]string{"method", "route", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by route.", Buckets: fastBuckets}, []string{"method", "route"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "rate_limited_total",
			Help: "Requests refused with 429 by a rate limit: account (per account) or ip (per client IP on /auth/*)."},
			[]string{"limit"}),
		appendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "eventstore_append_duration_seconds",
			Help:    "Time for an append to the event store to become durable, by outcome (ok, conflict, unavailable, canceled, error).",
			Buckets: fastBuckets}, []string{"outcome"}),
		appendEvents: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "eventstore_append_events",
			Help: "Events per append (the batch one command writes atomically).", Buckets: prometheus.ExponentialBuckets(1, 2, 9)}),
		upstreamCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "upstream_calls_total",
			Help: "Calls to the cloud provider and the payment processor, by upstream, call and outcome (ok, refused, not_found, unauthorized, canceled, error)."},
			[]string{"upstream", "call", "outcome"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "upstream_call_duration_seconds",
			Help: "Time of a call to an upstream, retries included.", Buckets: slowBuckets}, []string{"upstream", "call"}),
		workLeader: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "work_leader",
			Help: "1 while this process leads the background work, 0 while another does."}),
		workRounds: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "work_rounds_total",
			Help: "Rounds of background work this process finished, by outcome (ok, error)."}, []string{"outcome"}),
		workDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "work_round_duration_seconds",
			Help: "Time of one round of background work.", Buckets: slowBuckets}),
		workBacklog: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "work_backlog",
			Help: "What the last round of background work found to do: servers_provisioning, backups_pending, charges_due (hours begun and not charged yet)."},
			[]string{"kind"}),
	}
	reg.MustRegister(m.httpRequests, m.httpDuration, m.rateLimited, m.appendDuration, m.appendEvents,
		m.upstreamCalls, m.upstreamDuration, m.workLeader, m.workRounds, m.workDuration, m.workBacklog)
	// Every kind is exported from the start, so a dashboard shows 0 rather
	// than no data before the first round.
	for _, k := range []string{"servers_provisioning", "backups_pending", "charges_due"} {
		m.workBacklog.WithLabelValues(k)
	}
	for _, l := range []string{"account", "ip"} {
		m.rateLimited.WithLabelValues(l)
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format. A
// collector that fails (a read model down) leaves its metrics out rather
// than failing the whole scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Registry: m.reg})
}

// Request counts one answered HTTP request (api.Observer).
func (m *Metrics) Request(method, route string, status int, took time.Duration) {
	k := requestKey{method, route, status}
	v, ok := m.requests.Load(k)
	if !ok {
		v, _ = m.requests.LoadOrStore(k, requestInstruments{
			count: m.httpRequests.WithLabelValues(method, route, strconv.Itoa(status)),
			took:  m.httpDuration.WithLabelValues(method, route)})
	}
	in := v.(requestInstruments)
	in.count.Inc()
	in.took.Observe(took.Seconds())
}

// RateLimited counts one request refused by the named limit (api.Observer).
func (m *Metrics) RateLimited(limit string) { m.rateLimited.WithLabelValues(limit).Inc() }

// Leading records whether this process leads the background work
// (work.Observer).
func (m *Metrics) Leading(held bool) {
	v := 0.0
	if held {
		v = 1
	}
	m.workLeader.Set(v)
}

// Round records a finished round of background work (work.Observer).
func (m *Metrics) Round(took time.Duration, found work.Backlog, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.workRounds.WithLabelValues(outcome).Inc()
	m.workDuration.Observe(took.Seconds())
	m.workBacklog.WithLabelValues("servers_provisioning").Set(float64(found.Provisioning))
	m.workBacklog.WithLabelValues("backups_pending").Set(float64(found.BackupsPending))
	m.workBacklog.WithLabelValues("charges_due").Set(float64(found.ChargesDue))
}

var _ work.Observer = (*Metrics)(nil)
