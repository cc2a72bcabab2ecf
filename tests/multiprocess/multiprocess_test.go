// Package multiprocess runs several `cryptovps serve` processes as one
// deployment: one KurrentDB (the in-process test double), one PostgreSQL
// (tests/pgtest) and one simulated cloud file, the way the README's
// production topology runs N stateless API processes. It checks that the
// processes behave as one service while one of them is killed.
//
// The processes are started with tests/binary, and every HTTP request goes
// through their clients (tests/apiclient), which check each exchange against
// the OpenAPI document.
package multiprocess_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/esdb"
	"github.com/cryptovps/cryptovps/eventstore/esdb/esdbtest"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/postgres"
	"github.com/cryptovps/cryptovps/tests/apiclient"
	"github.com/cryptovps/cryptovps/tests/binary"
	"github.com/cryptovps/cryptovps/tests/pgtest"
)

func TestMain(m *testing.M) {
	os.Exit(binary.Main(func() int { return pgtest.Main(m) }))
}

// deployment is the API processes of one deployment.
type deployment struct {
	procs []*binary.Process
	// repeated counts requests sent again after their process was killed.
	repeated atomic.Int64
}

// sent is an answer and which process gave it.
type sent struct {
	*apiclient.Answer
	by      int  // index of the process that answered
	retried bool // the first process was killed under the request
}

// send sends a request to process i (modulo their number), or to the other
// when the test has killed it. A request that got no answer because its
// process was being killed goes again to the other: every request here may
// be repeated (a deploy carries an Idempotency-Key, so a repeat is a
// replay), and such a repeat is flagged, since its first try may have been
// done (a destroy then answers 409).
func (d *deployment) send(i int, r apiclient.Request) (sent, error) {
	retried := false
	for range len(d.procs) + 1 {
		by := i % len(d.procs)
		p := d.procs[by]
		if p.Killed() {
			i++
			continue
		}
		a, err := p.Client().Send(r)
		if err == nil {
			return sent{Answer: a, by: by, retried: retried}, nil
		}
		// An answer that breaks the OpenAPI document is an answer: only a
		// request left without one goes again.
		if a != nil || !p.Killed() {
			return sent{}, fmt.Errorf("on %s: %w", p.Name, err)
		}
		retried = true
		d.repeated.Add(1)
		i++
	}
	return sent{}, fmt.Errorf("%s %s: every process is gone", r.Method, r.Path)
}

// agent is one customer of the test, with what the service acknowledged.
type agent struct {
	n     int
	email string
	token string
	id    string

	deployed  []string // every server a deploy acknowledged
	live      []string // of those, the ones not destroyed
	destroyed []string
	paid      []string // topups acknowledged paid
}

