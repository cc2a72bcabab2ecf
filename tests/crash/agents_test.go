package crash

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/tests/apiclient"
	"github.com/cryptovps/cryptovps/tests/binary"
)

const password = "correct horse battery"

// account is one customer of the test, driven by one worker at a time.
type account struct {
	email, id, token string
	live             []string // acknowledged deploys not destroyed by the test
}

// deployReq is a deploy with an Idempotency-Key: the body is fixed by the
// key, so a retry is the same request.
type deployReq struct {
	key, account, label string
}

type backupAck struct {
	account, server string
	expires         time.Time
}

// book is what the service acknowledged (2xx) and what is left to retry:
// requests that got no answer because the process was killed under them.
type book struct {
	mu sync.Mutex

	accounts map[string]*account // by id: registrations acknowledged
	byEmail  map[string]*account
	// deploys maps every Idempotency-Key sent to its request; acked to the
	// server ids of its 202 (a replay must answer the same).
	deploys   map[string]deployReq
	acked     map[string][]string
	servers   map[string]string // acknowledged server -> account
	topups    map[string]string // acknowledged top-up -> account
	paid      map[string]bool
	destroyed map[string]bool
	backups   map[string]backupAck
	clocks    map[string]time.Time // by account: the latest `now` its clock moves answered
	// logged is every Idempotency-Key the log held at the last check, with
	// its servers: a retry of one must replay them.
	logged map[string][]string

	// Cut by a kill: retried after the restart (a deploy with its key).
	cutRegisters []string // emails
	cutDeploys   []string // keys
	cutPays      []string // top-up ids
	cutDestroys  []string // server ids

	writes   atomic.Int64 // writes acknowledged (2xx), retries included
	cut      atomic.Int64 // requests left without an answer by a kill
	rejected atomic.Int64 // 4xx answers to writes (refused: must change nothing)
	reads    atomic.Int64
	refusals map[string]int // "METHOD path-kind status code" -> count
}

func newBook() *book {
	return &book{accounts: map[string]*account{}, byEmail: map[string]*account{}, deploys: map[string]deployReq{},
		acked: map[string][]string{}, servers: map[string]string{}, topups: map[string]string{}, paid: map[string]bool{},
		destroyed: map[string]bool{}, backups: map[string]backupAck{}, refusals: map[string]int{}, clocks: map[string]time.Time{}}
}

// outcome is what became of one request.
type outcome int

const (
	answered outcome = iota
	cutByKill
	failed
)

// send sends r to p. A request left without an answer because the test
// killed p is cut (nil answer); any other missing answer, an exchange that
// breaks the OpenAPI document, or a 5xx fails the test. allow5xx lists
// statuses >= 500 the caller expects (PostgreSQL outage).
func send(t testing.TB, p *binary.Process, r apiclient.Request, allow5xx ...int) (*apiclient.Answer, outcome) {
	t.Helper()
	a, err := p.Client().Send(r)
	if a == nil {
		if p.Killed() {
			return nil, cutByKill
		}
		t.Errorf("no answer, and the process was not killed: %v", err)
		return nil, failed
	}
	if err != nil {
		t.Errorf("%v", err)
		return a, failed
	}
	if a.Status >= 500 {
		if !slices.Contains(allow5xx, a.Status) {
			t.Errorf("server error: %s", a)
			return a, failed
		}
		// An expected outage: the write may or may not stand (a
		// read_model_lagging 503 says it does), so it is retried like a
		// request a kill cut.
		return a, cutByKill
	}
	return a, answered
}

// driver runs the agents' traffic against one process until stop.
type driver struct {
	t        testing.TB
	b        *book
	p        *binary.Process
	allow5xx []int
	seq      *atomic.Int64
	// noClock leaves the clock alone (an advance waits up to 20 s for
	// background work that cannot read a read model that is down).
	noClock bool
}

func (d *driver) post(path, token string, body any, hdr http.Header) (*apiclient.Answer, outcome) {
	return send(d.t, d.p, apiclient.Request{Method: http.MethodPost, Path: path, Token: token, Body: body, Header: hdr}, d.allow5xx...)
}

