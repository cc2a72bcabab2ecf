package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltcreds"
	"github.com/cryptovps/cryptovps/projections/memory"
)

// secrets are byte strings that must never be found in what leaves the
// credential store.
type secrets struct {
	what  []string
	bytes [][]byte
}

func (s *secrets) add(what string, b []byte) {
	if len(b) == 0 {
		return
	}
	s.what, s.bytes = append(s.what, what), append(s.bytes, bytes.Clone(b))
}

// addHash adds an argon2id PHC hash, its salt and key in every encoding, and
// every 8-byte window of the raw salt and key: no part of a hash may leak.
func (s *secrets) addHash(t *testing.T, hash string) {
	t.Helper()
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		t.Fatalf("not an argon2id hash: %q", hash)
	}
	s.add("hash", []byte(hash))
	for _, p := range parts[4:] {
		raw, err := base64.RawStdEncoding.DecodeString(p)
		if err != nil {
			t.Fatal(err)
		}
		s.addRaw("hash part", raw)
		s.add("hash part (base64)", []byte(p))
	}
}

// addRaw adds raw bytes: themselves, hex and base64 (standard and URL), and
// every 8-byte window.
func (s *secrets) addRaw(what string, raw []byte) {
	s.add(what, raw)
	s.add(what+" (hex)", []byte(hex.EncodeToString(raw)))
	s.add(what+" (base64)", []byte(base64.RawStdEncoding.EncodeToString(raw)))
	s.add(what+" (base64url)", []byte(base64.RawURLEncoding.EncodeToString(raw)))
	for i := 0; i+8 <= len(raw); i++ {
		s.add(what+" (8 bytes of it)", raw[i:i+8])
	}
}

// absentFrom fails t if any secret is in data, which is where.
func (s *secrets) absentFrom(t *testing.T, where string, data []byte) {
	t.Helper()
	if len(data) == 0 {
		t.Fatalf("%s is empty: nothing was checked", where)
	}
	for i, b := range s.bytes {
		if bytes.Contains(data, b) {
			t.Errorf("%s contains a %s", where, s.what[i])
		}
	}
}

