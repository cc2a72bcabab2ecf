// Package e2e drives the real cryptovps binary as a subprocess, the way an
// AI agent following /llms.txt literally would: over HTTP only, with the
// sandbox clock moved forward instead of waiting.
//
// The binary is started with tests/binary, and every HTTP request goes
// through its client (tests/apiclient), which checks each exchange against
// the OpenAPI document.
package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/cryptovps/cryptovps/tests/apiclient"
	"github.com/cryptovps/cryptovps/tests/binary"
)

func TestMain(m *testing.M) { os.Exit(binary.Main(m.Run)) }

// server is one running `cryptovps serve`, and what was asked of it.
type server struct {
	*binary.Process

	mu        sync.Mutex
	exchanges []string // "METHOD path -> status", in order
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
	return &server{Process: binary.Start(t, binary.Options{Args: args, Env: env})}
}

// do sends r to s and fails the test if no HTTP answer came back or the
// exchange breaks the OpenAPI document.
func (s *server) do(t testing.TB, r apiclient.Request) *apiclient.Answer {
	t.Helper()
	a, err := s.Client().Send(r)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing an agent does here may ever get a server error.
	if a.Status >= 500 {
		t.Errorf("server error: %s", a)
	}
	s.mu.Lock()
	s.exchanges = append(s.exchanges, fmt.Sprintf("%s %s -> %d", r.Method, r.Path, a.Status))
	s.mu.Unlock()
	return a
}

// Requests is how many requests were sent so far: a mark for FailedSince.
func (s *server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.exchanges)
}

// FailedSince lists the requests sent after mark that were not answered
// with a success: a 401 that made the agent log in again and retry, a
// 4xx the guide should have prevented.
func (s *server) FailedSince(mark int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.exchanges[mark:] {
		if !strings.Contains(e, "-> 2") {
			out = append(out, e)
		}
	}
	return out
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
