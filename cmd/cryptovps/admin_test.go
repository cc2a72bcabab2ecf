package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

func TestOperatorTokenStrength(t *testing.T) {
	t.Parallel()
	good := []string{
		"3f9c2a7be1d04c58a6f3e2b19d7c4a05e8b6f1d2c3a4958677a1b2c3d4e5f6a7", // openssl rand -hex 32
		"3F9C2A7BE1D04C58A6F3E2B19D7C4A05E8B6F1D2C3A4958677A1B2C3D4E5F6A7",
		"q8Jx2vN0r5LmT7cB1wZ9yK4hD3sF6gP0aE2uI5oR8tY", // openssl rand -base64 32, 43 characters
		"q8Jx-vN0r5Lm_7cB1wZ9yK4hD3sF6gP0aE2uI5oR8tY=",
	}
	for _, tok := range good {
		if err := checkOperatorToken("--admin-token", tok); err != nil {
			t.Errorf("%q refused: %v", tok, err)
		}
	}
	bad := map[string]string{
		"":                                    "at most 0 bits",
		"operator-token-of-the-server":        "bits",
		"3f9c2a7be1d04c58a6f3e2b19d7c4a05":    "bits", // 16 bytes of hex
		strings.Repeat("a", 64):               "distinct",
		strings.Repeat("0123456789abcdef", 4): "repeats a shorter block",
		strings.Repeat("0123456789abcdefghijklmnop", 3):                            "repeats a shorter block",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa0123456789bcdefghijklm": "quarter",
		" 3f9c2a7be1d04c58a6f3e2b19d7c4a05e8b6f1d2c3a4958677a1b2c3d4e5f6a7":        "printable",
	}
	for tok, want := range bad {
		err := checkOperatorToken("--admin-token", tok)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "openssl rand -hex 32") {
			t.Errorf("%q: %v, want a refusal saying %q and how to generate one", tok, err, want)
		}
	}
}

func TestAdminListenerDefaults(t *testing.T) {
	t.Parallel()
	sandbox := domain.Mode{Cloud: domain.UpstreamSandbox, Payments: domain.UpstreamSandbox}
	for _, tc := range []struct {
		mode      domain.Mode
		addr, got string
	}{
		{sandbox, "", ""},
		{sandbox, "127.0.0.1:9001", "127.0.0.1:9001"},
		{domain.Mode{Cloud: domain.UpstreamVultr, Payments: domain.UpstreamBTCPay}, "", "127.0.0.1:8081"},
		{domain.Mode{Cloud: domain.UpstreamSandbox, Payments: domain.UpstreamBTCPay}, "", "127.0.0.1:8081"},
		{domain.Mode{Cloud: domain.UpstreamVultr, Payments: domain.UpstreamSandbox}, "[::1]:9001", "[::1]:9001"},
	} {
		c := config{Addr: ":8080", AdminAddr: tc.addr}
		got, err := c.adminListen(tc.mode)
		if err != nil || got != tc.got {
			t.Errorf("%s --admin-addr %q: %q %v, want %q", tc.mode, tc.addr, got, err, tc.got)
		}
	}
	for _, addr := range []string{"8081", ":8080"} {
		c := config{Addr: ":8080", AdminAddr: addr}
		if _, err := c.adminListen(sandbox); err == nil {
			t.Errorf("--admin-addr %q accepted", addr)
		}
	}
}

func TestSandboxBaseURL(t *testing.T) {
	t.Parallel()
	sandbox := domain.Mode{Cloud: domain.UpstreamSandbox, Payments: domain.UpstreamSandbox}
	for addr, want := range map[string]string{
		":8080": "http://localhost:8080", "0.0.0.0:9000": "http://localhost:9000",
		"127.0.0.1:8080": "http://127.0.0.1:8080", "[::]:8080": "http://localhost:8080",
	} {
		c := config{Addr: addr}
		if got, err := c.publicBaseURL(sandbox); err != nil || got != want {
			t.Errorf("--addr %s: %q %v, want %q", addr, got, err, want)
		}
	}
	c := config{Addr: ":8080", BaseURL: "https://sandbox.example.com/"}
	if got, err := c.publicBaseURL(sandbox); err != nil || got != "https://sandbox.example.com" {
		t.Errorf("--base-url: %q %v", got, err)
	}
}

// sandboxArgs are the flags of a quick in-process sandbox serve.
func sandboxArgs(dir string, more ...string) []string {
	return append([]string{"--addr", "127.0.0.1:0", "--data-dir", dir}, more...)
}

