package contract

import (
	"net/http"
	"strings"
	"testing"
)

// observabilityTests: the operator's view of a running process, readiness
// for load balancers and Prometheus metrics for the operator.
func observabilityTests(t *testing.T, h *harness) {
	t.Run("GET /readyz is 200 ready, without credentials", func(t *testing.T) {
		t.Parallel()
		r := h.do(t, http.MethodGet, "/readyz", nil).want(t, http.StatusOK)
		if s := r.str("status"); s != "ready" {
			t.Errorf("status %q", s)
		}
	})

	t.Run("GET /metrics is the operator's, in the Prometheus format, and counts requests by route", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.do(t, http.MethodGet, "/metrics", nil).wantError(t, http.StatusUnauthorized, "unauthorized")
		h.do(t, http.MethodGet, "/metrics", nil).wantError(t, http.StatusUnauthorized, "unauthorized")
		u.do(t, http.MethodGet, "/billing", nil).want(t, http.StatusOK)
		r := h.admin(t, http.MethodGet, "/metrics", nil).want(t, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type %q", ct)
		}
		body := string(r.Raw)
		for _, want := range []string{
			`cryptovps_http_requests_total{code="200",method="GET",route="/billing"}`,
			`cryptovps_http_requests_total{code="201",method="POST",route="/auth/register"}`,
			`cryptovps_eventstore_append_duration_seconds_bucket{outcome="ok"`,
			`cryptovps_projection_lag_seconds{read_model=`,
			`cryptovps_negative_balances{read_model=`,
			`cryptovps_work_backlog{kind="charges_due"}`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the metrics lack %s", want)
			}
		}
	})
}
