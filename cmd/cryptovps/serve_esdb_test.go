package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeOnKurrentDB starts the API on the KurrentDB test double: writes
// land there, an outage answers 503 without taking the process down, and
// service resumes when KurrentDB is back.
func TestServeOnKurrentDB(t *testing.T) {
	srv := startTarget(t)
	var cfg config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.flags(fs)
	if err := parse(fs, []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--eventstore-url", srv.URL(), "--auth-rate-limit", "100000"}); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveWith(ctx, cfg, log) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		t.Logf("server log:\n%s", logs.String())
	}()

	addrRE := regexp.MustCompile(`msg=listening addr=(\S+)`)
	var base string
	for deadline := time.Now().Add(20 * time.Second); base == ""; {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			base = "http://" + m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", logs.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !strings.Contains(logs.String(), "event store: KurrentDB") {
		t.Error("serve did not say it uses KurrentDB")
	}
	register := func(email string) (int, string) {
		body, _ := json.Marshal(map[string]string{"email": email, "password": "correct horse battery"})
		resp, err := http.Post(base+"/auth/register", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := register("first@example.com"); code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, body)
	}
	before := srv.Count()

	srv.Stop()
	code, body := register("second@example.com")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "unavailable") {
		t.Errorf("register while KurrentDB is down: %d %s", code, body)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		code, body = register("second@example.com")
		if code == http.StatusCreated {
			break
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("register after KurrentDB is back: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if srv.Count() <= before {
		t.Error("nothing was written to KurrentDB")
	}
}
