// Package soak runs the real binary under a steady mixed load for a long
// time and watches it: latency percentiles per kind of request, and the
// process's memory (RSS from /proc), open file descriptors, OS threads and,
// when the process serves /metrics, goroutines, sampled over time. It fails
// on a 5xx and on growth that does not level off (a leak).
//
// It runs only when asked: `make soak DURATION=30m` (SOAK_DURATION=30m
// go test -run TestSoak -v ./tests/soak/). SOAK_RATE is the requests per
// second (50 by default).
package soak

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/tests/apiclient"
	"github.com/cryptovps/cryptovps/tests/binary"
)

func TestMain(m *testing.M) {
	if os.Getenv("SOAK_DURATION") == "" {
		os.Exit(m.Run()) // TestSoak skips: no binary to build
	}
	os.Exit(binary.Main(m.Run))
}

const password = "correct horse battery"

type account struct {
	mu    sync.Mutex
	email string
	token string
	live  []string
	ready []string // servers seen ACTIVE, for backups
}

// stats are the latencies of one kind of request.
type stats struct {
	mu   sync.Mutex
	all  []time.Duration
	win  []time.Duration // since the last sample
	n5xx int
	bad  map[string]int // unexpected answers, by status and code
}

func (s *stats) add(d time.Duration) {
	s.mu.Lock()
	s.all = append(s.all, d)
	s.win = append(s.win, d)
	s.mu.Unlock()
}

func percentiles(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	r := func(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }
	return fmt.Sprintf("n=%d p50=%s p90=%s p99=%s max=%s", len(ds), r(at(.5)), r(at(.9)), r(at(.99)), r(ds[len(ds)-1]))
}

// sample is what /proc and /metrics say about the process at one moment.
type sample struct {
	at           time.Duration
	rss, rssAnon int64 // kB
	fds, threads int
	goroutines   int // -1 when unknown
	requests     int64
	logPosition  int64 // the newest log position a write answered
	latency      string
}

// pidOf finds the serve process of dataDir in /proc.
func pidOf(t *testing.T, dataDir string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if slices.Contains(args, "serve") && slices.Contains(args, dataDir) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	t.Fatalf("no serve process of %s in /proc", dataDir)
	return 0
}

func procSample(t *testing.T, pid int) sample {
	t.Helper()
	s := sample{goroutines: -1}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("the process is gone: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			s.rss = n
		case "RssAnon":
			s.rssAnon = n
		case "Threads":
			s.threads = int(n)
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	s.fds = len(fds)
	return s
}

// goroutines reads go_goroutines from /metrics, when the process has it.
func goroutines(base string) int {
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return -1
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int(n)
			}
		}
	}
	return -1
}

