// Package multiprocess runs several `cryptovps serve` processes as one
// deployment: one KurrentDB (the in-process test double), one PostgreSQL
// (tests/pgtest) and one simulated cloud file, the way the README's
// production topology runs N stateless API processes. It checks that the
// processes behave as one service while one of them is killed.
package multiprocess_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	buildBinary "github.com/cryptovps/cryptovps/tests/binary"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/tests/pgtest"
)

// binary is the cryptovps command built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cryptovps-multiprocess-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "multiprocess:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cryptovps")
	if err := buildBinary.Build(binary); err != nil {
		fmt.Fprintln(os.Stderr, "multiprocess: build the binary:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running `cryptovps serve`.
type proc struct {
	name    string
	base    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error

	mu     sync.Mutex
	killed bool
}

// startProc runs serve with env and flags on a data dir of its own, and
// waits until it is healthy.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	for attempt := 1; ; attempt++ {
		p, err := tryStart(name, dir, env, args)
		if err == nil {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("last lines of %s's log:\n%s", p.name, p.logTail(60))
				}
				p.kill()
			})
			return p
		}
		if attempt >= 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("start %s: %v", name, err)
		}
	}
}

func tryStart(name, dir string, env, args []string) (*proc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &proc{name: name, base: "http://" + addr, logPath: filepath.Join(dir, "server.log"), done: make(chan struct{})}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, append([]string{"serve", "--addr", addr, "--data-dir", filepath.Join(dir, "data")}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CRYPTOVPS_") && !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "EVENTSTORE_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		select {
		case <-p.done:
			return nil, fmt.Errorf("exited before it was healthy (%v):\n%s", p.err, p.logTail(30))
		default:
		}
		if a, err := call(p.base, http.MethodGet, "/healthz", "", nil, nil); err == nil && a.status == http.StatusOK {
			return p, nil
		}
	}
	p.kill()
	return nil, fmt.Errorf("not healthy within 20s:\n%s", p.logTail(30))
}

// kill ends the process with SIGKILL, as a crash would.
func (p *proc) kill() {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// isKilled reports whether the test killed (or is killing) the process.
func (p *proc) isKilled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killed
}

// stop sends SIGTERM and requires a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	httpClient.CloseIdleConnections()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
		t.Fatalf("%s did not exit within 20s of SIGTERM", p.name)
	}
	if p.err != nil {
		t.Fatalf("%s did not exit cleanly: %v", p.name, p.err)
	}
}

func (p *proc) logText() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) logTail(n int) string {
	all := strings.Split(strings.TrimRight(p.logText(), "\n"), "\n")
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return strings.Join(all, "\n")
}

var httpClient = &http.Client{
	Timeout:   90 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 32, DisableCompression: true},
}

// answer is an HTTP answer.
type answer struct {
	method, path string
	status       int
	body         []byte
}

func (a answer) String() string {
	b := a.body
	if len(b) > 500 {
		b = b[:500]
	}
	return fmt.Sprintf("%s %s -> %d %s", a.method, a.path, a.status, b)
}

func (a answer) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
}

// call sends one request; an error means no HTTP answer came back.
func call(base, method, path, token string, header map[string]string, body any) (answer, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		return answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{method: method, path: path, status: resp.StatusCode, body: b}, nil
}