// register opens an account for email (a retry of a cut registration takes
// 409 as the proof that it was applied) and logs it in.
func (d *driver) register(email string, retry bool) *account {
	creds := map[string]string{"email": email, "password": password}
	a, o := d.post("/auth/register", "", creds, nil)
	switch {
	case o == cutByKill:
		d.b.cut.Add(1)
		d.b.mu.Lock()
		d.b.cutRegisters = append(d.b.cutRegisters, email)
		d.b.mu.Unlock()
		return nil
	case o != answered:
		return nil
	case a.Status == http.StatusCreated:
		d.b.writes.Add(1)
	case retry && a.Status == http.StatusConflict:
	default:
		d.t.Errorf("register %s: %s", email, a)
		return nil
	}
	if a.Status != http.StatusCreated {
		if a, o = d.post("/auth/login", "", creds, nil); o != answered {
			return nil
		}
		if a.Status != http.StatusOK {
			d.t.Errorf("login %s after a cut registration answered 409: %s", email, a)
			return nil
		}
	}
	acct := &account{email: email, id: a.Str("user.id"), token: a.Str("accessToken")}
	d.b.mu.Lock()
	d.b.accounts[acct.id] = acct
	d.b.byEmail[email] = acct
	d.b.mu.Unlock()
	return acct
}

// deploy sends the deploy of key (new or a retry).
func (d *driver) deploy(key string, retry bool) {
	d.b.mu.Lock()
	req := d.b.deploys[key]
	acct := d.b.accounts[req.account]
	prev, hadAck := d.b.acked[key]
	if !hadAck {
		prev, hadAck = d.b.logged[key]
	}
	d.b.mu.Unlock()
	a, o := d.post("/servers", acct.token, map[string]string{"label": req.label, "planId": "vc2-1c-1gb", "regionId": "ams"},
		http.Header{"Idempotency-Key": {key}})
	switch {
	case o == cutByKill:
		d.b.cut.Add(1)
		d.b.mu.Lock()
		d.b.cutDeploys = append(d.b.cutDeploys, key)
		d.b.mu.Unlock()
		return
	case o != answered:
		return
	case a.Status == http.StatusAccepted:
	case a.Status >= 400 && a.Status < 500 && !hadAck:
		d.refused("deploy", a)
		return
	default:
		d.t.Errorf("deploy %s (retry %v): %s", key, retry, a)
		return
	}
	d.b.writes.Add(1)
	id := a.Str("server.id")
	replayed := a.Header.Get("Idempotent-Replayed") == "true"
	if hadAck && (!replayed || !slices.Equal(prev, []string{id})) {
		d.t.Errorf("deploy %s again: want a replay of %v, got %s (Idempotent-Replayed %q)", key, prev, a, a.Header.Get("Idempotent-Replayed"))
	}
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	if _, acked := d.b.acked[key]; !acked {
		d.b.acked[key] = []string{id}
		d.b.servers[id] = acct.id
		acct.live = append(acct.live, id)
	}
}

// refused counts a 4xx answer to a write, by what and why.
func (d *driver) refused(what string, a *apiclient.Answer) {
	d.b.rejected.Add(1)
	d.b.mu.Lock()
	if d.b.refusals[fmt.Sprintf("%s %d %s", what, a.Status, a.Str("code"))]++; os.Getenv("CRASH_DEBUG") != "" {
		d.t.Logf("%s", a)
	}
	d.b.mu.Unlock()
}

func (d *driver) newDeploy(acct *account) {
	n := d.seq.Add(1)
	key := uuid.NewString()
	d.b.mu.Lock()
	d.b.deploys[key] = deployReq{key: key, account: acct.id, label: fmt.Sprintf("crash-%d", n)}
	d.b.mu.Unlock()
	d.deploy(key, false)
}

// destroy destroys server id of acct; a retry takes 409 as done.
func (d *driver) destroy(acct *account, id string, retry bool) {
	a, o := send(d.t, d.p, apiclient.Request{Method: http.MethodDelete, Path: "/servers/" + id, Token: acct.token}, d.allow5xx...)
	switch {
	case o == cutByKill:
		d.b.cut.Add(1)
		d.b.mu.Lock()
		d.b.cutDestroys = append(d.b.cutDestroys, id)
		d.b.mu.Unlock()
		return
	case o != answered:
		return
	case a.Status == http.StatusAccepted:
		d.b.writes.Add(1)
	case a.Status == http.StatusConflict && retry:
	default:
		d.t.Errorf("destroy %s (retry %v): %s", id, retry, a)
		return
	}
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	d.b.destroyed[id] = true
	if i := slices.Index(acct.live, id); i >= 0 {
		acct.live = slices.Delete(acct.live, i, i+1)
	}
}

