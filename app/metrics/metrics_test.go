package metrics_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cryptovps/cryptovps/app/metrics"
	"github.com/cryptovps/cryptovps/app/work"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
)

// value is the value of the metric name with exactly labels (name=value
// pairs): a counter's or gauge's value, a histogram's sample count; -1
// when there is none.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel())*2 != len(labels) {
				continue
			}
			for i, l := range m.GetLabel() {
				// Labels come sorted by name; callers give them so.
				if l.GetName() != labels[2*i] || l.GetValue() != labels[2*i+1] {
					continue metric
				}
			}
			return read(m)
		}
	}
	return -1
}

func read(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

func openStore(t *testing.T, opts bbolt.Options) *bbolt.Store {
	t.Helper()
	s, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func events(n int) []eventstore.Proposed {
	out := make([]eventstore.Proposed, n)
	for i := range out {
		out[i] = eventstore.Proposed{ID: uuid.New(), Type: "Noted", Data: []byte(`{}`)}
	}
	return out
}

func TestAppendsAreTimedByOutcomeAndSized(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	s := m.Store(openStore(t, bbolt.Options{}))
	ctx := context.Background()
	if _, err := s.Append(ctx, "a-1", eventstore.NoStream, events(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "a-1", eventstore.NoStream, events(1)); !errors.Is(err, eventstore.ErrWrongVersion) {
		t.Fatalf("want a conflict, got %v", err)
	}
	if got := value(t, reg, "cryptovps_eventstore_append_duration_seconds", "outcome", "ok"); got != 1 {
		t.Errorf("ok appends timed: %v, want 1", got)
	}
	if got := value(t, reg, "cryptovps_eventstore_append_duration_seconds", "outcome", "conflict"); got != 1 {
		t.Errorf("conflicts timed: %v, want 1", got)
	}
	if got := value(t, reg, "cryptovps_eventstore_append_events"); got != 2 {
		t.Errorf("append sizes: %v, want 2", got)
	}
}

// cloud answers each call the way a real one can fail.
type cloud struct{ domain.Provider }

func (cloud) CreateInstance(context.Context, domain.InstanceSpec) (domain.Instance, error) {
	return domain.Instance{}, &domain.RefusedError{Reason: "sold out"}
}
func (cloud) FindInstance(context.Context, string) (domain.Instance, error) {
	return domain.Instance{}, domain.ErrNoInstance
}
func (cloud) Instance(context.Context, string) (domain.Instance, error) {
	return domain.Instance{}, context.DeadlineExceeded
}
func (cloud) DeleteInstance(context.Context, string) error { return nil }
func (cloud) HaltInstance(context.Context, string) error   { return errors.New("502 bad gateway") }
func (cloud) Check(context.Context) error                  { return domain.ErrUnauthorized }

func TestUpstreamCallsAreCountedByOutcome(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := metrics.New(reg).Provider(cloud{}, "vultr")
	ctx := context.Background()
	_, _ = p.CreateInstance(ctx, domain.InstanceSpec{})
	_, _ = p.FindInstance(ctx, "t")
	_, _ = p.Instance(ctx, "i")
	_ = p.DeleteInstance(ctx, "i")
	_ = p.HaltInstance(ctx, "i")
	_ = p.Check(ctx)
	for call, outcome := range map[string]string{"CreateInstance": "refused", "FindInstance": "not_found",
		"Instance": "canceled", "DeleteInstance": "ok", "HaltInstance": "error", "Check": "unauthorized"} {
		if got := value(t, reg, "cryptovps_upstream_calls_total", "call", call, "outcome", outcome, "upstream", "vultr"); got != 1 {
			t.Errorf("%s %s: %v, want 1", call, outcome, got)
		}
		if got := value(t, reg, "cryptovps_upstream_call_duration_seconds", "call", call, "upstream", "vultr"); got != 1 {
			t.Errorf("%s timed %v times, want 1", call, got)
		}
	}
}

func TestWorkRoundsAndBacklog(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	if got := value(t, reg, "cryptovps_work_backlog", "kind", "charges_due"); got != 0 {
		t.Errorf("before any round the backlog is %v, want 0 (exported)", got)
	}
	var obs work.Observer = m
	obs.Leading(true)
	obs.Round(2*time.Second, work.Backlog{Provisioning: 3, BackupsPending: 2, ChargesDue: 7}, nil)
	obs.Round(time.Second, work.Backlog{Provisioning: 1}, errors.New("upstream down"))
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"cryptovps_work_leader", nil, 1},
		{"cryptovps_work_rounds_total", []string{"outcome", "ok"}, 1},
		{"cryptovps_work_rounds_total", []string{"outcome", "error"}, 1},
		{"cryptovps_work_round_duration_seconds", nil, 2},
		{"cryptovps_work_backlog", []string{"kind", "servers_provisioning"}, 1},
		{"cryptovps_work_backlog", []string{"kind", "backups_pending"}, 0},
		{"cryptovps_work_backlog", []string{"kind", "charges_due"}, 0},
	} {
		if got := value(t, reg, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	obs.Leading(false)
	if got := value(t, reg, "cryptovps_work_leader"); got != 0 {
		t.Errorf("leader after stepping down: %v", got)
	}
}

type negative struct {
	projections.Model
	n int
}

func (n negative) NegativeBalances(context.Context) (int, error) { return n.n, nil }

type unreachable struct{ projections.Model }

func (unreachable) Checkpoint(context.Context) (eventstore.Position, error) {
	return eventstore.Position{}, projections.ErrUnavailable
}

func TestReadModelLagAndNegativeBalancesAreMeasuredAtScrape(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, bbolt.Options{Now: func() time.Time { return time.Now().Add(-time.Minute) }})
	model := memory.New(store)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.WatchReadModel(store, negative{Model: model, n: 2}, "memory")
	lag := func(what string) float64 {
		return value(t, reg, "cryptovps_projection_lag_"+what, "read_model", "memory")
	}
	if lag("events") != 0 || lag("seconds") != 0 || value(t, reg, "cryptovps_read_model_up", "read_model", "memory") != 1 {
		t.Errorf("an empty log: lag %v events, %vs", lag("events"), lag("seconds"))
	}
	for range 5 {
		if _, err := store.Append(ctx, "a-1", eventstore.Any, events(1)); err != nil {
			t.Fatal(err)
		}
	}
	if got := lag("events"); got != 5 {
		t.Errorf("lag %v events, want 5", got)
	}
	if got := lag("seconds"); got < 59 {
		t.Errorf("lag %vs, want about 60", got)
	}
	if err := projections.NewProjector(store, model, nil).CatchUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if lag("events") != 0 || lag("seconds") != 0 {
		t.Errorf("caught up: lag %v events, %vs", lag("events"), lag("seconds"))
	}
	if got := value(t, reg, "cryptovps_negative_balances", "read_model", "memory"); got != 2 {
		t.Errorf("negative balances %v, want 2", got)
	}

	down := prometheus.NewRegistry()
	metrics.New(down).WatchReadModel(store, unreachable{model}, "postgres")
	if got := value(t, down, "cryptovps_read_model_up", "read_model", "postgres"); got != 0 {
		t.Errorf("a model down is up=%v", got)
	}
	if got := value(t, down, "cryptovps_projection_lag_events", "read_model", "postgres"); got != -1 {
		t.Errorf("a model down exports a lag of %v", got)
	}
}

func TestRequestsAndRateLimits(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Request("GET", "/servers/:id", 200, 3*time.Millisecond)
	m.Request("GET", "/servers/:id", 200, time.Millisecond)
	m.Request("GET", "/servers/:id", 404, time.Millisecond)
	m.RateLimited("ip")
	if got := value(t, reg, "cryptovps_http_requests_total", "code", "200", "method", "GET", "route", "/servers/:id"); got != 2 {
		t.Errorf("200s: %v", got)
	}
	if got := value(t, reg, "cryptovps_http_request_duration_seconds", "method", "GET", "route", "/servers/:id"); got != 3 {
		t.Errorf("timed: %v", got)
	}
	if got := value(t, reg, "cryptovps_rate_limited_total", "limit", "ip"); got != 1 {
		t.Errorf("ip limit: %v", got)
	}
	if got := value(t, reg, "cryptovps_rate_limited_total", "limit", "account"); got != 0 {
		t.Errorf("account limit: %v", got)
	}
}
