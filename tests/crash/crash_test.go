package crash

import (
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/tests/binary"
)

// flags make the sandbox quick to reason about under load: no rate limits,
// room for many servers, tokens that outlive the sandbox clock's jumps.
var flags = []string{"--rate-limit", "1000000", "--auth-rate-limit", "1000000", "--server-limit", "1000",
	"--token-ttl", "100000h", "--work-interval", "100ms"}

// envInt reads a positive integer from the environment.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// TestCrash is the crash harness: rounds of concurrent agents (register,
// top up and pay, deploy with an Idempotency-Key, destroy, back up) and the
// sandbox clock against the real binary, killed with SIGKILL at a random
// moment of each round and restarted on the same data dir. After each kill
// the log is read directly and must hold every acknowledged write exactly
// once, and `cryptovps audit` must pass; after each restart the requests
// the kill cut are sent again (the same deploy with the same key must
// replay, never deploy twice) and everything acknowledged must read back
// through the API, each balance the fold of its ledger.
//
// CRASH_ROUNDS sets the rounds (3 by default; `make crash ROUNDS=200`),
// CRASH_SEED the random seed.
func TestCrash(t *testing.T) {
	rounds := envInt(t, "CRASH_ROUNDS", 3)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CRASH_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CRASH_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("CRASH_SEED=%d CRASH_ROUNDS=%d", seed, rounds)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	p := binary.Start(t, binary.Options{Args: flags, StopWithin: 30 * time.Second})
	b := newBook()
	d := &driver{t: t, b: b, p: p, seq: new(atomic.Int64)}
	mine := make([][]*account, 4) // the accounts of each of 4 agents
	var tl tally
	start := time.Now()
	for r := 1; r <= rounds; r++ {
		d.retryCut()
		d.readBack()
		if t.Failed() {
			t.Fatalf("round %d, after the restart: %s; %s", r, d.figures(), tl)
		}
		// The kill falls anywhere from the first requests to well into
		// the load.
		killAfter := time.Duration(100+rng.IntN(1400)) * time.Millisecond
		stop := make(chan struct{})
		done := make(chan struct{})
		loadRng := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		go func() { d.load(loadRng, mine, stop); close(done) }()
		select {
		case <-time.After(killAfter):
		case <-done: // a failure stopped the load
		}
		p.Kill()
		close(stop)
		<-done
		tl.rounds++
		checkLog(t, p.DataDir, b, &tl)
		audit(t, p, &tl)
		if t.Failed() {
			t.Fatalf("round %d, after the kill %s into it: %s; %s", r, killAfter, d.figures(), tl)
		}
		p.Restart(t)
	}
	d.retryCut()
	d.readBack()
	p.Stop(t)
	checkLog(t, p.DataDir, b, &tl)
	audit(t, p, &tl)
	t.Logf("crash harness, %s: %s; %s", time.Since(start).Round(time.Second), d.figures(), tl)
}
