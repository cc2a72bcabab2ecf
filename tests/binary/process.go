package binary

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/tests/apiclient"
	"github.com/cryptovps/cryptovps/tests/openapitest"
)

// path is the binary Main built; "" outside Main.
var path string

// Main is the TestMain of a suite that starts the binary: it builds the
// binary once for the whole test binary, runs the tests with run (m.Run, or
// a function that calls it), deletes the binary and returns the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(binary.Main(m.Run)) }
func Main(run func() int) int {
	dir, err := os.MkdirTemp("", "cryptovps-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "binary:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	path = filepath.Join(dir, "cryptovps")
	if err := Build(path); err != nil {
		fmt.Fprintln(os.Stderr, "binary: build cryptovps:", err)
		return 1
	}
	return run()
}

// defaultOpenAPI is the API's own document, loaded once per test binary.
var defaultOpenAPI = sync.OnceValues(func() (*openapitest.Validator, error) {
	return openapitest.Load(api.OpenAPIDocument())
})

// Options say how to run `cryptovps serve`.
type Options struct {
	// Name names the process in failure messages ("cryptovps" when empty).
	Name string
	// DataDir is the --data-dir (a fresh directory of the test's when
	// empty).
	DataDir string
	// Args are extra serve flags.
	Args []string
	// Env are extra environment variables (KEY=value). The test's own
	// environment is passed on without CRYPTOVPS_*, DATABASE_URL and
	// EVENTSTORE_URL: the knobs must come from Args and Env, not from a
	// developer's shell.
	Env []string
	// OpenAPI checks every exchange of Client (the API's document when nil).
	OpenAPI *openapitest.Validator
	// StopWithin is how long Stop waits for the exit after SIGTERM (5s when
	// zero).
	StopWithin time.Duration
	// AdminListener gives the operator API a listener of its own
	// (--admin-addr, on a free loopback port picked at each start): its
	// base URL is Process.AdminURL, its client AdminClient.
	AdminListener bool
}

// startWithin is how long a start may take to answer /healthz with 200.
const startWithin = 20 * time.Second

// Process is one running `cryptovps serve`.
type Process struct {
	// Name is Options.Name.
	Name string
	// URL is the base URL, http://127.0.0.1:PORT; the port changes on
	// Restart.
	URL string
	// DataDir is the --data-dir, kept across Restart.
	DataDir string
	// AdminURL is the operator listener's base URL with
	// Options.AdminListener ("" without); the port changes on Restart.
	AdminURL string

	opts    Options
	logPath string
	env     []string
	client  *apiclient.Client
	admin   *apiclient.Client
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process exited
	err     error         // cmd.Wait's answer, once done is closed
	killed  atomic.Bool
}

// Start runs the binary built by Main with opts and waits until /healthz
// answers 200. The port is a free one, picked again if another process takes
// it first. When t ends, a process still running is stopped with SIGTERM and
// must exit cleanly; if t failed, the end of the process's log is logged.
func Start(t testing.TB, opts Options) *Process {
	t.Helper()
	if path == "" {
		t.Fatal("binary.Start: the binary is built by binary.Main, which this test binary's TestMain must call")
	}
	if opts.Name == "" {
		opts.Name = "cryptovps"
	}
	if opts.StopWithin == 0 {
		opts.StopWithin = 5 * time.Second
	}
	if opts.OpenAPI == nil {
		v, err := defaultOpenAPI()
		if err != nil {
			t.Fatalf("openapi: %v", err)
		}
		opts.OpenAPI = v
	}
	dir := t.TempDir()
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(dir, "data")
	}
	p := &Process{Name: opts.Name, DataDir: opts.DataDir, opts: opts, logPath: filepath.Join(dir, "server.log"),
		env: environment(opts.Env)}
	p.start(t)
	t.Cleanup(func() {
		if p.Alive() {
			if err := p.stop(); err != nil {
				t.Errorf("stop %s: %v", p.Name, err)
			}
		}
		if t.Failed() {
			t.Logf("last lines of %s's log (%s):\n%s", p.Name, p.logPath, p.LogTail(80))
		}
		p.Kill()
	})
	return p
}

