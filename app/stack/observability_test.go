package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

const operator = "operator-token-for-the-metrics-test"

type client struct {
	t   *testing.T
	url string
}

// do sends a request and returns the status and the body.
func (c client) do(method, path, token string, body any) (int, string) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sample is a metric's value (a histogram's count) with exactly the given
// labels, sorted by name; -1 when there is none.
func sample(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
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
				if l.GetName() != labels[2*i] || l.GetValue() != labels[2*i+1] {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

// TestMetricsMoveWithTheWork drives a whole stack through its API and its
// background work and watches /metrics follow: requests by route and
// status, appends, the work's rounds and backlog, upstream calls,
// rate-limit refusals, the read model; then /readyz turns 503 when the
// event store goes.
func TestMetricsMoveWithTheWork(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	st, err := stack.New(ctx, stack.Config{Store: store, Model: memory.New(store),
		SandboxCloud: filepath.Join(dir, "cloud.json"), SandboxCloudOptions: sandbox.CloudOptions{ProvisionDelay: time.Minute},
		ManualWork: true, App: app.Config{SignupCredit: domain.MustMoney("10.00"), ServerLimit: 10},
		API: api.Config{JWTSecret: []byte("secret"), AdminToken: operator, AuthRate: 3}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stop := st.Start()
	defer stop()
	hs := httptest.NewServer(st.API)
	defer hs.Close()
	c := client{t: t, url: hs.URL}
	reg := st.Metrics

	if code, body := c.do("GET", "/readyz", "", nil); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Fatalf("readyz: %d %s", code, body)
	}
	if code, _ := c.do("GET", "/metrics", "", nil); code != 401 {
		t.Errorf("metrics without the operator token: %d", code)
	}
	code, body := c.do("GET", "/metrics", operator, nil)
	if code != 200 || !strings.Contains(body, "cryptovps_http_requests_total") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics: %d\n%s", code, body)
	}

	appends := sample(t, reg, "cryptovps_eventstore_append_duration_seconds", "outcome", "ok")
	code, body = c.do("POST", "/auth/register", "", map[string]string{"email": "m@example.com", "password": "correct horse battery"})
	if code != 201 {
		t.Fatalf("register: %d %s", code, body)
	}
	var reg201 struct{ AccessToken string }
	_ = json.Unmarshal([]byte(body), &reg201)
	token := reg201.AccessToken
	if got := sample(t, reg, "cryptovps_http_requests_total", "code", "201", "method", "POST", "route", "/auth/register"); got != 1 {
		t.Errorf("registrations counted: %v", got)
	}
	if got := sample(t, reg, "cryptovps_eventstore_append_duration_seconds", "outcome", "ok"); got <= appends {
		t.Errorf("appends before %v, after a registration %v", appends, got)
	}
	c.do("GET", "/no/such/path/"+strings.Repeat("x", 10), "", nil)
	if got := sample(t, reg, "cryptovps_http_requests_total", "code", "404", "method", "GET", "route", "unmatched"); got != 1 {
		t.Errorf("an unknown path is counted as unmatched: %v", got)
	}

	if code, body := c.do("POST", "/servers", token, map[string]string{"label": "m", "planId": "vc2-1c-1gb", "regionId": "ams"}); code != 202 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	if err := st.Worker.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"cryptovps_work_rounds_total", []string{"outcome", "ok"}, 1},
		{"cryptovps_work_backlog", []string{"kind", "servers_provisioning"}, 1},
		{"cryptovps_work_backlog", []string{"kind", "charges_due"}, 0},
		{"cryptovps_upstream_calls_total", []string{"call", "CreateInstance", "outcome", "ok", "upstream", "sandbox"}, 1},
		{"cryptovps_upstream_calls_total", []string{"call", "AvailablePlans", "outcome", "ok", "upstream", "sandbox"}, 1},
	} {
		if got := sample(t, reg, w.name, w.labels...); got != w.want {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.want)
		}
	}
	// Two hours later the biller finds two hours due, charges them, and
	// the server has gone ACTIVE.
	st.SandboxClock.SetOffset(2*time.Hour + time.Minute)
	if err := st.Worker.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sample(t, reg, "cryptovps_work_backlog", "kind", "charges_due"); got != 2 {
		t.Errorf("charges due after two hours: %v, want 2", got)
	}
	if err := st.Worker.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sample(t, reg, "cryptovps_work_backlog", "kind", "charges_due"); got != 0 {
		t.Errorf("charges due once charged: %v, want 0", got)
	}
	if got := sample(t, reg, "cryptovps_work_backlog", "kind", "servers_provisioning"); got != 0 {
		t.Errorf("servers provisioning once ACTIVE: %v, want 0", got)
	}

	// The auth limit is 3 a minute per IP: the register was one.
	for range 3 {
		c.do("POST", "/auth/login", "", map[string]string{"email": "m@example.com", "password": "wrong password here"})
	}
	if got := sample(t, reg, "cryptovps_rate_limited_total", "limit", "ip"); got != 1 {
		t.Errorf("rate-limit refusals: %v, want 1", got)
	}

	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Projector.WaitFor(ctx, head, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"cryptovps_read_model_up": 1, "cryptovps_projection_lag_events": 0,
		"cryptovps_projection_lag_seconds": 0, "cryptovps_negative_balances": 0} {
		if got := sample(t, reg, name, "read_model", "memory"); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	// The store goes away: the process cannot serve, and says why.
	stop()
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	code, body = c.do("GET", "/readyz", "", nil)
	if code != 503 || !strings.Contains(body, "the event store is unreachable") || !strings.Contains(body, `"code":"unavailable"`) {
		t.Errorf("readyz with the store closed: %d %s", code, body)
	}
	if code, _ := c.do("GET", "/healthz", "", nil); code != 200 {
		t.Errorf("healthz (liveness) with the store closed: %d", code)
	}
}
