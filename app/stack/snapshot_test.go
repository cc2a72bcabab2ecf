package stack_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// logBuffer is a log the test reads.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// snapStack is a stack on store whose in-memory read model keeps its
// snapshot at path ("" none), and its log.
func snapStack(t *testing.T, store eventstore.Store, dir, path string) (*stack.Stack, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	st, err := stack.New(context.Background(), stack.Config{Store: store, Model: memory.New(), Hasher: app.NewHasher(2),
		Log: slog.New(slog.NewTextHandler(lb, nil)), ReadSnapshot: path,
		SandboxCloud: filepath.Join(dir, "cloud.json"), SandboxCloudOptions: sandbox.CloudOptions{ProvisionDelay: time.Minute},
		ManualWork: true, App: app.Config{SignupCredit: domain.MustMoney("10.00"), ServerLimit: 10},
		API: api.Config{JWTSecret: []byte("0123456789abcdef0123456789abcdef")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st, lb
}

// register registers an account with a server through st's API, and
// returns a token and the server's id.
func register(t *testing.T, st *stack.Stack, email string) (token, server string) {
	t.Helper()
	hs := httptest.NewServer(st.API)
	defer hs.Close()
	c := client{t: t, url: hs.URL}
	code, body := c.do("POST", "/auth/register", "", map[string]string{"email": email, "password": "correct horse battery"})
	if code != 201 {
		t.Fatalf("register: %d %s", code, body)
	}
	token = field(t, body, "accessToken")
	code, body = c.do("POST", "/servers", token, map[string]string{"label": "snap", "planId": "vc2-1c-1gb", "regionId": "ams"})
	if code != 202 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	return token, field(t, body, "server", "id")
}

// sees checks that st serves the server to the token's account.
func sees(t *testing.T, st *stack.Stack, token, server string) {
	t.Helper()
	hs := httptest.NewServer(st.API)
	defer hs.Close()
	c := client{t: t, url: hs.URL}
	if code, body := c.do("GET", "/servers/"+server, token, nil); code != 200 {
		t.Fatalf("GET /servers/%s: %d %s", server, code, body)
	}
	if code, body := c.do("GET", "/billing", token, nil); code != 200 {
		t.Fatalf("GET /billing: %d %s", code, body)
	}
}

// upToHead checks that st's projector has applied the whole log.
func upToHead(t *testing.T, st *stack.Stack, store eventstore.Store) {
	t.Helper()
	head, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Projector.Applied(); got != head {
		t.Fatalf("applied up to %s, the log is at %s", got, head)
	}
}

// TestReadSnapshotAcrossRestarts: a stack stopped cleanly leaves its read
// model's snapshot; the next start loads it and folds the log after it
// (written meanwhile by a process without the snapshot); a damaged one is
// not used, and the start replays the log instead.
func TestReadSnapshotAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	path := filepath.Join(dir, "read-model.snap")

	first, lb := snapStack(t, store, dir, path)
	if !strings.Contains(lb.String(), "no read-model snapshot") {
		t.Fatalf("log: %s", lb)
	}
	stop := first.Start()
	tokenA, serverA := register(t, first, "a@example.com")
	stop()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no snapshot after a clean stop: %v\n%s", err, lb)
	}
	_ = first.Close()

	// Started again on the same log: the snapshot is the whole of it.
	again, lb := snapStack(t, store, dir, path)
	if !strings.Contains(lb.String(), "read models loaded from their snapshot") {
		t.Fatalf("the snapshot was not loaded: %s", lb)
	}
	upToHead(t, again, store)
	sees(t, again, tokenA, serverA)
	_ = again.Close()

	// Another process, without the snapshot, writes on.
	other, _ := snapStack(t, store, dir, "")
	stop = other.Start()
	tokenB, serverB := register(t, other, "b@example.com")
	stop()
	_ = other.Close()

	third, lb := snapStack(t, store, dir, path)
	if !strings.Contains(lb.String(), "read models loaded from their snapshot") {
		t.Fatalf("the snapshot was not loaded: %s", lb)
	}
	upToHead(t, third, store)
	sees(t, third, tokenA, serverA)
	sees(t, third, tokenB, serverB)
	_ = third.Close()

	if err := os.WriteFile(path, []byte("not a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	fourth, lb := snapStack(t, store, dir, path)
	if !strings.Contains(lb.String(), "read-model snapshot not used") {
		t.Fatalf("a damaged snapshot: %s", lb)
	}
	sees(t, fourth, tokenA, serverA)
	sees(t, fourth, tokenB, serverB)
}