// topUp creates a top-up and pays it.
func (d *driver) topUp(acct *account) {
	a, o := d.post("/billing/topups", acct.token, map[string]string{"amount": "5.00", "currency": "BTC"}, nil)
	if o == cutByKill {
		d.b.cut.Add(1) // not retried: a top-up request has no key
		return
	}
	if o != answered {
		return
	}
	if a.Status != http.StatusCreated {
		d.t.Errorf("create a top-up: %s", a)
		return
	}
	d.b.writes.Add(1)
	id := a.Str("topup.id")
	d.b.mu.Lock()
	d.b.topups[id] = acct.id
	d.b.mu.Unlock()
	d.pay(acct, id, false)
}

// pay pays top-up id; a retry takes 409 (already paid) as done.
func (d *driver) pay(acct *account, id string, retry bool) {
	a, o := d.post("/sandbox/topups/"+id+"/pay", acct.token, nil, nil)
	switch {
	case o == cutByKill:
		d.b.cut.Add(1)
		d.b.mu.Lock()
		d.b.cutPays = append(d.b.cutPays, id)
		d.b.mu.Unlock()
		return
	case o != answered:
		return
	case a.Status == http.StatusOK:
		d.b.writes.Add(1)
	case a.Status == http.StatusConflict && retry:
	default:
		d.t.Errorf("pay top-up %s (retry %v): %s", id, retry, a)
		return
	}
	d.b.mu.Lock()
	d.b.paid[id] = true
	d.b.mu.Unlock()
}

// backUp asks for a backup of one of acct's servers (a 409 for a server
// not ACTIVE yet is a refusal).
func (d *driver) backUp(acct *account, server string) {
	a, o := d.post("/backups", acct.token, map[string]string{"serverId": server}, nil)
	if o == cutByKill {
		d.b.cut.Add(1)
		return
	}
	if o != answered {
		return
	}
	if a.Status >= 400 && a.Status < 500 {
		d.refused("backup", a)
		return
	}
	if a.Status != http.StatusAccepted {
		d.t.Errorf("back up %s: %s", server, a)
		return
	}
	d.b.writes.Add(1)
	exp, err := time.Parse(time.RFC3339, a.Str("backup.expiresAt"))
	if err != nil {
		d.t.Errorf("backup expiresAt: %s", a)
	}
	d.b.mu.Lock()
	d.b.backups[a.Str("backup.id")] = backupAck{account: acct.id, server: server, expires: exp}
	d.b.mu.Unlock()
}

// advance moves the account's own sandbox clock.
func (d *driver) advance(acct *account, seconds int) {
	a, o := d.post("/sandbox/clock/advance", acct.token, map[string]int{"seconds": seconds}, nil)
	if o != answered {
		if o == cutByKill {
			d.b.cut.Add(1)
		}
		return
	}
	if a.Status != http.StatusOK {
		d.t.Errorf("advance the clock: %s", a)
		return
	}
	d.b.writes.Add(1)
	now, err := time.Parse(time.RFC3339, a.Str("now"))
	if err != nil {
		d.t.Errorf("advance: %s", a)
		return
	}
	d.b.mu.Lock()
	if now.After(d.b.clocks[acct.id]) {
		d.b.clocks[acct.id] = now
	}
	d.b.mu.Unlock()
}