// TestNoCredentialLeavesTheCredentialStore: the password hashes (and the
// passwords) are in the credential store and nowhere else: not in any event
// of the log nor its file, the operator snapshot, the ledger export, the
// audit's report, nor a copy of the log to KurrentDB.
func TestNoCredentialLeavesTheCredentialStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	creds, err := boltcreds.Open(filepath.Join(dir, "credentials.db"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := stack.New(ctx, stack.Config{Store: store, Model: memory.New(store), Credentials: creds, Log: log,
		Hasher: app.NewHasher(2), SandboxCloud: filepath.Join(dir, "sandbox-cloud.json"),
		App: app.Config{SignupCredit: domain.MustMoney("10.00"), ServerLimit: 10},
		API: api.Config{JWTSecret: []byte("0123456789abcdef0123456789abcdef"), AdminToken: serverToken,
			Snapshots: snapshotterOf(store), Log: log}})
	if err != nil {
		t.Fatal(err)
	}
	stop := st.Start()
	hs := httptest.NewServer(st.API)
	call := func(method, path, token string, body any, want int) map[string]any {
		t.Helper()
		var r io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, hs.URL+path, r)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return out
	}

	var s secrets
	type account struct{ id, email, password, token string }
	var accounts []*account
	for _, who := range []string{"ann", "bob", "cyd"} {
		a := &account{email: who + "@example.com", password: "the passphrase of " + who}
		reg := call("POST", "/auth/register", "", map[string]string{"email": a.email, "password": a.password}, 201)
		a.id = reg["user"].(map[string]any)["id"].(string)
		a.token = reg["accessToken"].(string)
		call("POST", "/auth/login", "", map[string]string{"email": a.email, "password": a.password}, 200)
		s.add("password", []byte(a.password))
		accounts = append(accounts, a)
	}
	// A password change (both hashes must stay out), and API keys, one
	// kept sealed for an Idempotency-Key retry.
	// Each account's hash, under the ref its log names.
	accountsOf := app.NewAccounts(store, app.WallClock{})
	hashOf := func(id string) string {
		t.Helper()
		cur, err := accountsOf.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		hash, err := creds.Password(ctx, cur.State.CredentialRef)
		if err != nil {
			t.Fatal(err)
		}
		return hash
	}
	ann := accounts[0]
	before := hashOf(ann.id)
	s.addHash(t, before)
	changed := call("POST", "/auth/password", ann.token, map[string]string{"currentPassword": ann.password,
		"newPassword": "ann's second passphrase"}, 200)
	ann.password, ann.token = "ann's second passphrase", changed["accessToken"].(string)
	s.add("password", []byte(ann.password))
	for i, a := range accounts {
		s.addHash(t, hashOf(a.id))
		for j := range 2 {
			req, _ := json.Marshal(map[string]string{"name": "agent"})
			hr, _ := http.NewRequest("POST", hs.URL+"/auth/api-keys", bytes.NewReader(req))
			hr.Header.Set("Authorization", "Bearer "+a.token)
			hr.Header.Set("Idempotency-Key", strings.Repeat("k", i+j+1))
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Key    string `json:"key"`
				APIKey struct {
					ID string `json:"id"`
				} `json:"apiKey"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 201 {
				t.Fatalf("create an API key: %d %v", resp.StatusCode, err)
			}
			call("GET", "/auth/me", out.Key, nil, 200)
			s.add("API key", []byte(out.Key))
			s.addRaw("API key hash", app.HashAPIKey(out.Key))
			rec, err := creds.APIKey(ctx, a.id, out.APIKey.ID)
			if err != nil || rec.Sealed == "" {
				t.Fatalf("the key's record: %+v %v", rec, err)
			}
			s.add("sealed API key", []byte(rec.Sealed))
		}
	}

	// The operator snapshot, taken while the server runs.
	req, _ := http.NewRequest("GET", hs.URL+"/admin/eventstore/snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+serverToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	snapshot, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("snapshot: %d", resp.StatusCode)
	}
	s.absentFrom(t, "the operator snapshot", snapshot)

	hs.Close()
	stop()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Every event, as the log hands it out.
	events, err := store.ReadAll(ctx, eventstore.Position{}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var all bytes.Buffer
	for _, e := range events {
		meta, _ := json.Marshal(e.Meta)
		all.WriteString(e.ID.String() + e.Stream + e.Type)
		all.Write(e.Data)
		all.Write(meta)
	}
	s.absentFrom(t, "the events of the log", all.Bytes())
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	if err := creds.Close(); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.absentFrom(t, "the log's file", file)
	// The control: the credential store's own file has them, so the search
	// above finds what it looks for.
	own, err := os.ReadFile(filepath.Join(dir, "credentials.db"))
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for i, b := range s.bytes {
		if bytes.Contains(own, b) {
			found[s.what[i]] = true
		}
	}
	if !found["hash"] || !found["API key hash"] || !found["sealed API key"] {
		t.Fatalf("the credential store's file lacks what it holds (%v): the search is broken", found)
	}

	for _, args := range [][]string{
		{"audit", "--data-dir", dir},
		{"ledger", "export", "--data-dir", dir},
		{"ledger", "export", "--data-dir", dir, "--format", "jsonl"},
		{"replay", "--data-dir", dir, "--account", accounts[0].id, "--explain"},
	} {
		out, errOut, err := toolRun(t, args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut)
		}
		s.absentFrom(t, strings.Join(args[:2], " ")+" output", []byte(out+errOut))
	}

	// A copy of the log to KurrentDB.
	srv := startTarget(t)
	if _, err := runCopy(t, dir, srv.URL()); err != nil {
		t.Fatal(err)
	}
	copied, err := target(t, srv).ReadAll(ctx, eventstore.Position{}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	all.Reset()
	for _, e := range copied {
		meta, _ := json.Marshal(e.Meta)
		all.Write(e.Data)
		all.Write(meta)
	}
	if len(copied) != len(events) {
		t.Fatalf("copied %d of %d events", len(copied), len(events))
	}
	s.absentFrom(t, "the copy in KurrentDB", all.Bytes())
}

// TestJWTSecretPreviousFromFlagOrEnvironment: the rotation's previous secret
// is a flag like the others, with its CRYPTOVPS_ variable.
func TestJWTSecretPreviousFromFlagOrEnvironment(t *testing.T) {
	if c := parsedConfig(t, "--jwt-secret-previous", "before"); c.JWTSecretPrevious != "before" {
		t.Errorf("flag: %q", c.JWTSecretPrevious)
	}
	t.Setenv("CRYPTOVPS_JWT_SECRET_PREVIOUS", "from-env")
	if c := parsedConfig(t); c.JWTSecretPrevious != "from-env" {
		t.Errorf("environment: %q", c.JWTSecretPrevious)
	}
}
