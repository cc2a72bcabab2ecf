package stack_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections/memory"
)

// One request appends a bounded number of events: a command that would
// record more (here a DELETE that would first settle ten hours of two
// servers the biller has not charged) is refused with 503 busy and changes
// nothing; once the background work has caught up, the same request goes
// through.
func TestARequestOverItsEventBoundChangesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	st, err := stack.New(ctx, stack.Config{Store: store, Model: memory.New(store), SandboxCloud: filepath.Join(dir, "cloud.json"),
		ManualWork: true, App: app.Config{SignupCredit: domain.MustMoney("10.00"), ServerLimit: 10},
		API: api.Config{JWTSecret: []byte("secret"), AdminToken: operator, TokenTTL: 100 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stop := st.Start()
	defer stop()
	hs := httptest.NewServer(st.API)
	defer hs.Close()
	c := client{t: t, url: hs.URL}

	code, body := c.do("POST", "/auth/register", "", map[string]string{"email": "b@example.com", "password": "correct horse battery"})
	if code != 201 {
		t.Fatalf("register: %d %s", code, body)
	}
	var reg struct{ AccessToken string }
	_ = json.Unmarshal([]byte(body), &reg)
	code, body = c.do("POST", "/servers/bulk", reg.AccessToken, map[string]any{"label": "b", "count": 2, "planId": "vc2-1c-1gb", "regionId": "ams"})
	if code != 202 {
		t.Fatalf("deploy: %d %s", code, body)
	}
	var bulk struct{ Servers []struct{ ID string } }
	_ = json.Unmarshal([]byte(body), &bulk)

	// Ten hours pass with the background work stopped: 20 charges are due,
	// more than the 8 + 4 per live server one command may record.
	st.SandboxClock.SetOffset(10*time.Hour + time.Minute)
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, billing := c.do("GET", "/billing", reg.AccessToken, nil)
	for _, req := range []struct{ method, path, count string }{
		{"DELETE", "/servers/" + bulk.Servers[0].ID, "21 events, over the 16"}, // 20 charges, the destroy
		{"POST", "/servers", "22 events, over the 18"},                         // 20 charges, the server, its first hour
	} {
		code, body := c.do(req.method, req.path, reg.AccessToken, map[string]string{"label": "c", "planId": "vc2-1c-1gb", "regionId": "ams"})
		if code != 503 || !strings.Contains(body, `"code":"busy"`) || !strings.Contains(body, req.count) {
			t.Errorf("%s %s over the bound: %d %s, want 503 busy naming the count", req.method, req.path, code, body)
		}
	}
	if now, err := store.Head(ctx); err != nil || now != head {
		t.Fatalf("the log moved from %s to %s (%v)", head, now, err)
	}
	if _, now := c.do("GET", "/billing", reg.AccessToken, nil); now != billing {
		t.Errorf("billing changed: %s, then %s", billing, now)
	}

	// The biller is not a request: it settles the backlog at once. Then
	// the DELETE is a request of ordinary size again.
	if err := st.Worker.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := c.do("DELETE", "/servers/"+bulk.Servers[0].ID, reg.AccessToken, nil); code != 202 {
		t.Errorf("DELETE once the biller caught up: %d %s", code, body)
	}
}
