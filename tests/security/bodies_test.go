package security

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/tests/apiclient"
)

// A body over 64 KiB, sized or streamed, is a 413; a body that is not the
// JSON object the route takes is a 400; neither changes anything, on any
// write route.
func TestOversizedAndMalformedBodiesChangeNothing(t *testing.T) {
	t.Parallel()
	s := start(t, false, "--auth-rate-limit", "1000000")
	a := s.register(t)
	server := a.deploy(t)
	a.topup(t, "10.00") // pending: a body that paid it would show
	before := a.state(t)

	big := `{"label":"` + strings.Repeat("a", 70<<10) + `","planId":"vc2-1c-1gb","regionId":"ams"}`
	deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000) // 30 KB: under the limit
	malformed := map[string]string{
		"truncated":        `{"label":"x","planId":`,
		"not JSON":         `label=x&planId=vc2-1c-1gb`,
		"an array":         `[{"label":"x","planId":"vc2-1c-1gb","regionId":"ams"}]`,
		"trailing data":    `{"label":"x","planId":"vc2-1c-1gb","regionId":"ams"} {"label":"y"}`,
		"wrong types":      `{"label":1,"planId":["vc2-1c-1gb"],"regionId":{"id":"ams"},"count":"2","seconds":"60","amount":10,"serverId":7}`,
		"nulls":            `{"label":null,"planId":null,"regionId":null,"amount":null,"serverId":null,"seconds":null}`,
		"huge number":      `{"count":1e400,"seconds":1e400,"serverLimit":1e400,"label":"x","planId":"vc2-1c-1gb","regionId":"ams"}`,
		"negative seconds": `{"seconds":-3600}`,
		"invalid UTF-8":    "{\"label\":\"\xff\xfe\",\"planId\":\"vc2-1c-1gb\",\"regionId\":\"ams\",\"name\":\"\xff\",\"reason\":\"\xff\"}",
		"NUL bytes":        "{\"label\":\"a\x00b\",\"planId\":\"vc2-1c-1gb\",\"regionId\":\"ams\"}",
		"deeply nested":    deep,
		"empty":            ``,
	}
	routes := []string{"/servers", "/servers/bulk", "/billing/topups", "/backups", "/backups/" + server + "/restore",
		"/ssh-keys", "/limit-requests", "/sandbox/clock/advance"}
	for _, path := range routes {
		t.Run(strings.ReplaceAll(strings.TrimPrefix(path, "/"), server, "ID"), func(t *testing.T) {
			for _, body := range []any{big, struct{ *bytes.Reader }{bytes.NewReader([]byte(big))}} {
				a.s.send(t, apiclient.Request{Method: http.MethodPost, Path: path, Token: a.token, Body: body}).
					ExpectError(t, http.StatusRequestEntityTooLarge, "body_too_large")
			}
			for name, body := range malformed {
				r := a.s.send(t, apiclient.Request{Method: http.MethodPost, Path: path, Token: a.token, Body: body})
				if r.Status < 400 || r.Status >= 500 {
					t.Errorf("%s: %s, want a 4xx", name, r)
				}
			}
		})
	}
	a.unchanged(t, before, "oversized and malformed bodies")
	// Registration and login: no account appears.
	for name, body := range malformed {
		for _, path := range []string{"/auth/register", "/auth/login"} {
			r := s.send(t, apiclient.Request{Method: http.MethodPost, Path: path, Body: body})
			if r.Status != http.StatusBadRequest && r.Status != http.StatusUnauthorized {
				t.Errorf("%s to %s: %s, want 400 (or 401 for a login)", name, path, r)
			}
		}
	}
	s.send(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/register", Body: big}).
		ExpectError(t, http.StatusRequestEntityTooLarge, "body_too_large")
}