// worker is one agent's traffic: it owns its accounts.
func (d *driver) worker(rng *rand.Rand, mine *[]*account, w int, stop <-chan struct{}) {
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return d.p.Killed() || d.t.Failed()
		}
	}
	if len(*mine) == 0 || (len(*mine) < 3 && rng.IntN(3) == 0) {
		if a := d.register(fmt.Sprintf("w%d-%d@crash.example.com", w, d.seq.Add(1)), false); a != nil {
			*mine = append(*mine, a)
		}
	}
	for !stopped() && len(*mine) > 0 {
		if d.allow5xx != nil {
			// Paced while an outage answers 503 at once.
			time.Sleep(10 * time.Millisecond)
		}
		acct := (*mine)[rng.IntN(len(*mine))]
		switch n := rng.IntN(100); {
		case n < 30 && len(acct.live) < 4:
			d.newDeploy(acct)
		case n < 50 && len(acct.live) > 0:
			// The newer half: older servers live on, ACTIVE, to be backed
			// up.
			half := len(acct.live) / 2
			d.destroy(acct, acct.live[half+rng.IntN(len(acct.live)-half)], false)
		case n < 65:
			d.topUp(acct)
		case n < 75 && len(acct.live) > 0:
			d.backUp(acct, acct.live[0])
		default:
			if _, o := send(d.t, d.p, apiclient.Request{Method: http.MethodGet, Path: "/servers", Token: acct.token}, d.allow5xx...); o == answered {
				d.b.reads.Add(1)
			}
		}
	}
}

// retryCut sends again every request a kill left without an answer.
func (d *driver) retryCut() {
	d.b.mu.Lock()
	regs, deps, pays, dels := d.b.cutRegisters, d.b.cutDeploys, d.b.cutPays, d.b.cutDestroys
	d.b.cutRegisters, d.b.cutDeploys, d.b.cutPays, d.b.cutDestroys = nil, nil, nil, nil
	d.b.mu.Unlock()
	for _, e := range regs {
		d.register(e, true)
	}
	for _, k := range deps {
		d.deploy(k, true)
	}
	for _, id := range pays {
		d.b.mu.Lock()
		acct := d.b.accounts[d.b.topups[id]]
		d.b.mu.Unlock()
		d.pay(acct, id, true)
	}
	for _, id := range dels {
		d.b.mu.Lock()
		acct := d.b.accounts[d.b.servers[id]]
		d.b.mu.Unlock()
		d.destroy(acct, id, true)
	}
}

// readBack checks through the API that every acknowledged write shows, and
// that each balance is the fold of its ledger.
func (d *driver) readBack() {
	t := d.t
	get := func(acct *account, path string) *apiclient.Answer {
		a, o := send(t, d.p, apiclient.Request{Method: http.MethodGet, Path: path, Token: acct.token}, d.allow5xx...)
		if o != answered {
			return nil
		}
		if a.Status != http.StatusOK {
			t.Errorf("%s as %s: %s", path, acct.email, a)
			return nil
		}
		return a
	}
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	for _, acct := range d.b.accounts {
		if t.Failed() {
			return
		}
		clock := get(acct, "/sandbox/clock")
		if clock == nil {
			return
		}
		now, _ := time.Parse(time.RFC3339, clock.Str("now"))
		if now.Before(d.b.clocks[acct.id]) {
			t.Errorf("lost: account %s's sandbox clock is at %s, a move of it answered %s", acct.id, now, d.b.clocks[acct.id])
		}
		list := get(acct, "/servers")
		if list == nil {
			return
		}
		status := map[string]string{}
		for i := range list.List("servers") {
			status[list.Str(fmt.Sprintf("servers.%d.id", i))] = list.Str(fmt.Sprintf("servers.%d.status", i))
		}
		for id, owner := range d.b.servers {
			if owner != acct.id {
				continue
			}
			st, listed := status[id]
			switch {
			case d.b.destroyed[id] && listed && st != "DESTROYING":
				t.Errorf("lost: server %s was destroyed (202) but is %s", id, st)
			case !d.b.destroyed[id] && !listed:
				t.Errorf("lost: server %s was deployed (202) but is not listed", id)
			}
		}
		tops := get(acct, "/billing/topups")
		if tops == nil {
			return
		}
		tstatus := map[string]string{}
		for i := range tops.List("topups") {
			tstatus[tops.Str(fmt.Sprintf("topups.%d.id", i))] = tops.Str(fmt.Sprintf("topups.%d.status", i))
		}
		for id, owner := range d.b.topups {
			if owner != acct.id {
				continue
			}
			if st, ok := tstatus[id]; !ok {
				t.Errorf("lost: top-up %s was created (201) but is not listed", id)
			} else if d.b.paid[id] && st != "PAID" {
				t.Errorf("lost: top-up %s was paid (200) but is %s", id, st)
			}
		}
		bks := get(acct, "/backups")
		if bks == nil {
			return
		}
		listed := map[string]bool{}
		for i := range bks.List("backups") {
			listed[bks.Str(fmt.Sprintf("backups.%d.id", i))] = true
		}
		for id, b := range d.b.backups {
			if b.account == acct.id && !listed[id] && now.Before(b.expires) {
				t.Errorf("lost: backup %s was accepted (202), expires %s, but is not listed", id, b.expires)
			}
		}
		d.ledgerFold(acct, get)
	}
}