func TestSoak(t *testing.T) {
	raw := os.Getenv("SOAK_DURATION")
	if raw == "" {
		t.Skip("the soak runs only when asked: make soak DURATION=30m (SOAK_DURATION=30m)")
	}
	duration, err := time.ParseDuration(raw)
	if err != nil || duration < 10*time.Second {
		t.Fatalf("SOAK_DURATION=%q: want a duration of at least 10s", raw)
	}
	rate := 50
	if v := os.Getenv("SOAK_RATE"); v != "" {
		if rate, err = strconv.Atoi(v); err != nil || rate < 1 {
			t.Fatalf("SOAK_RATE=%q: want requests per second", v)
		}
	}
	every := min(max(duration/30, 2*time.Second), time.Minute)

	p := binary.Start(t, binary.Options{Args: []string{"--rate-limit", "1000000000", "--auth-rate-limit", "1000000000",
		"--server-limit", "1000", "--token-ttl", "100000h", "--log-level", "warn"}, StopWithin: 30 * time.Second})
	pid := pidOf(t, p.DataDir)
	cl := p.Client()

	kinds := map[string]*stats{}
	for _, k := range []string{"read", "deploy", "destroy", "topup", "pay", "backup", "advance", "login"} {
		kinds[k] = &stats{bad: map[string]int{}}
	}
	var requests, logPos atomic.Int64
	// do sends r as kind; want are the statuses that are fine.
	do := func(kind string, r apiclient.Request, want ...int) *apiclient.Answer {
		start := time.Now()
		a, err := cl.Send(r)
		d := time.Since(start)
		requests.Add(1)
		st := kinds[kind]
		st.add(d)
		if a != nil {
			// Where the log is: the commit position a write answers.
			c, _, _ := strings.Cut(a.Header.Get("X-Log-Position"), "/")
			if n, err := strconv.ParseInt(c, 10, 64); err == nil {
				for cur := logPos.Load(); n > cur && !logPos.CompareAndSwap(cur, n); cur = logPos.Load() {
				}
			}
		}
		if a == nil {
			t.Errorf("%s %s: no answer: %v", r.Method, r.Path, err)
			return nil
		}
		if err != nil {
			t.Errorf("%v", err)
		}
		if !slices.Contains(want, a.Status) {
			st.mu.Lock()
			if a.Status >= 500 {
				st.n5xx++
				t.Errorf("server error: %s", a)
			}
			st.bad[fmt.Sprintf("%d %s", a.Status, a.Str("code"))]++
			st.mu.Unlock()
			return nil
		}
		return a
	}

	// A fixed set of accounts: the load keeps the state bounded (servers
	// are destroyed as they are deployed), so memory must level off.
	accounts := make([]*account, 8)
	for i := range accounts {
		a := &account{email: fmt.Sprintf("soak%d@example.com", i)}
		r := do("login", apiclient.Request{Method: http.MethodPost, Path: "/auth/register",
			Body: map[string]string{"email": a.email, "password": password}}, http.StatusCreated)
		if r == nil {
			t.FailNow()
		}
		a.token = r.Str("accessToken")
		accounts[i] = a
	}
	op := func(rng *rand.Rand) {
		a := accounts[rng.IntN(len(accounts))]
		req := func(method, path string, body any) apiclient.Request {
			return apiclient.Request{Method: method, Path: path, Token: a.token, Body: body}
		}
		n := rng.IntN(100)
		// The clock and logins need no account state: they do not hold
		// the account (an advance may take a second).
		if n < 33 || n >= 38 {
			a.mu.Lock()
			defer a.mu.Unlock()
		}
		switch {
		case n < 10 && len(a.live) < 4:
			r := req(http.MethodPost, "/servers", map[string]string{"label": "soak", "planId": "vc2-1c-1gb", "regionId": "ams"})
			r.Header = http.Header{"Idempotency-Key": {uuid.NewString()}}
			if x := do("deploy", r, http.StatusAccepted, http.StatusPaymentRequired); x != nil && x.Status == http.StatusAccepted {
				a.live = append(a.live, x.Str("server.id"))
			}
		case n < 20 && len(a.live) > 0:
			id := a.live[0]
			a.live = a.live[1:]
			a.ready = slices.DeleteFunc(a.ready, func(s string) bool { return s == id })
			do("destroy", req(http.MethodDelete, "/servers/"+id, nil), http.StatusAccepted)
		case n < 28:
			if x := do("topup", req(http.MethodPost, "/billing/topups", map[string]string{"amount": "5.00", "currency": "BTC"}), http.StatusCreated); x != nil {
				do("pay", req(http.MethodPost, "/sandbox/topups/"+x.Str("topup.id")+"/pay", nil), http.StatusOK)
			}
		case n < 33 && len(a.ready) > 0:
			do("backup", req(http.MethodPost, "/backups", map[string]string{"serverId": a.ready[rng.IntN(len(a.ready))]}),
				http.StatusAccepted, http.StatusConflict)
		case n < 37:
			do("advance", req(http.MethodPost, "/sandbox/clock/advance", map[string]int{"seconds": 60 + rng.IntN(540)}), http.StatusOK)
		case n < 38:
			do("login", apiclient.Request{Method: http.MethodPost, Path: "/auth/login",
				Body: map[string]string{"email": a.email, "password": password}}, http.StatusOK)
		default:
			paths := []string{"/servers", "/billing", "/billing/ledger?limit=20", "/backups", "/auth/me", "/billing/topups"}
			if x := do("read", req(http.MethodGet, paths[rng.IntN(len(paths))], nil), http.StatusOK); x != nil && x.Path == "/servers" {
				a.ready = a.ready[:0]
				for i := range x.List("servers") {
					if x.Str(fmt.Sprintf("servers.%d.status", i)) == "ACTIVE" {
						a.ready = append(a.ready, x.Str(fmt.Sprintf("servers.%d.id", i)))
					}
				}
			}
		}
	}

	// An open loop at a steady rate: a tick that finds every worker busy
	// is counted as missed, not queued.
	const workers = 16
	ticks := make(chan struct{})
	var missed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
		wg.Go(func() {
			for range ticks {
				op(rng)
			}
		})
	}
	var samples []sample
	take := func(at time.Duration) {
		s := procSample(t, pid)
		s.at, s.goroutines, s.requests, s.logPosition = at, goroutines(p.URL), requests.Load(), logPos.Load()
		var win []time.Duration
		for _, st := range kinds {
			st.mu.Lock()
			win = append(win, st.win...)
			st.win = st.win[:0]
			st.mu.Unlock()
		}
		s.latency = percentiles(win)
		samples = append(samples, s)
		g := "-"
		if s.goroutines >= 0 {
			g = strconv.Itoa(s.goroutines)
		}
		t.Logf("%7s rss %6.1f MB (anon %6.1f MB) fds %3d threads %3d goroutines %5s requests %7d log %7d | %s",
			at.Round(time.Second), float64(s.rss)/1024, float64(s.rssAnon)/1024, s.fds, s.threads, g, s.requests, s.logPosition, s.latency)
	}
	start := time.Now()
	take(0)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	sampleAt := time.NewTicker(every)
	end := time.After(duration)