// environment is the test's environment without the service's knobs, and
// extra.
func environment(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CRYPTOVPS_") && !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "EVENTSTORE_URL=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Client is the HTTP client of the process as it runs now (a Restart makes
// a new one, for the new port). Its exchanges are checked against the
// OpenAPI document.
func (p *Process) Client() *apiclient.Client { return p.client }

// AdminClient is the client of the operator listener (Options.AdminListener)
// as the process runs now; nil without one.
func (p *Process) AdminClient() *apiclient.Client { return p.admin }

// Restart runs the process again on the same data dir, flags and
// environment, on a new port; it must have exited (Stop or Kill) first.
func (p *Process) Restart(t testing.TB) {
	t.Helper()
	if p.Alive() {
		t.Fatalf("restart %s: it is still running", p.Name)
	}
	p.start(t)
}

func (p *Process) start(t testing.TB) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := p.startOnce()
		if err == nil {
			return
		}
		if attempt >= 3 || !strings.Contains(p.LogTail(20), "address already in use") {
			t.Logf("last lines of %s's log (%s):\n%s", p.Name, p.logPath, p.LogTail(80))
			t.Fatalf("start %s: %v", p.Name, err)
		}
	}
}

// freeAddr is a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (p *Process) startOnce() error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	args := []string{"serve", "--addr", addr, "--data-dir", p.DataDir}
	p.AdminURL, p.admin = "", nil
	if p.opts.AdminListener {
		admin, err := freeAddr()
		if err != nil {
			return err
		}
		args = append(args, "--admin-addr", admin)
		p.AdminURL = "http://" + admin
		p.admin = apiclient.New(p.AdminURL, p.opts.OpenAPI)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "==== start on %s\n", addr)
	cmd := exec.Command(path, append(args, p.opts.Args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = p.env
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err = cmd, done, nil
	p.URL = "http://" + addr
	p.client = apiclient.New(p.URL, p.opts.OpenAPI)
	p.killed.Store(false)
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(done)
	}()
	var last error
	for deadline := time.Now().Add(startWithin); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		select {
		case <-done:
			return fmt.Errorf("the process exited before it was healthy: %v", p.err)
		default:
		}
		a, err := p.client.Send(apiclient.Request{Method: http.MethodGet, Path: "/healthz"})
		if err == nil && a.Status == http.StatusOK {
			return nil
		}
		if last = err; err == nil {
			last = fmt.Errorf("%s", a)
		}
	}
	p.Kill()
	return fmt.Errorf("/healthz did not answer 200 within %s (last: %v)", startWithin, last)
}

// Alive reports whether the process is running.
func (p *Process) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Exited reports whether the process exited, and how (cmd.Wait's error).
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM and fails t unless the process exits cleanly (status
// 0) within Options.StopWithin.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	if err := p.stop(); err != nil {
		t.Fatalf("stop %s: %v", p.Name, err)
	}
}

func (p *Process) stop() error {
	if !p.Alive() {
		return fmt.Errorf("it had already exited: %v", p.err)
	}
	// Idle keep-alive connections first: the server's graceful shutdown
	// waits for a connection on which no request ever came.
	p.client.CloseIdleConnections()
	if p.admin != nil {
		p.admin.CloseIdleConnections()
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-p.done:
	case <-time.After(p.opts.StopWithin):
		p.Kill()
		return fmt.Errorf("it did not exit within %s of SIGTERM", p.opts.StopWithin)
	}
	if p.err != nil {
		return fmt.Errorf("it did not exit cleanly after SIGTERM: %v", p.err)
	}
	return nil
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it to
// exit. Killed reports true from the moment Kill is called until a Restart.
func (p *Process) Kill() {
	p.killed.Store(true)
	if p.cmd == nil || !p.Alive() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Killed reports whether Kill was called since the process last started,
// even if it has not returned yet: a request cut by the kill can tell.
func (p *Process) Killed() bool { return p.killed.Load() }

// Log is the process's whole log (stdout and stderr of every start).
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// LogTail is the last n lines of the log.
func (p *Process) LogTail(n int) string {
	all := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return strings.Join(all, "\n")
}

// CLI runs `cryptovps ARGS...` with the process's environment, as an
// operator on the same machine would, and returns its standard output; the
// error carries its standard error.
func (p *Process) CLI(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Env = p.env
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}