// startServe runs serveWith until the test ends, and returns the public
// base URL and, when the start-up log names one, the operator listener's.
func startServe(t *testing.T, args ...string) (base, admin string, logs *syncBuffer) {
	t.Helper()
	cfg := serveConfig(t, nil, args...)
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveWith(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil))) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	publicRE := regexp.MustCompile(`msg=listening addr=(\S+)`)
	adminRE := regexp.MustCompile(`msg="operator listening" addr=(\S+)`)
	for deadline := time.Now().Add(20 * time.Second); base == ""; {
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, logs.String())
		default:
		}
		if m := publicRE.FindStringSubmatch(logs.String()); m != nil {
			base = "http://" + m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", logs.String())
		} else {
			time.Sleep(20 * time.Millisecond) // waiting for a listener: nothing to subscribe to
		}
	}
	if m := adminRE.FindStringSubmatch(logs.String()); m != nil {
		admin = "http://" + m[1]
	}
	return base, admin, logs
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const (
	tokenA = "3f9c2a7be1d04c58a6f3e2b19d7c4a05e8b6f1d2c3a4958677a1b2c3d4e5f6a7"
	tokenB = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
)

// With --admin-addr the operator API has a listener of its own and the
// public one answers 404 for it; the previous token works during a
// rotation; failed attempts are logged and limited per client; a snapshot
// says in the log who took it.
func TestOperatorListener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base, admin, logs := startServe(t, sandboxArgs(dir, "--admin-addr", "127.0.0.1:0",
		"--admin-token", tokenA, "--admin-token-previous", tokenB)...)
	if admin == "" {
		t.Fatalf("no operator listener in the log:\n%s", logs.String())
	}
	for _, path := range []string{"/admin/topups/review", "/admin/eventstore/snapshot", "/metrics"} {
		if code, _ := get(t, base+path, tokenA); code != http.StatusNotFound {
			t.Errorf("public GET %s: %d, want 404", path, code)
		}
	}
	if code, body := get(t, admin+"/llms.txt", ""); code != http.StatusNotFound {
		t.Errorf("the operator listener serves the public API: GET /llms.txt %d %s", code, body)
	}
	for _, tok := range []string{tokenA, tokenB} {
		if code, body := get(t, admin+"/admin/topups/review", tok); code != http.StatusOK {
			t.Errorf("operator GET /admin/topups/review: %d %s", code, body)
		}
	}
	if code, body := get(t, admin+"/metrics", tokenA); code != http.StatusOK || !strings.Contains(body, "cryptovps_http_requests_total") {
		t.Errorf("operator GET /metrics: %d", code)
	}
	if !strings.Contains(logs.String(), "previous token, which is being rotated out") {
		t.Error("a use of the previous token is not logged")
	}

	// Ten wrong tokens a minute, then 429 even for the right one.
	for i := range 10 {
		if code, _ := get(t, admin+"/admin/topups/review", tokenA[:63]+"0"); code != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %d, want 401", i, code)
		}
	}
	if code, _ := get(t, admin+"/admin/topups/review", tokenA); code != http.StatusTooManyRequests {
		t.Errorf("after 10 failures: %d, want 429", code)
	}
	if n := strings.Count(logs.String(), "operator authentication failed"); n != 10 {
		t.Errorf("%d failures logged, want 10", n)
	}

	// The snapshot names who took it (fresh process: the limit above is
	// per process).
	dir2 := t.TempDir()
	_, admin2, logs2 := startServe(t, sandboxArgs(dir2, "--admin-addr", "127.0.0.1:0", "--admin-token", tokenA)...)
	if code, _ := get(t, admin2+"/admin/eventstore/snapshot", ""); code != http.StatusUnauthorized {
		t.Errorf("snapshot without a token: %d", code)
	}
	if strings.Contains(logs2.String(), "snapshot taken") {
		t.Error("a refused snapshot is logged as taken")
	}
	if code, _ := get(t, admin2+"/admin/eventstore/snapshot", tokenA); code != http.StatusOK {
		t.Errorf("snapshot: %d", code)
	}
	if l := logs2.String(); !regexp.MustCompile(`snapshot taken by an operator" ip=127\.0\.0\.1 at=\S+ operator_token=current`).MatchString(l) ||
		!strings.Contains(l, "event store snapshot sent") {
		t.Errorf("the snapshot's taker is not in the log:\n%s", l)
	}
}

