package main

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/upstream/btcpay/btcpayfake"
	"github.com/cryptovps/cryptovps/upstream/vultr/vultrfake"
)

func serveConfig(t *testing.T, env map[string]string, args ...string) config {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var cfg config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.flags(fs)
	if err := parse(fs, args); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Production mode refuses to start, before opening anything, without a key
// or with one Vultr rejects, and says which.
func TestServeOnVultrFailsFastOnAMissingOrRejectedKey(t *testing.T) {
	fake := vultrfake.New(t, vultrfake.Options{APIKey: "the-right-key"})
	for _, tc := range []struct {
		name, key, want string
	}{
		{"missing", "", "VULTR_API_KEY"},
		{"rejected", "a-wrong-key", "rejected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := serveConfig(t, map[string]string{"VULTR_API_KEY": tc.key, "CRYPTOVPS_CLOUD": "vultr"},
				"--addr", "127.0.0.1:0", "--data-dir", dir, "--vultr-url", fake.URL, "--unsafe-sandbox-payments",
				"--base-url", "https://api.example.com")
			var logs syncBuffer
			err := serveWith(context.Background(), cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("serve: %v, want a failure naming %q", err, tc.want)
			}
			if tc.key != "" && strings.Contains(err.Error()+logs.String(), tc.key) {
				t.Fatal("the key is in the error or the log")
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "events.db")); len(m) > 0 {
				t.Error("the event store was opened before the key was checked")
			}
		})
	}
}

// A data dir written in the sandbox is never served against the real
// cloud: the mode is in the log.
func TestServeRefusesADataDirOfAnotherMode(t *testing.T) {
	fake := vultrfake.New(t, vultrfake.Options{APIKey: "k"})
	dir := t.TempDir()
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sandbox := domain.Mode{Cloud: domain.UpstreamSandbox, Payments: domain.UpstreamSandbox}
	if err := app.CheckMode(context.Background(), store, app.WallClock{}, sandbox); err != nil {
		t.Fatal(err)
	}
	store.Close()
	cfg := serveConfig(t, map[string]string{"VULTR_API_KEY": "k"},
		"--addr", "127.0.0.1:0", "--data-dir", dir, "--cloud", "vultr", "--vultr-url", fake.URL, "--unsafe-sandbox-payments",
		"--base-url", "https://api.example.com")
	err = serveWith(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "refusing to start") || !strings.Contains(err.Error(), "cloud=sandbox") {
		t.Fatalf("serve on a sandbox data dir in vultr mode: %v", err)
	}
}

// In production mode (Vultr and BTCPay) the sandbox routes do not exist,
// new accounts get no credit, and the start-up log names the mode and the
// upstreams.
func TestServeOnVultrIsNotASandbox(t *testing.T) {
	fake := vultrfake.New(t, vultrfake.Options{APIKey: "k"})
	store := btcpayfake.New(t, btcpayfake.Options{})
	o := store.Options()
	cfg := serveConfig(t, map[string]string{"VULTR_API_KEY": "k", "BTCPAY_URL": store.URL(), "BTCPAY_API_KEY": o.APIKey,
		"BTCPAY_STORE_ID": o.StoreID, "BTCPAY_WEBHOOK_SECRET": o.WebhookSecret},
		"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--cloud", "vultr",
		"--vultr-url", fake.URL, "--payments", "btcpay", "--auth-rate-limit", "1000", "--base-url", "https://api.example.com")
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveWith(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	addrRE := regexp.MustCompile(`msg=listening addr=(\S+)`)
	var base string
	for deadline := time.Now().Add(20 * time.Second); base == ""; {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			base = "http://" + m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", logs.String())
		} else {
			time.Sleep(20 * time.Millisecond) // waiting for a listener: nothing to subscribe to
		}
	}
	if l := logs.String(); !strings.Contains(l, "PRODUCTION MODE") || !strings.Contains(l, "cloud=vultr") || strings.Contains(l, "SANDBOX") {
		t.Errorf("start-up log does not say production on vultr:\n%s", l)
	}
	resp, err := http.Post(base+"/auth/register", "application/json",
		strings.NewReader(`{"email":"prod@example.com","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		AccessToken string `json:"accessToken"`
		User        struct {
			Balance string `json:"balance"`
		} `json:"user"`
	}
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || reg.User.Balance != "0.00" {
		t.Fatalf("register: %d, balance %q: want 201 and no signup credit", resp.StatusCode, reg.User.Balance)
	}
	for _, path := range []string{"/sandbox/clock/advance", "/sandbox/topups/" + "6f1c2b1e-0000-4000-8000-000000000001" + "/pay"} {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(`{"seconds":60}`))
		req.Header.Set("Authorization", "Bearer "+reg.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404 in production", path, r.StatusCode)
		}
	}
	r, err := http.Get(base + "/llms.txt")
	if err != nil {
		t.Fatal(err)
	}
	guide, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if g := string(guide); strings.Contains(g, "SANDBOX MODE") || !strings.Contains(g, "Vultr os_id 2284") {
		t.Errorf("/llms.txt in production: says sandbox or lacks the image")
	}
	if g := string(guide); !strings.Contains(g, "Base URL: https://api.example.com") {
		t.Errorf("/llms.txt in production does not print --base-url")
	}
	// Production has an operator listener: the public one knows no /admin.
	for _, path := range []string{"/admin/topups/review", "/metrics"} {
		r, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s on the public listener in production: %d, want 404", path, r.StatusCode)
		}
	}
	if !strings.Contains(logs.String(), `msg="operator listening" addr=127.0.0.1:`) {
		t.Errorf("no loopback operator listener in the start-up log:\n%s", logs.String())
	}
}

// Production needs its public base URL: the guides print it, and nothing
// else may stand in for it (the request's Host header is the client's).
func TestServeInProductionNeedsABaseURL(t *testing.T) {
	fake := vultrfake.New(t, vultrfake.Options{APIKey: "k"})
	dir := t.TempDir()
	for _, tc := range []struct{ base, want string }{
		{"", "--base-url is required in production"},
		{"http://api.example.com", "https"},
		{"https://api.example.com/?x=1", "without credentials, query or fragment"},
	} {
		args := []string{"--addr", "127.0.0.1:0", "--data-dir", dir, "--cloud", "vultr", "--vultr-url", fake.URL,
			"--unsafe-sandbox-payments"}
		if tc.base != "" {
			args = append(args, "--base-url", tc.base)
		}
		cfg := serveConfig(t, map[string]string{"VULTR_API_KEY": "k"}, args...)
		err := serveWith(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--base-url %q: %v, want an error saying %q", tc.base, err, tc.want)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) > 0 {
		t.Errorf("a refused start wrote %v", m)
	}
}
