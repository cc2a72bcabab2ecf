package contract

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
)

// BenchmarkGetServer measures an authenticated GET /servers/:id through the
// whole Echo stack (request id, logging, JWT check, rate limit, read model,
// JSON), in process, with parallel clients.
func BenchmarkGetServer(b *testing.B) {
	h := newHarnessTB(b, func(testing.TB) projections.Model { return memory.New() }, config{})
	u := h.register(b)
	id := u.deploy(b, "bench", "vc2-1c-1gb")
	auth := u.bearer(b)
	path := "/servers/" + id
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set(auth[0], auth[1])
			rec := httptest.NewRecorder()
			h.api.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("GET %s: %d %s", path, rec.Code, rec.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