// A weak operator token, given or kept, fails the start and says how to
// make a good one; with none, a strong one is generated into the data dir,
// 0600, and used from then on.
func TestServeAdminTokenRequirements(t *testing.T) {
	t.Parallel()
	err := serveWith(context.Background(), serveConfig(t, nil, sandboxArgs(t.TempDir(), "--admin-token", "hunter2hunter2hunter2hunter2hunter2")...),
		slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "openssl rand -hex 32") {
		t.Errorf("weak --admin-token: %v", err)
	}
	err = serveWith(context.Background(), serveConfig(t, nil, sandboxArgs(t.TempDir(), "--admin-token", tokenA,
		"--admin-token-previous", "previous")...), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "--admin-token-previous is too weak") {
		t.Errorf("weak --admin-token-previous: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = serveWith(context.Background(), serveConfig(t, nil, sandboxArgs(dir)...), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "admin-token") || !strings.Contains(err.Error(), "openssl rand -hex 32") {
		t.Errorf("weak kept token: %v", err)
	}

	dir = t.TempDir()
	base, admin, _ := startServe(t, sandboxArgs(dir)...)
	if admin != "" {
		t.Errorf("the sandbox opened an operator listener by default: %s", admin)
	}
	path := filepath.Join(dir, "admin-token")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := info.Mode().Perm(); m != 0o600 {
		t.Errorf("generated admin-token mode %#o, want 0600", m)
	}
	b, _ := os.ReadFile(path)
	tok := strings.TrimSpace(string(b))
	if err := checkOperatorToken("generated", tok); err != nil {
		t.Error(err)
	}
	if code, _ := get(t, base+"/admin/topups/review", tok); code != http.StatusOK {
		t.Errorf("the generated token on the sandbox's one listener: %d", code)
	}
}

// Secrets and the data dir are created private; an existing secret or log
// file other users can read, or a data dir they can write, is refused with
// the command that fixes it.
func TestServeFilePermissions(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	startServe(t, sandboxArgs(dir, "--admin-token", tokenA)...)
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := info.Mode().Perm(); m != 0o700 {
		t.Errorf("data dir mode %#o, want 0700", m)
	}
	for _, name := range []string{"jwt-secret", "secrets-key", "events.db", "keys.db", "sandbox-cloud.json.lock"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if m := info.Mode().Perm(); m != 0o600 {
			t.Errorf("%s mode %#o, want 0600", name, m)
		}
	}

	for _, name := range []string{"jwt-secret", "admin-token", "secrets-key", "events.db", "keys.db", "sandbox-cloud.json", "read-model.snap"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, []byte(tokenB+"\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			err := serveWith(context.Background(), serveConfig(t, nil, sandboxArgs(dir)...), slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Errorf("%s mode 0640: %v, want a refusal saying chmod 600", name, err)
			}
		})
	}
	t.Run("writable data dir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o770); err != nil {
			t.Fatal(err)
		}
		err := serveWith(context.Background(), serveConfig(t, nil, sandboxArgs(dir)...), slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "chmod 700 "+dir) {
			t.Errorf("data dir mode 0770: %v", err)
		}
		if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) > 0 {
			t.Errorf("a refused start wrote %v", m)
		}
	})
}

// /llms.txt and /docs print the configured base URL, whatever Host the
// request names.
func TestBaseURLIsNeverTheRequestsHost(t *testing.T) {
	t.Parallel()
	base, _, _ := startServe(t, sandboxArgs(t.TempDir(), "--base-url", "https://sandbox.example.com")...)
	for _, path := range []string{"/llms.txt", "/docs"} {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Host = "evil.example.net"
		req.Header.Set("X-Forwarded-Host", "evil.example.net")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if page := string(b); strings.Contains(page, "evil.example.net") || !strings.Contains(page, "https://sandbox.example.com") {
			t.Errorf("GET %s with Host evil.example.net: the page names the Host or lacks --base-url", path)
		}
	}
}

// The operator tools find the operator listener from serve's environment.
func TestDefaultOperatorServer(t *testing.T) {
	for _, tc := range []struct{ addr, cloud, payments, want string }{
		{"", "", "", "http://localhost:8080"},
		{"", "sandbox", "sandbox", "http://localhost:8080"},
		{"", "vultr", "", "http://127.0.0.1:8081"},
		{"", "", "btcpay", "http://127.0.0.1:8081"},
		{"0.0.0.0:9001", "vultr", "", "http://127.0.0.1:9001"},
		{"10.0.0.5:9001", "", "", "http://10.0.0.5:9001"},
		{"[::1]:9001", "", "", "http://[::1]:9001"},
	} {
		t.Setenv("CRYPTOVPS_ADMIN_ADDR", tc.addr)
		t.Setenv("CRYPTOVPS_CLOUD", tc.cloud)
		t.Setenv("CRYPTOVPS_PAYMENTS", tc.payments)
		if got := defaultOperatorServer(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc, got, tc.want)
		}
	}
}