type serverAnswer struct {
	Server struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"server"`
}

// register opens the agent's account through one process and logs in
// through the other.
func (d *deployment) register(a *agent) error {
	creds := map[string]string{"email": a.email, "password": "correct horse battery"}
	r, err := d.send(a.n, apiclient.Request{Method: http.MethodPost, Path: "/auth/register", Body: creds})
	if err != nil {
		return err
	}
	if r.Status != http.StatusCreated && !(r.retried && r.Status == http.StatusConflict) {
		return fmt.Errorf("register: %s", r)
	}
	// Read your writes: the other process knows the account at once.
	l, err := d.send(r.by+1, apiclient.Request{Method: http.MethodPost, Path: "/auth/login", Body: creds})
	if err != nil {
		return err
	}
	if l.Status != http.StatusOK {
		return fmt.Errorf("login right after registering through another process: %s", l)
	}
	var auth struct {
		AccessToken string `json:"accessToken"`
		User        struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(l.Raw, &auth); err != nil {
		return err
	}
	a.token, a.id = auth.AccessToken, auth.User.ID
	return nil
}

// round is one round of an agent's traffic: a deploy, every other round a
// destroy, every third a paid top-up; each write through one process is
// read back at once through the other.
func (d *deployment) round(a *agent, r int) error {
	i := a.n + r
	key := fmt.Sprintf("%s-deploy-%d", a.email, r)
	dep, err := d.send(i, apiclient.Request{Method: http.MethodPost, Path: "/servers", Token: a.token,
		Header: http.Header{"Idempotency-Key": {key}},
		Body:   map[string]string{"label": fmt.Sprintf("agent%d-round%d", a.n, r), "planId": "vc2-1c-1gb", "regionId": "ams"}})
	if err != nil {
		return err
	}
	if dep.Status != http.StatusAccepted {
		return fmt.Errorf("deploy: %s", dep)
	}
	var srv serverAnswer
	if err := json.Unmarshal(dep.Raw, &srv); err != nil || srv.Server.ID == "" {
		return fmt.Errorf("deploy answer: %s (%v)", dep, err)
	}
	a.deployed = append(a.deployed, srv.Server.ID)
	a.live = append(a.live, srv.Server.ID)
	got, err := d.send(dep.by+1, apiclient.Request{Method: http.MethodGet, Path: "/servers/" + srv.Server.ID, Token: a.token})
	if err != nil {
		return err
	}
	if got.Status != http.StatusOK {
		return fmt.Errorf("read-your-writes: the deploy through %s is not visible through the other process: %s",
			d.procs[dep.by].Name, got)
	}

	if r%2 == 1 {
		victim := a.live[0]
		del, err := d.send(i+1, apiclient.Request{Method: http.MethodDelete, Path: "/servers/" + victim, Token: a.token})
		if err != nil {
			return err
		}
		if del.Status != http.StatusAccepted && !(del.retried && del.Status == http.StatusConflict) {
			return fmt.Errorf("destroy: %s", del)
		}
		a.live, a.destroyed = a.live[1:], append(a.destroyed, victim)
		got, err := d.send(del.by+1, apiclient.Request{Method: http.MethodGet, Path: "/servers/" + victim, Token: a.token})
		if err != nil {
			return err
		}
		var s serverAnswer
		if err := json.Unmarshal(got.Raw, &s); err != nil || got.Status != http.StatusOK ||
			(s.Server.Status != "DESTROYING" && s.Server.Status != "DESTROYED") {
			return fmt.Errorf("read-your-writes: the destroy is not visible through the other process: %s", got)
		}
	}

	if r%3 == 2 {
		top, err := d.send(i, apiclient.Request{Method: http.MethodPost, Path: "/billing/topups", Token: a.token,
			Body: map[string]string{"amount": "5.00", "currency": "USDT"}})
		if err != nil {
			return err
		}
		if top.Status != http.StatusCreated {
			return fmt.Errorf("create top-up: %s", top)
		}
		var t struct {
			Topup struct {
				ID string `json:"id"`
			} `json:"topup"`
		}
		if err := json.Unmarshal(top.Raw, &t); err != nil {
			return err
		}
		pay, err := d.send(top.by+1, apiclient.Request{Method: http.MethodPost, Path: "/sandbox/topups/" + t.Topup.ID + "/pay", Token: a.token})
		if err != nil {
			return err
		}
		if pay.Status != http.StatusOK && !(pay.retried && pay.Status == http.StatusConflict) {
			return fmt.Errorf("pay a top-up created through the other process: %s", pay)
		}
		a.paid = append(a.paid, t.Topup.ID)
		got, err := d.send(pay.by+1, apiclient.Request{Method: http.MethodGet, Path: "/billing/topups/" + t.Topup.ID, Token: a.token})
		if err != nil {
			return err
		}
		if got.Status != http.StatusOK || !strings.Contains(string(got.Raw), `"PAID"`) {
			return fmt.Errorf("read-your-writes: the payment is not visible through the other process: %s", got)
		}
	}
	return nil
}

// advance moves the token's account's own sandbox clock through process i
// and checks that every live process's clock of that account followed.
func (d *deployment) advance(i int, token string, seconds int) error {
	r, err := d.send(i, apiclient.Request{Method: http.MethodPost, Path: "/sandbox/clock/advance", Token: token,
		Body: map[string]int{"seconds": seconds}})
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return fmt.Errorf("advance the clock: %s", r)
	}
	var now struct {
		Now time.Time `json:"now"`
	}
	if err := json.Unmarshal(r.Raw, &now); err != nil {
		return err
	}
	for j, p := range d.procs {
		if j == r.by || p.Killed() {
			continue
		}
		for deadline := time.Now().Add(5 * time.Second); ; {
			h, err := p.Client().Send(apiclient.Request{Method: http.MethodGet, Path: "/sandbox/clock", Token: token})
			if err != nil {
				if h == nil && p.Killed() {
					break
				}
				return err
			}
			var hz struct {
				Now time.Time `json:"now"`
			}
			if err := json.Unmarshal(h.Raw, &hz); err != nil {
				return err
			}
			if !hz.Now.Before(now.Now) {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s's clock (%s) did not follow an advance to %s through %s",
					p.Name, hz.Now, now.Now, d.procs[r.by].Name)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// leader waits until one process says it leads the background work.
func (d *deployment) leader(t *testing.T) int {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for i, p := range d.procs {
			if !p.Killed() && strings.Contains(p.Log(), "leading the background work") {
				return i
			}
		}
	}
	t.Fatal("no process leads the background work")
	return -1
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestTwoProcessesShareOneDeploymentAndSurviveAKill is the multi-process
// deployment of the README: two API processes on one KurrentDB (the test
// double), one PostgreSQL and one simulated cloud file. Agents drive traffic
// at both, alternating, and read each write back through the other process;
// the clock is advanced through both; mid-traffic the process leading the
// background work is killed with SIGKILL and traffic carries on at the
// other, which takes over the work. At the end nothing may be lost or
// doubled: every acknowledged deploy exists once and nothing else was
// deployed, every server has at most one instance at the provider (exactly
// the one it recorded), no hour is charged twice and every due hour is,
// and the balances the read model shows are the fold of the ledger.
func TestTwoProcessesShareOneDeploymentAndSurviveAKill(t *testing.T) {
	dbURL := pgtest.Start(t)
	kdb, err := esdbtest.Start(esdbtest.Options{StatsInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kdb.Close)

	cloudPath := filepath.Join(t.TempDir(), "shared", "sandbox-cloud.json")
	env := []string{
		"EVENTSTORE_URL=" + kdb.URL(),
		"DATABASE_URL=" + dbURL,
		"CRYPTOVPS_JWT_SECRET=" + randomHex(t),
		"CRYPTOVPS_ADMIN_TOKEN=" + randomHex(t),
		// Root passwords sealed by one process are opened by another.
		"CRYPTOVPS_SECRETS_KEY=" + randomHex(t),
	}
	flags := []string{"--sandbox-cloud", cloudPath, "--work-interval", "200ms",
		"--rate-limit", "1000000", "--auth-rate-limit", "1000000", "--server-limit", "50",
		// Tokens expire by the sandbox clock, which runs days ahead here.
		"--token-ttl", "10000h"}
	d := &deployment{}
	start := func(name string) *binary.Process {
		// Under the test's load a process may take a while to drain on
		// SIGTERM.
		return binary.Start(t, binary.Options{Name: name, Env: env, Args: flags, StopWithin: 20 * time.Second})
	}
	d.procs = append(d.procs, start("api-1"))
	d.leader(t) // the first process leads; the second starts as a follower
	d.procs = append(d.procs, start("api-2"))

	const agents, rounds = 6, 12
	as := make([]*agent, agents)
	for n := range as {
		as[n] = &agent{n: n, email: fmt.Sprintf("agent%d@example.com", n)}
		if err := d.register(as[n]); err != nil {
			t.Fatal(err)
		}
	}

	// Traffic: every agent in its own goroutine, the agents' clocks moved
	// by another, and the leader killed once a third of the rounds are done.
	var done atomic.Int64
	stop := make(chan struct{})
	errs := make(chan error, agents+2)
	var wg sync.WaitGroup
	for _, a := range as {
		wg.Go(func() {
			for r := range rounds {
				if err := d.round(a, r); err != nil {
					errs <- fmt.Errorf("agent %d round %d: %w", a.n, r, err)
					return
				}
				done.Add(1)
				// Paced, so that clock advances and the kill fall among
				// the rounds.
				time.Sleep(time.Duration(100+20*a.n) * time.Millisecond)
			}
		})
	}
	var clockWG sync.WaitGroup
	advances := 0
	clockWG.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			// Each account has its own clock: move them in turn.
			if err := d.advance(i, as[i%len(as)].token, 20*60); err != nil {
				errs <- err
				return
			}
			advances++
		}
	})
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	leader := d.leader(t)
wait:
	for done.Load() < agents*rounds/3 {
		select {
		case <-finished:
			break wait
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Logf("killing %s, the leader, with SIGKILL after %d rounds", d.procs[leader].Name, done.Load())
	d.procs[leader].Kill()
	survivor := 1 - leader
	<-finished
	close(stop)
	clockWG.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d rounds and %d clock advances done; %d requests cut by the kill were sent again", done.Load(), advances, d.repeated.Load())
	if !strings.Contains(d.procs[survivor].Log(), "leading the background work") {
		t.Errorf("%s never took over the background work", d.procs[survivor].Name)
	}

	// Let everything settle: every live server ACTIVE, every destroyed one
	// DESTROYED, through the survivor.
	settled := func() (bool, error) {
		for _, a := range as {
			for _, id := range append(slices.Clone(a.live), a.destroyed...) {
				r, err := d.send(survivor, apiclient.Request{Method: http.MethodGet, Path: "/servers/" + id, Token: a.token})
				if err != nil {
					return false, err
				}
				var s serverAnswer
				if err := json.Unmarshal(r.Raw, &s); err != nil || r.Status != http.StatusOK {
					return false, fmt.Errorf("acknowledged server %s: %s", id, r)
				}
				want := "ACTIVE"
				if slices.Contains(a.destroyed, id) {
					want = "DESTROYED"
				}
				if s.Server.Status != want {
					return false, nil
				}
			}
		}
		return true, nil
	}
	for i := 0; ; i++ {
		for _, a := range as {
			if err := d.advance(survivor, a.token, 10*60); err != nil {
				t.Fatal(err)
			}
		}
		ok, err := settled()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			break
		}
		if i == 20 {
			t.Fatal("the servers did not settle after 20 more clock advances")
		}
	}

	// Every account lists exactly its acknowledged live servers.
	for _, a := range as {
		r, err := d.send(survivor, apiclient.Request{Method: http.MethodGet, Path: "/servers", Token: a.token})
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Servers []struct {
				ID string `json:"id"`
			} `json:"servers"`
		}
		r.Decode(t, &list)
		var ids []string
		for _, s := range list.Servers {
			ids = append(ids, s.ID)
		}
		slices.Sort(ids)
		want := slices.Sorted(slices.Values(a.live))
		if !slices.Equal(ids, want) {
			t.Errorf("agent %d lists servers %v, acknowledged live %v", a.n, ids, want)
		}
	}

	d.procs[survivor].Stop(t)
	for _, p := range d.procs {
		for _, line := range strings.Split(p.Log(), "\n") {
			if strings.Contains(line, "leading the background work") || strings.Contains(line, "background step skipped") ||
				(strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) && !strings.Contains(line, "SANDBOX MODE") {
				t.Logf("%s: %s", p.Name, line)
			}
		}
	}
	checkTheLog(t, kdb.URL(), dbURL, cloudPath, as)
}

// checkTheLog audits the whole history once every process has stopped.
func checkTheLog(t *testing.T, kdbURL, dbURL, cloudPath string, as []*agent) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := esdb.Open(ctx, kdbURL, esdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var events []eventstore.Event
	for from := (eventstore.Position{}); ; {
		batch, err := store.ReadAll(ctx, from, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			break
		}
		events = append(events, batch...)
		from = batch[len(batch)-1].Position
	}

	acked := map[string]bool{}
	for _, a := range as {
		for _, id := range a.deployed {
			if acked[id] {
				t.Errorf("server %s acknowledged to two deploys", id)
			}
			acked[id] = true
		}
	}
	deployed := map[string]int{}
	instance := map[string]string{} // server -> recorded instance
	destroyed := map[string]bool{}
	attempts := map[string][]int{}
	charged := map[string]int{} // server|hour -> charges
	txs := map[string]int{}
	for _, ev := range events {
		if !strings.HasPrefix(ev.Stream, domain.AccountStreamPrefix) {
			continue
		}
		e, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			t.Fatalf("event %s: %v", ev.ID, err)
		}
		switch e := e.(type) {
		case domain.ServerDeployed:
			deployed[e.ServerID]++
		case domain.ServerProvisionStarted:
			attempts[e.ServerID] = append(attempts[e.ServerID], e.Attempt)
		case domain.ServerInstanceCreated:
			if instance[e.ServerID] != "" {
				t.Errorf("server %s recorded two instances", e.ServerID)
			}
			instance[e.ServerID] = e.InstanceID
		case domain.ServerDestroyed:
			destroyed[e.ServerID] = true
		case domain.LedgerPosted:
			txs[e.TxID]++
			if e.Kind == domain.TxCharge {
				charged[e.ServerID+"|"+e.From.UTC().Format(time.RFC3339Nano)]++
			}
		}
	}

	// Every acknowledged deploy exists once; nothing unacknowledged exists
	// (a deploy cut by the kill was repeated with its key: a replay).
	for id := range acked {
		if deployed[id] != 1 {
			t.Errorf("acknowledged server %s deployed %d times in the log", id, deployed[id])
		}
	}
	for id, n := range deployed {
		if !acked[id] {
			t.Errorf("server %s in the log (%d times) was never acknowledged", id, n)
		}
	}
	for id, seq := range attempts {
		for i, n := range seq {
			if n != i+1 {
				t.Errorf("server %s provisioning attempts %v: not 1, 2, 3...", id, seq)
				break
			}
		}
	}
	for k, n := range charged {
		if n != 1 {
			t.Errorf("hour %s charged %d times", k, n)
		}
	}
	for id, n := range txs {
		if n != 1 {
			t.Errorf("ledger transaction %s posted %d times", id, n)
		}
	}

	// The provider: one instance per server at most, exactly the recorded
	// one, none for a server that recorded none, none left running for a
	// destroyed server.
	b, err := os.ReadFile(cloudPath)
	if err != nil {
		t.Fatal(err)
	}
	var cloud struct {
		Instances map[string]struct {
			ID        string     `json:"id"`
			Tag       string     `json:"tag"`
			DeletedAt *time.Time `json:"deletedAt"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(b, &cloud); err != nil {
		t.Fatal(err)
	}
	byTag := map[string][]string{}
	for _, in := range cloud.Instances {
		byTag[in.Tag] = append(byTag[in.Tag], in.ID)
		if destroyed[in.Tag] && in.DeletedAt == nil {
			t.Errorf("instance %s of destroyed server %s is still running", in.ID, in.Tag)
		}
	}
	for tag, ids := range byTag {
		if deployed[tag] == 0 {
			t.Errorf("instances %v at the provider for unknown server %s", ids, tag)
		}
		if len(ids) != 1 || instance[tag] != ids[0] {
			t.Errorf("server %s: instances %v at the provider, recorded %q", tag, ids, instance[tag])
		}
	}
	for id, inst := range instance {
		if len(byTag[id]) == 0 {
			t.Errorf("server %s recorded instance %s the provider never made", id, inst)
		}
	}
	t.Logf("log: %d events, %d servers, %d instances at the provider, %d charged hours",
		len(events), len(deployed), len(cloud.Instances), len(charged))

	// The audit of the books, and the PostgreSQL read model's balances
	// against the fold of the ledger (caught up first: the survivor may have
	// stopped before applying its last events; Apply skips what it has).
	model, err := postgres.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	if err := projections.NewProjector(store, model, slog.New(slog.NewTextHandler(io.Discard, nil))).CatchUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	aud := audit.New(audit.Options{})
	if _, err := audit.Run(ctx, store, aud, audit.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := aud.CheckReadModel(ctx, "postgres", audit.ReaderBalances(model)); err != nil {
		t.Fatal(err)
	}
	rep := aud.Finish()
	for _, v := range rep.Violations {
		t.Errorf("audit: %s", v)
	}
	if rep.Accounts != len(as) || rep.ChargedHours == 0 {
		t.Errorf("audit saw %d accounts and %d charged hours", rep.Accounts, rep.ChargedHours)
	}
	for _, a := range as {
		v, err := model.Account(ctx, a.id)
		if err != nil {
			t.Fatal(err)
		}
		if want := rep.Balances[a.id]; v.Balance.Cmp(want) != 0 {
			t.Errorf("agent %d: read model balance %s, ledger fold %s", a.n, v.Balance, want)
		}
	}
}
