// Package e2e drives the real cryptovps binary as a subprocess, the way an
// AI agent following /llms.txt literally would: over HTTP only, with the
// sandbox clock moved forward instead of waiting.
//
// Every HTTP request of this package goes through roundTrip, the one place
// where a later change validates each request and response against the
// OpenAPI document.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cryptovps/cryptovps/api"
	buildBinary "github.com/cryptovps/cryptovps/tests/binary"
	"github.com/cryptovps/cryptovps/tests/openapitest"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the cryptovps command built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "cryptovps-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "cryptovps")
	if err := buildBinary.Build(binary); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build the binary:", err)
		return 1
	}
	if oas, err = openapitest.Load(api.OpenAPIDocument()); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: openapi:", err)
		return 1
	}
	return m.Run()
}

// ---------------------------------------------------------------------------
// The subprocess.

// server is one running `cryptovps serve` process.
type server struct {
	dataDir string
	args    []string // extra serve flags
	env     []string // extra CRYPTOVPS_* variables
	logPath string

	base string // http://127.0.0.1:PORT
	cmd  *exec.Cmd
	done chan struct{} // closed when the process exited
	err  error         // cmd.Wait's answer, once done is closed
	log  *os.File
}

// startServer starts the binary on a fresh data dir with the given extra
// flags; when the test ends it is stopped with SIGTERM and must exit
// cleanly.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	return startServerEnv(t, nil, args...)
}

// startServerEnv is startServer with extra environment variables.
func startServerEnv(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{dataDir: filepath.Join(dir, "data"), args: args, env: env, logPath: filepath.Join(dir, "server.log")}
	s.start(t)
	t.Cleanup(func() {
		if s.alive() {
			if err := s.shutdown(); err != nil {
				t.Errorf("stop the server: %v", err)
			}
		}
		if t.Failed() {
			s.dumpLog(t)
		}
		s.kill()
	})
	return s
}

// freeAddr finds a free loopback port by listening on :0.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// start runs the process (again) on s.dataDir and waits for /healthz. The
// port is picked afresh each time and retried if someone else took it.
func (s *server) start(t *testing.T) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := s.startOnce(t)
		if err == nil {
			return
		}
		if attempt >= 3 || !strings.Contains(s.logTail(20), "address already in use") {
			s.dumpLog(t)
			t.Fatalf("start the server: %v", err)
		}
	}
}

func (s *server) startOnce(t *testing.T) error {
	addr := freeAddr(t)
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "==== start on %s\n", addr)
	args := append([]string{"serve", "--addr", addr, "--data-dir", s.dataDir}, s.args...)
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// The knobs below must come from the flags, not from a developer's shell.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CRYPTOVPS_") && !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "EVENTSTORE_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, s.env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	s.cmd, s.log, s.base, s.done, s.err = cmd, f, "http://"+addr, make(chan struct{}), nil
	done := s.done
	go func() {
		err := cmd.Wait()
		s.err = err
		close(done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			f.Close()
			return fmt.Errorf("the process exited before it was healthy: %v", s.err)
		default:
		}
		r, err := roundTrip(s.base, request{Method: http.MethodGet, Path: "/healthz"})
		if err == nil && r.Status == http.StatusOK {
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.kill()
	return errors.New("/healthz did not answer 200 within 15s")
}

// alive reports whether the process is still running.
func (s *server) alive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and requires a clean exit (status 0) within 5 seconds.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.shutdown(); err != nil {
		t.Fatal(err)
	}
}

func (s *server) shutdown() error {
	if !s.alive() {
		return fmt.Errorf("the server had already exited: %v", s.err)
	}
	// Idle keep-alive connections of the test's client are closed first:
	// net/http's Shutdown waits up to 5s for a connection on which no
	// request ever came, and the client may hold one from a burst.
	client.CloseIdleConnections()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.kill()
		return errors.New("the server did not exit within 5s of SIGTERM")
	}
	s.log.Close()
	if s.err != nil {
		return fmt.Errorf("the server did not exit cleanly after SIGTERM: %v", s.err)
	}
	return nil
}

// kill ends the process with SIGKILL, as a crash would.
func (s *server) kill() {
	if s.cmd == nil || !s.alive() {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.log.Close()
}

func (s *server) logTail(lines int) string {
	b, _ := os.ReadFile(s.logPath)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func (s *server) dumpLog(t *testing.T) {
	t.Logf("last lines of the server log (%s):\n%s", s.logPath, s.logTail(80))
}

// cli runs `cryptovps ARGS...` against this server, as an operator would.
func (s *server) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CRYPTOVPS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), err
}

