package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cryptovps/cryptovps/tests/apiclient"
)

// garbage sends a few dozen malformed requests. None may answer 5xx, each
// must be refused with a 4xx, nothing may change, and the process must stay
// up.
func (j *journey) garbage(t *testing.T) {
	g := j.agent(t, "fuzzy@example.com")
	g.register(t)
	const uuid = "0b7e6f1c-3c8e-4c55-9d3e-2f7b1a9c0d11"
	deploy := func(label string) map[string]any {
		return map[string]any{"label": label, "planId": micro, "regionId": "ams"}
	}
	withKeys := func(keys any) map[string]any {
		m := deploy("keyed")
		m["sshKeys"] = keys
		return m
	}
	elevenKeys := make([]string, 11)
	for i := range elevenKeys {
		elevenKeys[i] = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl k" + strings.Repeat("x", i)
	}
	nested := `{"label":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`

	type probe struct {
		name   string
		method string
		path   string
		body   any
		header http.Header
		anon   bool // send no token
	}
	probes := []probe{
		// Bad JSON.
		{name: "truncated", method: "POST", path: "/servers", body: `{"label":`},
		{name: "trailing comma", method: "POST", path: "/servers", body: `{"label":"a",}`},
		{name: "array", method: "POST", path: "/servers", body: `[]`},
		{name: "null", method: "POST", path: "/servers", body: `null`},
		{name: "string", method: "POST", path: "/servers", body: `"deploy please"`},
		{name: "two objects", method: "POST", path: "/servers", body: `{"label":"a","planId":"vc2-1c-1gb","regionId":"ams"}{"label":"b"}`},
		{name: "invalid utf-8", method: "POST", path: "/servers", body: []byte{'{', '"', 0xff, 0xfe, '"', ':', '1', '}'}},
		{name: "deep nesting", method: "POST", path: "/servers", body: nested},
		{name: "xml", method: "POST", path: "/servers", body: `<server label="a"/>`, header: http.Header{"Content-Type": {"application/xml"}}},
		{name: "duplicate keys, last one bad", method: "POST", path: "/servers", body: `{"label":"ok","label":"bad label","planId":"vc2-1c-1gb","regionId":"ams"}`},
		{name: "register garbage", method: "POST", path: "/auth/register", body: `{"email":{"$ne":null},"password":["x"]}`, anon: true},
		{name: "login garbage", method: "POST", path: "/auth/login", body: `{"email":"` + strings.Repeat("a", 5000) + `@x.io","password":1}`, anon: true},
		// Wrong types.
		{name: "label object", method: "POST", path: "/servers", body: `{"label":{},"planId":[],"regionId":null}`},
		{name: "count string", method: "POST", path: "/servers/bulk", body: `{"label":"a","count":"10","planId":"vc2-1c-1gb","regionId":"ams"}`},
		{name: "count float", method: "POST", path: "/servers/bulk", body: `{"label":"a","count":10.5,"planId":"vc2-1c-1gb","regionId":"ams"}`},
		{name: "sshKeys string", method: "POST", path: "/servers", body: withKeys("ssh-ed25519 AAAA")},
		{name: "sshKeys numbers", method: "POST", path: "/servers", body: withKeys([]int{1, 2})},
		{name: "sshKeys junk", method: "POST", path: "/servers", body: withKeys([]string{"ssh-ed25519 AAAA!!!not-base64", ""})},
		{name: "sshKeys eleven", method: "POST", path: "/servers", body: withKeys(elevenKeys)},
		{name: "seconds string", method: "POST", path: "/sandbox/clock/advance", body: `{"seconds":"60"}`},
		{name: "seconds float", method: "POST", path: "/sandbox/clock/advance", body: `{"seconds":60.5}`},
		{name: "amount number", method: "POST", path: "/billing/topups", body: `{"amount":5,"currency":"BTC"}`},
		// Huge numbers.
		{name: "count 1e999", method: "POST", path: "/servers/bulk", body: `{"label":"a","count":1e999,"planId":"vc2-1c-1gb","regionId":"ams"}`},
		{name: "count 2^70", method: "POST", path: "/servers/bulk", body: `{"label":"a","count":1180591620717411303424,"planId":"vc2-1c-1gb","regionId":"ams"}`},
		{name: "count min int64", method: "POST", path: "/servers/bulk", body: `{"label":"a","count":-9223372036854775808,"planId":"vc2-1c-1gb","regionId":"ams"}`},
		{name: "seconds 1e308", method: "POST", path: "/sandbox/clock/advance", body: `{"seconds":1e308}`},
		{name: "seconds max int64", method: "POST", path: "/sandbox/clock/advance", body: `{"seconds":9223372036854775807}`},
		// 18446744074 s overflows time.Duration to +0.29 s.
		{name: "seconds wrapping", method: "POST", path: "/sandbox/clock/advance", body: `{"seconds":18446744074}`},
		{name: "amount exponent", method: "POST", path: "/billing/topups", body: `{"amount":"1e3","currency":"BTC"}`},
		{name: "amount NaN", method: "POST", path: "/billing/topups", body: `{"amount":"NaN","currency":"BTC"}`},
		{name: "amount negative", method: "POST", path: "/billing/topups", body: `{"amount":"-5.00","currency":"BTC"}`},
		{name: "amount huge", method: "POST", path: "/billing/topups", body: `{"amount":"99999999999999999999999999999999","currency":"BTC"}`},
		{name: "amount arabic digits", method: "POST", path: "/billing/topups", body: `{"amount":"١٠٠","currency":"BTC"}`},
		{name: "amount hex", method: "POST", path: "/billing/topups", body: `{"amount":"0x10","currency":"BTC"}`},
		// Unicode and other bad labels.
		{name: "label accented", method: "POST", path: "/servers", body: deploy("sérveur")},
		{name: "label emoji", method: "POST", path: "/servers", body: deploy("🚀rocket")},
		{name: "label NUL", method: "POST", path: "/servers", body: deploy("a\x00b")},
		{name: "label RTL override", method: "POST", path: "/servers", body: deploy("\u202egnp.exe")},
		{name: "label fullwidth", method: "POST", path: "/servers", body: deploy("ｆｕｌｌｗｉｄｔｈ")},
		{name: "label 64 runes 128 bytes", method: "POST", path: "/servers", body: deploy(strings.Repeat("é", 64))},
		{name: "label newline", method: "POST", path: "/servers", body: deploy("label\n")},
		{name: "label traversal", method: "POST", path: "/servers", body: deploy("../../etc/passwd")},
		{name: "bulk label unicode", method: "POST", path: "/servers/bulk", body: map[string]any{"label": "flotte-ü", "count": 2, "planId": micro, "regionId": "ams"}},
		// Path traversal and odd ids.
		{name: "encoded traversal", method: "GET", path: "/servers/..%2F..%2Fetc%2Fpasswd"},
		{name: "raw traversal", method: "GET", path: "/servers/../../etc/passwd"},
		{name: "dot-dot delete", method: "DELETE", path: "/servers/%2e%2e"},
		{name: "traversal restore", method: "POST", path: "/backups/..%2f..%2fadmin/restore"},
		{name: "NUL id", method: "GET", path: "/servers/%00"},
		{name: "long id", method: "GET", path: "/servers/" + strings.Repeat("a", 10000)},
		{name: "sql id", method: "GET", path: "/servers/'%20OR%20'1'='1"},
		{name: "uppercase uuid", method: "GET", path: "/servers/" + strings.ToUpper(uuid)},
		{name: "traversal serverId", method: "POST", path: "/backups", body: map[string]string{"serverId": "../../etc/passwd"}},
		{name: "topup bad id", method: "GET", path: "/billing/topups/%ff"},
		{name: "pay traversal", method: "POST", path: "/sandbox/topups/..%2F/pay"},
		{name: "admin traversal", method: "GET", path: "/admin/accounts/..%2f..%2f", anon: true},
		// Wrong methods.
		{name: "PUT /servers", method: "PUT", path: "/servers", body: deploy("put")},
		{name: "PATCH /servers/:id", method: "PATCH", path: "/servers/" + uuid, body: `{"status":"ACTIVE"}`},
		{name: "DELETE /billing", method: "DELETE", path: "/billing"},
		{name: "GET advance", method: "GET", path: "/sandbox/clock/advance"},
		{name: "POST /healthz", method: "POST", path: "/healthz"},
		{name: "PUT /auth/login", method: "PUT", path: "/auth/login", anon: true},
		{name: "DELETE /auth/me", method: "DELETE", path: "/auth/me"},
		{name: "POST /llms.txt", method: "POST", path: "/llms.txt", anon: true},
		{name: "GET /servers/bulk", method: "GET", path: "/servers/bulk"},
		{name: "PUT /backups/:id", method: "PUT", path: "/backups/" + uuid},
		// Headers.
		{name: "huge bearer", method: "GET", path: "/billing", anon: true,
			header: http.Header{"Authorization": {"Bearer " + strings.Repeat("a", 60000)}}},
		{name: "long Idempotency-Key", method: "POST", path: "/servers", body: deploy("idem"),
			header: http.Header{"Idempotency-Key": {strings.Repeat("k", 300)}}},
	}

	beforeBal := g.billing(t)
	for _, p := range probes {
		req := apiclient.Request{Method: p.method, Path: p.path, Body: p.body, Header: p.header}
		if !p.anon {
			req.Token = g.token
		}
		r, err := j.srv.Client().Send(req)
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		if r.Status < 400 || r.Status >= 500 {
			t.Errorf("%s: want a 4xx: %s", p.name, r)
		}
		if r.Status >= 400 && r.Method != http.MethodHead && strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			var e apiclient.ErrorBody
			r.Decode(t, &e)
			if e.Code == "" || e.Error == "" {
				t.Errorf("%s: an error answer without code or error: %s", p.name, r)
			}
		}
		if exited, err := j.srv.Exited(); exited {
			t.Fatalf("%s: the server died: %v", p.name, err)
		}
	}
	j.srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/healthz"}).Expect(t, http.StatusOK)
	if list := g.servers(t); len(list) != 0 {
		t.Errorf("garbage deployed servers: %+v", list)
	}
	if b := g.billing(t); b != beforeBal {
		t.Errorf("garbage changed the billing: %+v -> %+v", beforeBal, b)
	}
	var tps struct {
		Topups []topupObj `json:"topups"`
	}
	g.call(t, http.MethodGet, "/billing/topups", nil).Expect(t, http.StatusOK).Decode(t, &tps)
	if len(tps.Topups) != 0 {
		t.Errorf("garbage opened top-ups: %+v", tps.Topups)
	}
}
