package contract

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// sseMessage is one Server-Sent Event.
type sseMessage struct {
	id, event string
	data      map[string]any
}

// stream opens GET /events and delivers its messages until the test ends.
// (The validated client reads whole answers; a stream is read as it comes.)
func (u *user) stream(t *testing.T, lastID string) <-chan sseMessage {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u.h.client.Base()+"/events", nil)
	auth := u.bearer(t)
	req.Header.Set(auth[0], auth[1])
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		t.Fatalf("GET /events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseMessage, 64)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	go func() {
		defer close(done)
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var m sseMessage
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.event != "" {
					out <- m
				}
				m = sseMessage{}
			case strings.HasPrefix(line, "id: "):
				m.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				m.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &m.data); err != nil {
					t.Errorf("event data is not JSON: %q", line)
				}
			}
		}
	}()
	return out
}

// next waits for the next message of kind whose object has status (any
// status when empty), skipping others.
func next(t *testing.T, ch <-chan sseMessage, kind, status string) sseMessage {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended waiting for %s %s", kind, status)
			}
			obj, _ := m.data[kind].(map[string]any)
			if m.event == kind && obj != nil && (status == "" || obj["status"] == status) {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s %s event within 20 s", kind, status)
		}
	}
}

func eventStreamTests(t *testing.T, stack func(t *testing.T, cfg config) *harness) {
	t.Run("GET /events streams every change of the account's objects, resumable with Last-Event-ID", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{})
		u := h.register(t)
		other := h.register(t)
		events := u.stream(t, "")
		id := u.deploy(t, "streamed", "vc2-1c-1gb")
		other.deploy(t, "not-yours", "vc2-1c-1gb")
		first := next(t, events, "server", "PROVISIONING")
		if got := first.data["server"].(map[string]any)["id"]; got != id {
			t.Fatalf("the first server event is about %v, want %s", got, id)
		}
		bill := next(t, events, "billing", "")
		if b := bill.data["billing"].(map[string]any); b["balance"] != "9.986" || b["hourlySpend"] != "0.014" {
			t.Errorf("billing event %v, want GET /billing's answer", b)
		}
		u.advance(t, provisionDelay+time.Second)
		active := next(t, events, "server", "ACTIVE")
		if ip, _ := active.data["server"].(map[string]any)["ipv4"].(string); ip == "" {
			t.Errorf("ACTIVE server event without ipv4: %v", active.data)
		}
		// Resuming after the first message replays what came after it,
		// and never the first again.
		again := u.stream(t, first.id)
		m := <-again
		if m.id == first.id {
			t.Fatalf("resumed stream repeats the message it resumed after")
		}
		next(t, again, "server", "ACTIVE")
		u.do(t, http.MethodGet, "/events", nil, "Last-Event-ID", "yesterday").wantError(t, http.StatusBadRequest, "validation_failed")
	})
}