// ---------------------------------------------------------------------------
// HTTP: the one helper.

type request struct {
	Method string
	Path   string // path and query, relative to the base URL
	Token  string // sent as "Authorization: Bearer <Token>" when set
	Header http.Header
	// Body is nil (no body), []byte or string (sent as is), io.Reader (sent
	// chunked, length unknown) or any other value (sent as JSON).
	Body any
}

type response struct {
	Method string
	Path   string
	Status int
	Header http.Header
	Body   []byte
}

var client = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true},
	// An agent sees redirects as they are.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// roundTrip is the single function every HTTP request of the end-to-end
// tests goes through. Validation of each request and response against the
// OpenAPI document belongs here.
func roundTrip(base string, r request) (*response, error) {
	var body io.Reader
	var sent []byte // the body as sent, for the OpenAPI check
	contentType := ""
	length := int64(-1)
	switch b := r.Body.(type) {
	case nil:
	case []byte:
		body, length, contentType, sent = bytes.NewReader(b), int64(len(b)), "application/json", b
	case string:
		body, length, contentType, sent = strings.NewReader(b), int64(len(b)), "application/json", []byte(b)
	case io.Reader:
		data, err := io.ReadAll(b)
		if err != nil {
			return nil, fmt.Errorf("read the request body: %w", err)
		}
		// Wrapped so it has no length and still goes out chunked.
		body, contentType, sent = struct{ io.Reader }{bytes.NewReader(data)}, "application/json", data
	default:
		j, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("encode the request body: %w", err)
		}
		body, length, contentType, sent = bytes.NewReader(j), int64(len(j)), "application/json", j
	}
	req, err := http.NewRequest(r.Method, base+r.Path, body)
	if err != nil {
		return nil, err
	}
	if length >= 0 {
		req.ContentLength = length
	} else if body != nil {
		req.ContentLength = -1 // chunked
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, vs := range r.Header {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("read the answer to %s %s: %w", r.Method, r.Path, err)
	}
	if err := oas.CheckExchange(req, sent, resp, b); err != nil {
		return nil, fmt.Errorf("openapi: %s %s -> %d: %w\n  request body:  %s\n  response body: %s",
			r.Method, r.Path, resp.StatusCode, err, clip(sent), clip(b))
	}
	return &response{Method: r.Method, Path: r.Path, Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// oas checks every exchange against the OpenAPI document (loaded by runMain).
var oas *openapitest.Validator

func clip(b []byte) string {
	if len(b) > 1000 {
		return string(b[:1000]) + "..."
	}
	return string(b)
}

// do sends r to s and fails the test if no HTTP answer came back.
func (s *server) do(t testing.TB, r request) *response {
	t.Helper()
	resp, err := roundTrip(s.base, r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.Path, err)
	}
	// Nothing an agent does here may ever get a server error.
	if resp.Status >= 500 {
		t.Errorf("server error: %s", resp)
	}
	return resp
}

func (r *response) String() string {
	b := r.Body
	if len(b) > 600 {
		b = append(b[:600:600], "..."...)
	}
	return fmt.Sprintf("%s %s -> %d %s", r.Method, r.Path, r.Status, b)
}

// expect fails the test unless the answer has the status.
func (r *response) expect(t testing.TB, status int) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("want %d: %s", status, r)
	}
	if status >= 200 && status < 300 && len(r.Body) > 0 && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") &&
		!strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("want a JSON answer, got Content-Type %q: %s", r.Header.Get("Content-Type"), r)
	}
	return r
}

// decode reads the JSON answer into v.
func (r *response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r, err)
	}
}

// apiErr is the one error shape.
type apiErr struct {
	Error   string            `json:"error"`
	Code    string            `json:"code"`
	Details map[string]string `json:"details"`
}

// expectErr checks an error answer: its status, its JSON shape and code.
func (r *response) expectErr(t testing.TB, status int, code string) apiErr {
	t.Helper()
	r.expect(t, status)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error answer with Content-Type %q: %s", ct, r)
	}
	var e apiErr
	r.decode(t, &e)
	if e.Error == "" || e.Code == "" {
		t.Fatalf("error answer without error or code: %s", r)
	}
	if code != "" && e.Code != code {
		t.Fatalf("want code %q: %s", code, r)
	}
	return e
}

// requireKeys checks that the JSON object at raw has every key (a null
// value counts: "ipv4":null is part of the contract).
func requireKeys(t testing.TB, what string, raw json.RawMessage, keys ...string) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s is not a JSON object: %v: %s", what, err, raw)
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Fatalf("%s lacks %q: %s", what, k, raw)
		}
	}
}