// ledgerFold checks that the balance is the sum of the ledger, and that no
// top-up was credited twice. Background billing may post between the reads
// (the sandbox clock follows wall time): a fold is checked only between two
// equal balances.
func (d *driver) ledgerFold(acct *account, get func(*account, string) *apiclient.Answer) {
	t := d.t
	for attempt := 0; ; attempt++ {
		b1 := get(acct, "/billing")
		if b1 == nil {
			return
		}
		sum := zero()
		credits := map[string]int{}
		newest := ""
		for cursor := ""; ; {
			path := "/billing/ledger?limit=100"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			l := get(acct, path)
			if l == nil {
				return
			}
			var page struct {
				Transactions []struct {
					Type, Amount, BalanceAfter, TopupID string
				} `json:"transactions"`
				NextCursor *string `json:"nextCursor"`
			}
			if err := json.Unmarshal(l.Raw, &page); err != nil {
				t.Errorf("ledger: %v", err)
				return
			}
			for _, tx := range page.Transactions {
				if newest == "" {
					newest = tx.BalanceAfter
				}
				sum = add(t, sum, tx.Amount)
				if tx.Type == "topup" {
					credits[tx.TopupID]++
				}
			}
			if page.NextCursor == nil {
				break
			}
			cursor = *page.NextCursor
		}
		b2 := get(acct, "/billing")
		if b2 == nil {
			return
		}
		if b1.Str("balance") != b2.Str("balance") && attempt < 5 {
			continue
		}
		if bal := b2.Str("balance"); cmp(t, sum, bal) != 0 || cmp(t, add(t, zero(), newest), bal) != 0 {
			t.Errorf("%s: balance %s, the ledger sums to %s (newest balanceAfter %s)", acct.email, bal, sum, newest)
		}
		for id, n := range credits {
			if n > 1 {
				t.Errorf("doubled: top-up %s credited %d times in %s's ledger", id, n, acct.email)
			}
		}
		for id, owner := range d.b.topups {
			if owner == acct.id && d.b.paid[id] && credits[id] != 1 {
				t.Errorf("lost: top-up %s was paid but credited %d times", id, credits[id])
			}
		}
		return
	}
}

// load runs workers agents and the clock until stop, then waits for them.
func (d *driver) load(rng *rand.Rand, mine [][]*account, stop chan struct{}) {
	var wg sync.WaitGroup
	for w := range mine {
		r := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
		wg.Go(func() { d.worker(r, &mine[w], w, stop) })
	}
	r := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	wg.Go(func() {
		if d.noClock {
			return
		}
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(50+r.IntN(100)) * time.Millisecond):
			}
			if d.p.Killed() || d.t.Failed() {
				return
			}
			d.b.mu.Lock()
			var acct *account
			for _, a := range d.b.accounts {
				acct = a
				break
			}
			d.b.mu.Unlock()
			if acct != nil {
				d.advance(acct, 30+r.IntN(570))
			}
		}
	})
	wg.Wait()
}

func (d *driver) figures() string {
	d.b.mu.Lock()
	defer d.b.mu.Unlock()
	return fmt.Sprintf("%d accounts, %d servers (%d destroyed), %d top-ups (%d paid), %d backups; "+
		"%d writes acknowledged, %d refused %v, %d cut by a kill, %d reads",
		len(d.b.accounts), len(d.b.servers), len(d.b.destroyed), len(d.b.topups), len(d.b.paid), len(d.b.backups),
		d.b.writes.Load(), d.b.rejected.Load(), d.b.refusals, d.b.cut.Load(), d.b.reads.Load())
}
