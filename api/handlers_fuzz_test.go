package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	appstack "github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections/memory"
)

// fuzzStack is one in-process stack per run of FuzzRequest (each fuzz
// worker is a process of its own), wired by app/stack like `cryptovps serve`, with
// the background work left to clock advances so that nothing but the
// request under test writes to the log.
type fuzzStack struct {
	handler http.Handler
	store   *bbolt.Store
	admin   string
	token   string // of a funded account
	server  string // one of its servers
	backup  string // a backup of it
	topup   string // one of its top-ups, unpaid
}

// newFuzzStack builds the stack of f, stopped and deleted when f ends.
func newFuzzStack(f *testing.F) (*fuzzStack, error) {
	dir := f.TempDir()
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		return nil, err
	}
	f.Cleanup(func() { _ = store.Close() })
	const admin = "fuzz-operator-token-0123456789"
	st, err := appstack.New(context.Background(), appstack.Config{Store: store, Model: memory.New(store),
		Log: slog.New(slog.DiscardHandler), Hasher: app.NewHasher(2), SandboxCloud: filepath.Join(dir, "cloud.json"),
		ManualWork: true,
		App:        app.Config{SignupCredit: domain.MustMoney("10.00"), ServerLimit: 1000},
		API: api.Config{JWTSecret: []byte("0123456789abcdef0123456789abcdef"), TokenTTL: 100000 * time.Hour,
			AdminToken: admin, Snapshots: store, AccountRate: 1 << 30, AuthRate: 1 << 30}})
	if err != nil {
		return nil, err
	}
	stop := st.Start() // projector and clock
	f.Cleanup(func() {
		stop()
		_ = st.Close()
	})
	s := &fuzzStack{handler: st.API, store: store, admin: admin}
	call := func(method, path, token string, body any) (map[string]any, error) {
		b, _ := json.Marshal(body)
		rec := s.serve(method, path, token, b, nil)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code >= 300 {
			return nil, &setupError{method + " " + path + ": " + rec.Body.String()}
		}
		return out, nil
	}
	reg, err := call(http.MethodPost, "/auth/register", "", map[string]string{"email": "fuzz@example.com", "password": "correct horse battery"})
	if err != nil {
		return nil, err
	}
	s.token = reg["accessToken"].(string)
	dep, err := call(http.MethodPost, "/servers", s.token, map[string]string{"label": "fuzz", "planId": "vc2-1c-1gb", "regionId": "ams"})
	if err != nil {
		return nil, err
	}
	s.server = dep["server"].(map[string]any)["id"].(string)
	if _, err := call(http.MethodPost, "/sandbox/clock/advance", s.token, map[string]int{"seconds": 120}); err != nil {
		return nil, err
	}
	bk, err := call(http.MethodPost, "/backups", s.token, map[string]string{"serverId": s.server})
	if err != nil {
		return nil, err
	}
	s.backup = bk["backup"].(map[string]any)["id"].(string)
	if _, err := call(http.MethodPost, "/sandbox/clock/advance", s.token, map[string]int{"seconds": 600}); err != nil {
		return nil, err
	}
	tp, err := call(http.MethodPost, "/billing/topups", s.token, map[string]string{"amount": "100.00", "currency": "BTC"})
	if err != nil {
		return nil, err
	}
	if _, err := call(http.MethodPost, "/sandbox/topups/"+tp["topup"].(map[string]any)["id"].(string)+"/pay", s.token, nil); err != nil {
		return nil, err
	}
	tp, err = call(http.MethodPost, "/billing/topups", s.token, map[string]string{"amount": "5.00", "currency": "BTC"})
	if err != nil {
		return nil, err
	}
	s.topup = tp["topup"].(map[string]any)["id"].(string)
	return s, nil
}

type setupError struct{ s string }

func (e *setupError) Error() string { return "fuzz stack setup: " + e.s }

func (s *fuzzStack) serve(method, path, token string, body []byte, header http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec
}

// The write routes with a JSON body, by index (the fuzzer picks one).
var fuzzRoutes = []struct {
	method, path string
	// as: "" a customer, "admin" the operator, "none" no token.
	as string
}{
	{http.MethodPost, "/auth/register", "none"},
	{http.MethodPost, "/auth/login", "none"},
	{http.MethodPost, "/servers", ""},
	{http.MethodPost, "/servers/bulk", ""},
	{http.MethodPost, "/billing/topups", ""},
	{http.MethodPost, "/backups", ""},
	{http.MethodPost, "/backups/{backup}/restore", ""},
	{http.MethodPost, "/sandbox/clock/advance", ""},
	{http.MethodPost, "/sandbox/topups/{topup}/pay", ""},
	{http.MethodPost, "/admin/accounts/fuzz@example.com/suspend", "admin"},
	{http.MethodPost, "/admin/accounts/fuzz@example.com/unsuspend", "admin"},
	{http.MethodPost, "/admin/accounts/fuzz@example.com/limit", "admin"},
}

