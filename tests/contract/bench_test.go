package contract

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
)

// BenchmarkGetServer measures an authenticated GET /servers/:id through the
// whole Echo stack (request id, logging, JWT check, rate limit, read model,
// JSON), in process, with parallel clients.
func BenchmarkGetServer(b *testing.B) {
	h := newHarnessTB(b, func(_ testing.TB, store eventstore.Store) projections.Model { return memory.New(store) }, config{})
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

// BenchmarkCompareGetServer is issue 17's request-path figure: an
// authenticated GET /servers/:id through the whole stack ("project": request
// id, logs, metrics, token check, rate limit, read-your-writes wait, read
// model, JSON) beside a bare Echo handler answering a similar object
// ("baseline"), in the same run, both over HTTP on loopback from the same
// parallel clients. It reports req/s and the p99 latency (p99-ns) of each.
func BenchmarkCompareGetServer(b *testing.B) {
	projectH, baselineH, path, auth := getServerPair(b)
	project := httptest.NewServer(projectH)
	defer project.Close()
	baseline := httptest.NewServer(baselineH)
	defer baseline.Close()
	b.Run("project", func(b *testing.B) { measureGets(b, project.URL+path, auth) })
	b.Run("baseline", func(b *testing.B) { measureGets(b, baseline.URL+path, auth) })
}

// getServerPair is a whole stack with an account and an ACTIVE server, and
// a bare Echo handler answering that server as the stack shows it.
func getServerPair(b *testing.B) (project, baseline http.Handler, path string, auth []string) {
	h := newHarnessTB(b, func(_ testing.TB, store eventstore.Store) projections.Model { return memory.New(store) }, config{})
	u := h.register(b)
	id, _ := u.activeServer(b, "bench", "vc2-1c-1gb")
	auth = u.bearer(b)
	path = "/servers/" + id
	var answer struct {
		Server benchServer `json:"server"`
	}
	if err := json.Unmarshal(u.server(b, id).Raw, &answer); err != nil {
		b.Fatal(err)
	}
	// The baseline: Echo with no middleware, answering the same object from
	// memory.
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	obj := answer.Server
	e.GET("/servers/:id", func(c echo.Context) error {
		if c.Param("id") != obj.ID {
			return c.NoContent(http.StatusNotFound)
		}
		return c.JSON(http.StatusOK, map[string]any{"server": obj})
	})
	return h.api, e, path, auth
}

// BenchmarkCompareGetServerHandler is the same comparison without the
// network: each handler served in process (httptest recorder), which shows
// the handlers' own cost, undiluted by the HTTP server and client.
func BenchmarkCompareGetServerHandler(b *testing.B) {
	project, baseline, path, auth := getServerPair(b)
	b.Run("project", func(b *testing.B) { measureHandler(b, project, path, auth) })
	b.Run("baseline", func(b *testing.B) { measureHandler(b, baseline, path, auth) })
}

// benchServer has the fields of a server as GET /servers/:id shows it.
type benchServer struct {
	ID           string   `json:"id"`
	Label        string   `json:"label"`
	Status       string   `json:"status"`
	Region       string   `json:"region"`
	Plan         string   `json:"plan"`
	IPv4         *string  `json:"ipv4"`
	HourlyPrice  string   `json:"hourlyPrice"`
	CreatedAt    string   `json:"createdAt"`
	SSHKeys      []string `json:"sshKeys,omitempty"`
	BackupID     string   `json:"backupId,omitempty"`
	Error        *string  `json:"error"`
	SSHUser      string   `json:"sshUser"`
	SSHPort      int      `json:"sshPort"`
	RootPassword *string  `json:"rootPassword"`
}

// measureGets sends b.N GETs to url from 8 clients per CPU over kept-alive
// connections and reports the throughput and the 99th percentile latency.
func measureGets(b *testing.B, url string, header []string) {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set(header[0], header[1])
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(start))
			if resp.StatusCode != http.StatusOK {
				b.Errorf("GET %s: %d", url, resp.StatusCode)
				return
			}
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	b.StopTimer()
	report(b, all)
}

// measureHandler serves b.N GETs of path by handler in process, from 8
// goroutines per CPU, and reports the throughput and the p99 latency.
func measureHandler(b *testing.B, handler http.Handler, path string, header []string) {
	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		for pb.Next() {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.Header.Set(header[0], header[1])
			rec := httptest.NewRecorder()
			start := time.Now()
			handler.ServeHTTP(rec, req)
			lat = append(lat, time.Since(start))
			if rec.Code != http.StatusOK {
				b.Errorf("GET %s: %d %s", path, rec.Code, rec.Body)
				return
			}
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	b.StopTimer()
	report(b, all)
}

func report(b *testing.B, all []time.Duration) {
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(float64(all[len(all)*99/100].Nanoseconds()), "p99-ns")
}