loop:
	for {
		select {
		case <-tick.C:
			select {
			case ticks <- struct{}{}:
			default:
				missed.Add(1)
			}
		case <-sampleAt.C:
			take(time.Since(start))
			if t.Failed() {
				break loop
			}
		case <-end:
			break loop
		}
	}
	tick.Stop()
	sampleAt.Stop()
	close(ticks)
	wg.Wait()
	take(time.Since(start))

	var report bytes.Buffer
	elapsed := time.Since(start)
	fmt.Fprintf(&report, "soak: %s at %d req/s target, %d requests (%.1f/s), %d ticks missed (every worker busy)\n",
		elapsed.Round(time.Second), rate, requests.Load(), float64(requests.Load())/elapsed.Seconds(), missed.Load())
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range kinds {
			if !yield(k) {
				return
			}
		}
	}) {
		st := kinds[k]
		fmt.Fprintf(&report, "  %-8s %s", k, percentiles(st.all))
		if len(st.bad) > 0 {
			fmt.Fprintf(&report, "  unexpected: %v", st.bad)
		}
		report.WriteString("\n")
	}
	first, last := samples[0], samples[len(samples)-1]
	fmt.Fprintf(&report, "  rss %.1f -> %.1f MB (anon %.1f -> %.1f MB), fds %d -> %d, threads %d -> %d",
		float64(first.rss)/1024, float64(last.rss)/1024, float64(first.rssAnon)/1024, float64(last.rssAnon)/1024,
		first.fds, last.fds, first.threads, last.threads)
	if last.goroutines >= 0 {
		fmt.Fprintf(&report, ", goroutines %d -> %d", first.goroutines, last.goroutines)
	}
	if t.Failed() {
		t.Log(report.String())
		return
	}

	// Memory against data: the log and the in-memory read model grow
	// with every write, so the soaked process is compared with a fresh
	// one on the same log (it replays it all), read from as the load did.
	soaked := memoryFloor(samples[len(samples)*2/3:])
	p.Stop(t)
	p.Restart(t)
	pid = pidOf(t, p.DataDir)
	cl = p.Client()
	var fresh []sample
	for end := time.Now().Add(min(max(duration/10, 5*time.Second), 30*time.Second)); time.Now().Before(end); {
		for _, a := range accounts {
			for _, path := range []string{"/servers", "/billing", "/billing/ledger?limit=20", "/backups", "/auth/me", "/billing/topups"} {
				do("read", apiclient.Request{Method: http.MethodGet, Path: path, Token: a.token}, http.StatusOK)
			}
		}
		fresh = append(fresh, procSample(t, pid))
	}
	restarted := memoryFloor(fresh)
	fmt.Fprintf(&report, "\n  log position %d; anonymous RSS floor %.1f MB soaked, %.1f MB in a fresh process on the same log",
		last.logPosition, float64(soaked)/1024, float64(restarted)/1024)
	t.Log(report.String())
	for _, l := range leaks(samples[:len(samples)-1]) {
		t.Error(l)
	}
	if l := memoryLeak(soaked, restarted); l != "" {
		t.Error(l)
	}
}

