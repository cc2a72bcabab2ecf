package postgres

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/tests/pgtest"
)

// TestReadyzFollowsPostgres: while the read model's PostgreSQL is down the
// process says it cannot serve (503, naming the read model) and its
// metrics say the model is not up; back up, it is ready again.
func TestReadyzFollowsPostgres(t *testing.T) {
	cluster := pgtest.StartCluster(t)
	m := openModel(t, cluster.NewDatabase(t))
	store, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	const token = "operator-token-for-readyz"
	st, err := stack.New(context.Background(), stack.Config{Store: store, Model: m, Log: quietLog(),
		SandboxCloud: filepath.Join(t.TempDir(), "cloud.json"), ManualWork: true,
		API: api.Config{JWTSecret: []byte(testSecret), AdminToken: token}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stop := st.Start()
	defer stop()
	srv := httptest.NewServer(st.API)
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// eventually waits for a condition that depends on PostgreSQL coming
	// back (its pool reconnecting), with a generous deadline.
	eventually := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("readyz with PostgreSQL up: %d %s", code, body)
	}
	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	code, body := get("/readyz")
	if code != 503 || !strings.Contains(body, "the read model is unreachable") {
		t.Errorf("readyz with PostgreSQL down: %d %s", code, body)
	}
	if _, body := get("/metrics"); !strings.Contains(body, `cryptovps_read_model_up{read_model="postgres"} 0`) {
		t.Errorf("metrics with PostgreSQL down say the model is up:\n%s", body)
	}
	if err := cluster.Start(); err != nil {
		t.Fatal(err)
	}
	eventually("readyz once PostgreSQL is back", func() bool { code, _ := get("/readyz"); return code == 200 })
	if _, body := get("/metrics"); !strings.Contains(body, `cryptovps_read_model_up{read_model="postgres"} 1`) ||
		!strings.Contains(body, `cryptovps_negative_balances{read_model="postgres"} 0`) {
		t.Errorf("metrics with PostgreSQL back:\n%s", body)
	}
}
