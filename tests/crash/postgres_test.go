package crash

import (
	"math/rand/v2"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/tests/apiclient"
	"github.com/cryptovps/cryptovps/tests/binary"
	"github.com/cryptovps/cryptovps/tests/pgtest"
)

// TestPostgresOutage is the crash harness on the PostgreSQL read model:
// under load, PostgreSQL goes away (every read answers 503, and so does
// every write that cannot be shown; none is half-done), comes back (the
// projector resumes from its checkpoint and every acknowledged write reads
// back, each balance the fold of its ledger), then the API process is
// killed with SIGKILL mid-load and restarted on the same data dir and
// database; at the end the log must hold every acknowledged write once and
// `cryptovps audit` must pass, comparing PostgreSQL's balances with the
// fold of the ledger.
func TestPostgresOutage(t *testing.T) {
	cluster := pgtest.StartCluster(t)
	dbURL := cluster.NewDatabase(t)
	p := binary.Start(t, binary.Options{Args: flags, Env: []string{"DATABASE_URL=" + dbURL}, StopWithin: 30 * time.Second})
	b := newBook()
	d := &driver{t: t, b: b, p: p, seq: new(atomic.Int64), allow5xx: []int{http.StatusServiceUnavailable}}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	mine := make([][]*account, 3)
	var tl tally

	// loadFor runs the agents for a while, doing mid at mid-way.
	loadFor := func(total time.Duration, mid func()) {
		stop, done := make(chan struct{}), make(chan struct{})
		r := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		go func() { d.load(r, mine, stop); close(done) }()
		select {
		case <-time.After(total / 2):
		case <-done:
		}
		mid()
		select {
		case <-time.After(total / 2):
		case <-done:
		}
		close(stop)
		<-done
	}
	someToken := func() string {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, a := range b.accounts {
			return a.token
		}
		return ""
	}
	// until polls GET /billing until it answers status.
	until := func(status int, within time.Duration) {
		t.Helper()
		tok := someToken()
		if tok == "" {
			t.Fatal("no account was registered")
		}
		var last *apiclient.Answer
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			a, o := send(t, p, apiclient.Request{Method: http.MethodGet, Path: "/billing", Token: tok}, http.StatusServiceUnavailable)
			if a != nil && a.Status == status {
				return
			}
			if o == failed {
				t.FailNow()
			}
			last = a
		}
		t.Fatalf("GET /billing did not answer %d within %s: %v", status, within, last)
	}

	// Warm up, then PostgreSQL goes down under the load.
	loadFor(time.Second, func() {})
	d.retryCut()
	d.readBack()
	var downAt time.Time
	d.noClock = true
	loadFor(2*time.Second, func() {
		if err := cluster.Stop(); err != nil {
			t.Fatal(err)
		}
		downAt = time.Now()
	})
	until(http.StatusServiceUnavailable, 20*time.Second)
	// A write while it is down: 503, and it stands or not; its retry
	// after the outage settles which.
	d.newDeploy(mine[0][0])
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	down := time.Since(downAt)
	until(http.StatusOK, 60*time.Second)
	d.noClock = false
	t.Logf("PostgreSQL was down %s; caught up %s after it came back", down.Round(time.Millisecond), (time.Since(downAt) - down).Round(time.Millisecond))
	d.retryCut()
	d.readBack()
	if t.Failed() {
		t.FailNow()
	}

	// Then the API process crashes mid-load, on the same database.
	loadFor(time.Second, func() { p.Kill() })
	tl.rounds++
	checkLog(t, p.DataDir, b, &tl)
	p.Restart(t)
	d.retryCut()
	d.readBack()
	p.Stop(t)
	checkLog(t, p.DataDir, b, &tl)
	audit(t, p, &tl)
	t.Logf("PostgreSQL outage and crash: %s; %s", d.figures(), tl)
}