// memoryFloor is the lowest anonymous RSS of the samples (kB): what is left
// after the garbage collector ran (a login's password hash alone takes 64
// MiB for a moment).
func memoryFloor(s []sample) int64 {
	m := s[0].rssAnon
	for _, x := range s {
		m = min(m, x.rssAnon)
	}
	return m
}

// memoryLeak judges the soaked process's memory floor against a fresh
// process's on the same log: what the data does not explain is a leak,
// beyond the slack of the garbage collector's rhythm.
func memoryLeak(soaked, fresh int64) string {
	if slack := max(48*1024, fresh/2); soaked-fresh > slack {
		return fmt.Sprintf("memory leak: anonymous RSS floor %d kB after the soak, %d kB in a fresh process on the same log (slack %d kB)",
			soaked, fresh, slack)
	}
	return ""
}

// leaks judges the counts sampled after a warm-up (the first quarter):
// split into three equal windows, a count whose median rises from each
// window to the next by more than its slack has not levelled off. (Memory
// grows with the data: memoryLeak judges it.)
func leaks(samples []sample) []string {
	if len(samples) < 8 {
		return []string{fmt.Sprintf("only %d samples: too few to judge growth", len(samples))}
	}
	s := samples[len(samples)/4:]
	third := len(s) / 3
	windows := [][]sample{s[:third], s[third : 2*third], s[2*third:]}
	median := func(v []float64) float64 { return v[len(v)/2] }
	var out []string
	check := func(name string, f func(sample) float64, of func([]float64) float64, slack func(base float64) float64) {
		var m [3]float64
		for i, w := range windows {
			v := make([]float64, len(w))
			for j, x := range w {
				v[j] = f(x)
			}
			slices.Sort(v)
			m[i] = of(v)
		}
		a, b, c := m[0], m[1], m[2]
		if a < 0 {
			return // unknown
		}
		if b > a && c > b && c-a > slack(a) {
			out = append(out, fmt.Sprintf("%s keeps growing after the warm-up: %.0f, %.0f, %.0f over three windows (slack %.0f)",
				name, a, b, c, slack(a)))
		}
	}
	check("open fds", func(x sample) float64 { return float64(x.fds) }, median, func(float64) float64 { return 10 })
	check("OS threads", func(x sample) float64 { return float64(x.threads) }, median, func(float64) float64 { return 10 })
	check("goroutines", func(x sample) float64 { return float64(x.goroutines) }, median, func(a float64) float64 { return max(100, a/2) })
	return out
}
