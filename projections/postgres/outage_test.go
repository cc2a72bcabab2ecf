package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/tests/pgtest"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// readsAllUnavailable checks that every read fails promptly with an error
// wrapping ErrUnavailable.
func readsAllUnavailable(t *testing.T, m *Model, accountID string) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	for name, read := range map[string]func() error{
		"Account":      func() error { _, err := m.Account(ctx, accountID); return err },
		"Servers":      func() error { _, err := m.Servers(ctx, accountID); return err },
		"Server":       func() error { _, err := m.Server(ctx, accountID, "x"); return err },
		"Topups":       func() error { _, err := m.Topups(ctx, accountID); return err },
		"Topup":        func() error { _, err := m.Topup(ctx, accountID, "x"); return err },
		"Backups":      func() error { _, err := m.Backups(ctx, accountID, now); return err },
		"Backup":       func() error { _, err := m.Backup(ctx, accountID, "x", now); return err },
		"WorkAccounts": func() error { _, err := m.WorkAccounts(ctx); return err },
		"OpenBackups":  func() error { _, err := m.OpenBackups(ctx); return err },
		"Checkpoint":   func() error { _, err := m.Checkpoint(ctx); return err },
	} {
		start := time.Now()
		err := read()
		if !errors.Is(err, projections.ErrUnavailable) {
			t.Errorf("%s with the server down: %v, want an error wrapping ErrUnavailable", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s took %s to fail", name, d)
		}
	}
}

func TestReadsAnswerUnavailableWhilePostgresIsDownAndTheProjectionResumesExactly(t *testing.T) {
	cluster := pgtest.StartCluster(t)
	m := openModel(t, cluster.NewDatabase(t))
	log := generate(11, logSize())
	third := len(log) / 3
	store := newMemStore(log[:third])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- projections.NewProjector(store, m, quietLog()).Run(ctx) }()
	waitCheckpoint(t, m, log[third-1].Position)

	// The log keeps growing while the server goes down under the projector.
	var feeding sync.WaitGroup
	feeding.Go(func() {
		for i := third; i < 2*third; i += 25 {
			store.add(log[i:min(2*third, i+25)]...)
			time.Sleep(2 * time.Millisecond)
		}
	})
	time.Sleep(20 * time.Millisecond)
	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	accountID := universeOf(t, log[:third]).accounts[0]
	readsAllUnavailable(t, m, accountID)
	feeding.Wait()
	store.add(log[2*third:]...)
	time.Sleep(300 * time.Millisecond) // the projector retries against a server still down
	readsAllUnavailable(t, m, accountID)

	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	waitCheckpoint(t, m, log[len(log)-1].Position)
	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("projector: %v", err)
	}
	// Nothing lost, nothing applied twice: the answers of the memory model,
	// and the very rows of a clean pass.
	sameAnswers(t, memoryOf(t, log), m, universeOf(t, log))
	clean := openModel(t, cluster.NewDatabase(t))
	applyIn(t, clean, log, func() int { return 512 })
	sameDump(t, dump(t, clean), dump(t, m))
}