// FuzzRequest sends any JSON body (and Idempotency-Key) to every write
// route of the real handler stack: never a 5xx or a panic (the API turns a
// panic into a 500), and a 4xx changes nothing in the log.
func FuzzRequest(f *testing.F) {
	seeds := map[int][]string{
		0:  {`{"email":"new@example.com","password":"correct horse battery"}`, `{"email":"x","password":""}`, `{"email":1}`, `[]`, `{"email":"a@b.c","password":"` + string(bytes.Repeat([]byte("p"), 300)) + `"}`},
		1:  {`{"email":"fuzz@example.com","password":"correct horse battery"}`, `{"email":"fuzz@example.com","password":"wrong"}`, `{"email":null}`},
		2:  {`{"label":"web-1","planId":"vc2-1c-1gb","regionId":"ams"}`, `{"label":"","planId":"nope","regionId":"nope"}`, `{"label":"a","planId":"vc2-1c-1gb","regionId":"ams","sshKeys":["ssh-ed25519 AAAA"]}`, `{"label":"x","extra":1}`, `{"label":"x"}{}`},
		3:  {`{"label":"web","count":2,"planId":"vc2-1c-1gb","regionId":"ams"}`, `{"label":"web","count":-1}`, `{"count":1e99}`, `{"count":"2"}`},
		4:  {`{"amount":"25.00","currency":"BTC"}`, `{"amount":"1e9","currency":"BTC"}`, `{"amount":"-1","currency":"BTC"}`, `{"amount":"0.001","currency":"XMR"}`, `{"amount":25}`},
		5:  {`{"serverId":"{server}"}`, `{"serverId":"not-a-uuid"}`, `{"serverId":"00000000-0000-0000-0000-000000000000"}`, `{}`},
		6:  {``, `{}`, `{"x":1}`, `null`},
		7:  {`{"seconds":60}`, `{"seconds":0}`, `{"seconds":-1}`, `{"seconds":9223372036854775807}`, `{"seconds":1.5}`, `{"seconds":"60"}`},
		8:  {``, `{}`},
		9:  {`{"reason":"abuse"}`, `{"reason":""}`, `{}`},
		10: {`{"reason":"resolved"}`},
		11: {`{"limit":25}`, `{"limit":-1}`, `{"limit":null}`, `{"limit":100000}`, `{"limit":0}`},
	}
	for route, bodies := range seeds {
		for _, b := range bodies {
			f.Add(uint8(route), []byte(b), "")
		}
	}
	f.Add(uint8(2), []byte(`{"label":"web-1","planId":"vc2-1c-1gb","regionId":"ams"}`), "deploy-web-1")
	f.Add(uint8(2), []byte(`{"label":"web-1","planId":"vc2-1c-1gb","regionId":"ams"}`), "\xff")
	f.Add(uint8(3), []byte(`{"label":"web","count":2,"planId":"vc2-1c-1gb","regionId":"ams"}`), " spaced ")
	s, err := newFuzzStack(f)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte, key string) {
		r := fuzzRoutes[int(route)%len(fuzzRoutes)]
		path := strings.NewReplacer("{server}", s.server, "{backup}", s.backup, "{topup}", s.topup).Replace(r.path)
		body = []byte(strings.ReplaceAll(string(body), "{server}", s.server))
		token := s.token
		switch r.as {
		case "admin":
			token = s.admin
		case "none":
			token = ""
		}
		var header http.Header
		if key != "" {
			header = http.Header{"Idempotency-Key": {key}}
		}
		ctx := context.Background()
		before, err := s.store.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rec := s.serve(r.method, path, token, body, header)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q (key %q): %d %s", r.method, path, body, key, rec.Code, rec.Body)
		}
		var e struct{ Error, Code string }
		if rec.Code >= 400 {
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Code == "" {
				t.Fatalf("%s %s %q: %d is not the error shape: %s", r.method, path, body, rec.Code, rec.Body)
			}
			after, err := s.store.Head(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Fatalf("%s %s %q (key %q): %d %s, but the log moved from %s to %s", r.method, path, body, key, rec.Code, rec.Body, before, after)
			}
			return
		}
		// An operator's hold or limit would refuse every later deploy:
		// lifted at once.
		if r.as == "admin" {
			for _, undo := range []struct{ path, body string }{
				{"/admin/accounts/fuzz@example.com/unsuspend", `{"reason":"fuzz"}`},
				{"/admin/accounts/fuzz@example.com/limit", `{"limit":1000}`},
			} {
				if rec := s.serve(http.MethodPost, undo.path, s.admin, []byte(undo.body), nil); rec.Code >= 300 && rec.Code != http.StatusConflict {
					t.Fatalf("undo: %s: %d %s", undo.path, rec.Code, rec.Body)
				}
			}
		}
		if key == "" || rec.Code != http.StatusAccepted || !strings.Contains(path, "/servers") && !strings.HasSuffix(path, "/restore") {
			return
		}
		// An accepted key is in the log as it was sent.
		events, err := s.store.ReadAll(ctx, before, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			if ev.Type != (domain.IdempotencyKeyUsed{}).EventType() {
				continue
			}
			d, err := domain.DecodeEvent(ev.Type, ev.Data)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.(domain.IdempotencyKeyUsed).Key; got != key {
				t.Fatalf("Idempotency-Key %q is in the log as %q: a retry after a restart would deploy again", key, got)
			}
			return
		}
		if rec.Header().Get("Idempotent-Replayed") != "true" {
			t.Fatalf("deploy with key %q accepted, but the key is not in the log", key)
		}
	})
}
