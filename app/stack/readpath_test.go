package stack_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
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

// countingStore counts the calls made to the event store.
type countingStore struct {
	eventstore.Store
	calls atomic.Int64
}

func (s *countingStore) Append(ctx context.Context, stream string, expected int64, events []eventstore.Proposed) (eventstore.AppendResult, error) {
	s.calls.Add(1)
	return s.Store.Append(ctx, stream, expected, events)
}

func (s *countingStore) ReadStream(ctx context.Context, stream string, from uint64) ([]eventstore.Event, error) {
	s.calls.Add(1)
	return s.Store.ReadStream(ctx, stream, from)
}

func (s *countingStore) ReadAll(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	s.calls.Add(1)
	return s.Store.ReadAll(ctx, from, limit)
}

func (s *countingStore) Subscribe(ctx context.Context, from eventstore.Position, fn func([]eventstore.Event) error) error {
	s.calls.Add(1)
	return s.Store.Subscribe(ctx, from, fn)
}

func (s *countingStore) Head(ctx context.Context) (eventstore.Position, error) {
	s.calls.Add(1)
	return s.Store.Head(ctx)
}

// TestAuthenticatedReadsNeverTouchTheEventStore: a GET, authenticated with a
// token or an API key, with or without X-Log-Position, is answered from the
// read model (and the credentials it verified) alone.
func TestAuthenticatedReadsNeverTouchTheEventStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	store := &countingStore{Store: raw}
	st, err := stack.New(ctx, stack.Config{Store: store, Model: memory.New(store), Hasher: app.NewHasher(2),
		SandboxCloud: filepath.Join(dir, "cloud.json"), SandboxCloudOptions: sandbox.CloudOptions{ProvisionDelay: time.Minute},
		ManualWork: true, App: app.Config{SignupCredit: domain.MustMoney("10.00"), ServerLimit: 10},
		API: api.Config{JWTSecret: []byte("0123456789abcdef0123456789abcdef")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stop := st.Start()
	defer stop()
	<-st.CredentialsImported()
	hs := httptest.NewServer(st.API)
	defer hs.Close()
	c := client{t: t, url: hs.URL}

	code, body := c.do("POST", "/auth/register", "", map[string]string{"email": "reader@example.com", "password": "correct horse battery"})
	if code != 201 {
		t.Fatalf("register: %d %s", code, body)
	}
	token := field(t, body, "accessToken")
	code, body = c.do("POST", "/servers", token, map[string]string{"label": "read", "planId": "vc2-1c-1gb", "regionId": "ams"})
	if code != 202 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	server := field(t, body, "server", "id")
	code, body = c.do("POST", "/auth/api-keys", token, map[string]string{"name": "reader"})
	if code != 201 {
		t.Fatalf("api key: %d %s", code, body)
	}
	key := field(t, body, "key")
	// A position a write answered, for the read-your-writes header.
	head, err := raw.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}

	before := store.calls.Load()
	for _, cred := range []string{token, key} {
		for _, path := range []string{"/servers/" + server, "/servers", "/billing", "/auth/me", "/auth/api-keys"} {
			for _, pos := range []string{"", head.String()} {
				r, _ := http.NewRequest("GET", hs.URL+path, nil)
				r.Header.Set("Authorization", "Bearer "+cred)
				if pos != "" {
					r.Header.Set("X-Log-Position", pos)
				}
				resp, err := http.DefaultClient.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("GET %s: %d", path, resp.StatusCode)
				}
			}
		}
	}
	if n := store.calls.Load() - before; n != 0 {
		t.Fatalf("the reads made %d calls to the event store", n)
	}
}

// field is the string at a path of a JSON object.
func field(t *testing.T, body string, path ...string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	s, _ := v.(string)
	if s == "" {
		t.Fatalf("no %v in %s", path, body)
	}
	return s
}