// process is one API process: its own read model connection pool,
// projector and service, on an event store and database shared with others.
type process struct {
	url   string
	model *Model
	proj  *projections.Projector
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

const testSecret = "0123456789abcdef0123456789abcdef"

func newProcess(t *testing.T, store eventstore.Store, dbURL string, readTimeout time.Duration) *process {
	t.Helper()
	m := openModel(t, dbURL)
	st, err := stack.New(context.Background(), stack.Config{Store: store, Model: m, Log: quietLog(),
		SandboxCloud:        filepath.Join(t.TempDir(), "cloud.json"),
		SandboxCloudOptions: sandbox.CloudOptions{ProvisionDelay: time.Minute, DestroyDelay: time.Second, BackupDelay: time.Minute},
		App:                 app.Config{SignupCredit: domain.MustMoney("10.00"), ServerLimit: 10, ReadTimeout: readTimeout},
		API:                 api.Config{JWTSecret: []byte(testSecret), AccountRate: 1e6, AuthRate: 1e6}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	p := &process{model: m, proj: st.Projector}
	srv := httptest.NewServer(st.API)
	t.Cleanup(func() {
		srv.Close()
		p.stopProjector()
	})
	p.url = srv.URL
	return p
}

func (p *process) startProjector() {
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	p.wg.Go(func() { _ = p.proj.Run(ctx) })
}

func (p *process) stopProjector() {
	if p.stop != nil {
		p.stop()
		p.wg.Wait()
		p.stop = nil
	}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func call(t *testing.T, method, url, token string, body any) answer {
	t.Helper()
	return callWith(t, method, url, token, body, nil)
}

func callWith(t *testing.T, method, url, token string, body any, header map[string]string) answer {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	a := answer{status: res.StatusCode, header: res.Header}
	_ = json.NewDecoder(res.Body).Decode(&a.body)
	return a
}

func register(t *testing.T, p *process, email string) string {
	t.Helper()
	a := call(t, "POST", p.url+"/auth/register", "", map[string]string{"email": email, "password": "correct horse battery"})
	if a.status != http.StatusCreated {
		t.Fatalf("register: %d %v", a.status, a.body)
	}
	return a.body["accessToken"].(string)
}

func openStore(t *testing.T) *bbolt.Store {
	t.Helper()
	store, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func TestAPIAnswers503WhilePostgresIsDownAndRecovers(t *testing.T) {
	cluster := pgtest.StartCluster(t)
	p := newProcess(t, openStore(t), cluster.NewDatabase(t), time.Second)
	p.startProjector()
	token := register(t, p, "outage@example.com")
	if a := call(t, "GET", p.url+"/servers", token, nil); a.status != http.StatusOK {
		t.Fatalf("GET /servers: %d %v", a.status, a.body)
	}
	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/servers", "/billing", "/billing/topups", "/backups", "/auth/me"} {
		a := call(t, "GET", p.url+path, token, nil)
		if a.status != http.StatusServiceUnavailable {
			t.Errorf("GET %s with PostgreSQL down: %d %v, want 503", path, a.status, a.body)
		}
	}
	if a := call(t, "POST", p.url+"/servers", token, map[string]string{"label": "x", "planId": "vc2-1c-1gb", "regionId": "ams"}); a.status != http.StatusServiceUnavailable {
		t.Errorf("POST /servers with PostgreSQL down: %d %v, want 503", a.status, a.body)
	}
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		a := call(t, "GET", p.url+"/billing", token, nil)
		if a.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /billing after PostgreSQL came back: %d %v", a.status, a.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a := call(t, "POST", p.url+"/servers", token, map[string]string{"label": "after", "planId": "vc2-1c-1gb", "regionId": "ams"}); a.status != http.StatusAccepted {
		t.Fatalf("deploy after the outage: %d %v", a.status, a.body)
	}
}

func serverCount(a answer) int {
	l, _ := a.body["servers"].([]any)
	return len(l)
}

func TestGetOnAnotherProcessShowsTheWriteMadeThroughTheFirst(t *testing.T) {
	cluster := pgtest.StartCluster(t)
	dbURL := cluster.NewDatabase(t)
	store := openStore(t) // stands for the shared event store (KurrentDB)
	a := newProcess(t, store, dbURL, 300*time.Millisecond)
	b := newProcess(t, store, dbURL, 5*time.Second)
	a.startProjector()
	token := register(t, a, "ryw@example.com")
	deploy := map[string]string{"label": "web", "planId": "vc2-1c-1gb", "regionId": "ams"}

	t.Run("ViaTheSharedCheckpoint", func(t *testing.T) {
		// A applied the write before answering; B's own projector is not
		// even running, yet B sees the shared database's checkpoint.
		if r := call(t, "POST", a.url+"/servers", token, deploy); r.status != http.StatusAccepted {
			t.Fatalf("deploy through A: %d %v", r.status, r.body)
		}
		if r := call(t, "GET", b.url+"/servers", token, nil); r.status != http.StatusOK || serverCount(r) != 1 {
			t.Fatalf("GET /servers through B: %d %v, want the server", r.status, r.body)
		}
	})

	t.Run("WaitingForTheProjection", func(t *testing.T) {
		// No projector runs: A's write is stored but not projected, and A
		// says so (503 read_model_lagging) after its read timeout.
		a.stopProjector()
		r := call(t, "POST", a.url+"/servers", token, deploy)
		if r.status != http.StatusServiceUnavailable || r.body["code"] != "read_model_lagging" {
			t.Fatalf("deploy through A without a projector: %d %v", r.status, r.body)
		}
		pos := r.header.Get("X-Log-Position")
		if pos == "" {
			t.Fatal("the lagging write does not say where it is (X-Log-Position)")
		}
		// The client reads through B with the position A gave it: B waits
		// for the projection to reach it instead of answering stale data,
		// without reading the event store.
		go func() {
			time.Sleep(300 * time.Millisecond)
			b.startProjector()
		}()
		start := time.Now()
		r = callWith(t, "GET", b.url+"/servers", token, nil, map[string]string{"X-Log-Position": pos})
		if r.status != http.StatusOK || serverCount(r) != 2 {
			t.Fatalf("GET /servers through B: %d %v, want both servers", r.status, r.body)
		}
		if waited := time.Since(start); waited < 250*time.Millisecond {
			t.Fatalf("B answered after %s: it cannot have waited for the projection", waited)
		}
	})
}
