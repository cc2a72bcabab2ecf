package contract

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/ssh"
)

// deployBody is a POST /servers body.
func deployBody(label, plan string) map[string]any {
	return map[string]any{"label": label, "planId": plan, "regionId": "ams"}
}

func bulkBody(label string, count int, plan string) map[string]any {
	return map[string]any{"label": label, "count": count, "planId": plan, "regionId": "ams"}
}

// checkServer fails unless the server object at path has the guide's shape.
func checkServer(t testing.TB, r *response, path, label, status string) {
	t.Helper()
	if _, err := uuid.Parse(r.str(path + ".id")); err != nil {
		t.Errorf("%s.id is not a uuid: %s", path, r)
	}
	if r.str(path+".label") != label || r.str(path+".status") != status {
		t.Errorf("%s: want label %q status %q, got %s", path, label, status, r)
	}
	for _, f := range []string{"region", "plan", "hourlyPrice", "createdAt"} {
		if r.str(path+"."+f) == "" {
			t.Errorf("%s.%s missing: %s", path, f, r)
		}
	}
	if _, err := time.Parse(time.RFC3339, r.str(path+".createdAt")); err != nil {
		t.Errorf("%s.createdAt is not RFC 3339: %s", path, r)
	}
	ip, present := r.get(path + ".ipv4")
	if !present {
		t.Errorf("%s.ipv4 missing (must be null until ACTIVE): %s", path, r)
	}
	if status == "ACTIVE" {
		if s, _ := ip.(string); !isIPv4(s) {
			t.Errorf("%s: ACTIVE without an IPv4: %s", path, r)
		}
	} else if ip != nil {
		t.Errorf("%s: ipv4 must be null while %s: %s", path, status, r)
	}
}

func isIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 0 || n > 255 || fmt.Sprint(n) != p {
			return false
		}
	}
	return true
}

func deployTests(t *testing.T, h *harness) {
	t.Run("stored SSH keys are installed by default, sshKeyIds pick some, an unknown id is a 400 naming it", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		const pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL7S52dIvTk7Te8YlVUXy2cXHg2jXj2Xch4Ij+BQY0nc agent@example.com"
		k := u.do(t, http.MethodPost, "/ssh-keys", map[string]string{"name": "laptop", "publicKey": pub}).want(t, http.StatusCreated)
		fp, id := k.str("sshKey.fingerprint"), k.str("sshKey.id")
		if !strings.HasPrefix(fp, "SHA256:") {
			t.Fatalf("stored key: %s", k)
		}
		if l := u.do(t, http.MethodGet, "/ssh-keys", nil).want(t, http.StatusOK); l.str("sshKeys.0.id") != id {
			t.Errorf("GET /ssh-keys: %s", l)
		}
		r := u.do(t, http.MethodPost, "/servers", deployBody("keyed", "vc2-1c-1gb")).want(t, http.StatusAccepted)
		if r.str("server.sshKeys.0") != fp || r.str("server.sshUser") != "root" || r.num("server.sshPort") != 22 {
			t.Errorf("a deploy without keys did not get the stored one: %s", r)
		}
		body := map[string]any{"label": "by-id", "planId": "vc2-1c-1gb", "regionId": "ams", "sshKeyIds": []string{id}}
		if r := u.do(t, http.MethodPost, "/servers", body).want(t, http.StatusAccepted); r.str("server.sshKeys.0") != fp {
			t.Errorf("sshKeyIds: %s", r)
		}
		body["sshKeyIds"] = []string{"6f1c2b1e-0000-4000-8000-000000000001"}
		u.do(t, http.MethodPost, "/servers", body).wantError(t, http.StatusBadRequest, "validation_failed").wantDetail(t, "sshKeyIds[0]")
		u.do(t, http.MethodDelete, "/ssh-keys/"+id, nil).want(t, http.StatusOK)
		if r := u.do(t, http.MethodPost, "/servers", deployBody("keyless", "vc2-1c-1gb")).want(t, http.StatusAccepted); r.list("server.sshKeys") != nil {
			t.Errorf("a deploy after the key was deleted still got it: %s", r)
		}
	})

	t.Run("deploy answers 202 PROVISIONING with ipv4 null at the plan's hourly price", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		r := u.do(t, http.MethodPost, "/servers", deployBody("my-bot", "vc2-1c-1gb")).want(t, http.StatusAccepted)
		checkServer(t, r, "server", "my-bot", "PROVISIONING")
		if r.str("server.hourlyPrice") != "0.014" || r.str("server.plan") != "vc2-1c-1gb" || r.str("server.region") != "ams" {
			t.Errorf("want plan vc2-1c-1gb in ams at 0.014, got %s", r)
		}
		id := r.str("server.id")

		// Read-your-writes: the very next reads show the server.
		got := u.server(t, id)
		checkServer(t, got, "server", "my-bot", "PROVISIONING")
		if got.str("server.id") != id {
			t.Errorf("GET /servers/%s answered another server: %s", id, got)
		}
		if ids := u.serverIDs(t); !reflect.DeepEqual(ids, []string{id}) {
			t.Errorf("GET /servers: want [%s], got %v", id, ids)
		}
		// The first hour is charged at once and the server is billed.
		u.wantBalance(t, "9.986", "0.014")
	})

	t.Run("GET /billing of a new account is the signup credit and no spend", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.wantBalance(t, "10.00", "0.00")
		r := u.do(t, http.MethodGet, "/servers", nil).want(t, http.StatusOK)
		if l, ok := r.get("servers"); !ok || l == nil || len(r.list("servers")) != 0 {
			t.Errorf("want an empty servers array, got %s", r)
		}
	})

	t.Run("deploy rejects unknown plan or region and bad labels with 400 and deploys nothing", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.do(t, http.MethodPost, "/servers", deployBody("ok", "vc2-99c")).wantDetail(t, "planId")
		u.do(t, http.MethodPost, "/servers", map[string]any{"label": "ok", "planId": "vc2-1c-1gb", "regionId": "mars"}).
			wantDetail(t, "regionId")
		u.do(t, http.MethodPost, "/servers", map[string]any{"label": "ok"}).wantDetail(t, "planId").wantDetail(t, "regionId")
		for _, label := range []string{"", "my bot", "bot/1", "bøt", strings.Repeat("a", 65), "semi;colon"} {
			u.do(t, http.MethodPost, "/servers", deployBody(label, "vc2-1c-1gb")).wantDetail(t, "label")
		}
		u.do(t, http.MethodPost, "/servers", map[string]any{"label": "ok", "planId": "vc2-1c-1gb", "regionId": "ams", "status": "ACTIVE"}).
			wantDetail(t, "status")
		u.do(t, http.MethodPost, "/servers", `{"label":"ok","planId":"vc2-1c-1gb","regionId":"ams"`).wantError(t, http.StatusBadRequest, "")
		if ids := u.serverIDs(t); len(ids) != 0 {
			t.Fatalf("refused deploys created servers %v", ids)
		}
		u.wantBalance(t, "10.00", "0.00")
		// The label boundary: 64 characters of the allowed alphabet pass.
		long := strings.Repeat("a", 60) + "._-9"
		r := u.do(t, http.MethodPost, "/servers", deployBody(long, "vc2-1c-1gb")).want(t, http.StatusAccepted)
		checkServer(t, r, "server", long, "PROVISIONING")
	})

	t.Run("deploy with valid sshKeys answers their fingerprints and rejects an invalid key with 400", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		var keys, fps []string
		for range 2 {
			pub, _, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			sk, err := ssh.NewPublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sk)))+" agent@example")
			fps = append(fps, ssh.FingerprintSHA256(sk))
		}
		body := deployBody("keyed", "vc2-1c-1gb")
		body["sshKeys"] = keys
		r := u.do(t, http.MethodPost, "/servers", body).want(t, http.StatusAccepted)
		if got := r.list("server.sshKeys"); len(got) != 2 || got[0] != fps[0] || got[1] != fps[1] {
			t.Errorf("want sshKeys %v, got %s", fps, r)
		}
		g := u.server(t, r.str("server.id"))
		if got := g.list("server.sshKeys"); len(got) != 2 || got[0] != fps[0] || got[1] != fps[1] {
			t.Errorf("GET: want sshKeys %v, got %s", fps, g)
		}

		for _, bad := range []string{"ssh-ed25519 AAAAnot-base64", "hello", keys[0] + "\n" + keys[1]} {
			body := deployBody("keyed-bad", "vc2-1c-1gb")
			body["sshKeys"] = []string{bad}
			u.do(t, http.MethodPost, "/servers", body).wantDetail(t, "sshKeys[0]")
		}
		body = deployBody("keyed-bad", "vc2-1c-1gb")
		body["sshKeys"] = []string{keys[0], "ssh-rsa AAAA"}
		u.do(t, http.MethodPost, "/servers", body).wantDetail(t, "sshKeys[1]")
		if n := len(u.serverIDs(t)); n != 1 {
			t.Errorf("invalid keys deployed: %d servers", n)
		}
	})
}

func bulkTests(t *testing.T, h *harness) {
	t.Run("bulk deploy answers 202 with labels suffixed -1..-N, listed oldest first", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		r := u.do(t, http.MethodPost, "/servers/bulk", bulkBody("fleet", 4, "vc2-1c-2gb")).want(t, http.StatusAccepted)
		if n := len(r.list("servers")); n != 4 {
			t.Fatalf("want 4 servers, got %s", r)
		}
		var ids []string
		seen := map[string]bool{}
		for i := range 4 {
			p := "servers." + itoa(i)
			checkServer(t, r, p, fmt.Sprintf("fleet-%d", i+1), "PROVISIONING")
			if r.str(p+".hourlyPrice") != "0.025" {
				t.Errorf("%s: want hourlyPrice 0.025, got %s", p, r)
			}
			id := r.str(p + ".id")
			if seen[id] {
				t.Errorf("duplicate id %s", id)
			}
			seen[id] = true
			ids = append(ids, id)
		}
		if got := u.serverIDs(t); !reflect.DeepEqual(got, ids) {
			t.Errorf("GET /servers: want %v (oldest first), got %v", ids, got)
		}
		u.wantBalance(t, "9.90", "0.10")
	})

	t.Run("bulk count outside 1..10 is 400", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		for _, n := range []int{0, -1, 11, 100} {
			u.do(t, http.MethodPost, "/servers/bulk", bulkBody("fleet", n, "vc2-1c-1gb")).wantDetail(t, "count")
		}
		u.do(t, http.MethodPost, "/servers/bulk", map[string]any{"label": "fleet", "planId": "vc2-1c-1gb", "regionId": "ams"}).
			wantDetail(t, "count")
		u.do(t, http.MethodPost, "/servers/bulk", map[string]any{"label": "fleet", "count": "3", "planId": "vc2-1c-1gb", "regionId": "ams"}).
			wantDetail(t, "count")
		if n := len(u.serverIDs(t)); n != 0 {
			t.Errorf("refused bulks deployed %d servers", n)
		}
	})

	t.Run("a bulk label valid alone but over 64 characters with its suffix is 400", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody(strings.Repeat("b", 63), 1, "vc2-1c-1gb")).wantDetail(t, "label")
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody(strings.Repeat("b", 62), 10, "vc2-1c-1gb")).wantDetail(t, "label")
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("bad label", 2, "vc2-1c-1gb")).wantDetail(t, "label")
		if n := len(u.serverIDs(t)); n != 0 {
			t.Fatalf("refused bulks deployed %d servers", n)
		}
		// Exactly 64 with the suffix is fine.
		r := u.do(t, http.MethodPost, "/servers/bulk", bulkBody(strings.Repeat("b", 61), 9, "vc2-1c-1gb")).want(t, http.StatusAccepted)
		checkServer(t, r, "servers.8", strings.Repeat("b", 61)+"-9", "PROVISIONING")
	})
}

func limitTests(t *testing.T, h *harness) {
	t.Run("the 11th live server is 403 server_limit", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("ten", 10, "vc2-1c-1gb")).want(t, http.StatusAccepted)
		r := u.do(t, http.MethodPost, "/servers", deployBody("eleven", "vc2-1c-1gb")).wantError(t, http.StatusForbidden, "server_limit")
		if !strings.Contains(strings.ToLower(r.str("error")), "limit") {
			t.Errorf("the 403 does not say it is the limit: %s", r)
		}
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("more", 1, "vc2-1c-1gb")).wantError(t, http.StatusForbidden, "server_limit")
		if n := len(u.serverIDs(t)); n != 10 {
			t.Errorf("want 10 servers, got %d", n)
		}
		u.wantBalance(t, "9.86", "0.14")
	})

	t.Run("a bulk that would pass the limit is refused whole", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("seven", 7, "vc2-1c-1gb")).want(t, http.StatusAccepted)
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("four", 4, "vc2-1c-1gb")).wantError(t, http.StatusForbidden, "server_limit")
		if n := len(u.serverIDs(t)); n != 7 {
			t.Errorf("want 7 servers, got %d", n)
		}
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("three", 3, "vc2-1c-1gb")).want(t, http.StatusAccepted)
	})
}

// fanOut runs n copies of f at once and returns their answers.
func fanOut(n int, f func(i int) *response) []*response {
	out := make([]*response, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

// statusCounts counts answers by status.
func statusCounts(rs []*response) map[int]int {
	c := map[int]int{}
	for _, r := range rs {
		c[r.Status]++
	}
	return c
}

func concurrencyTests(t *testing.T, h *harness) {
	t.Run("30 simultaneous deploys from one account accept exactly 10 and refuse 20 with 403", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.bearer(t)
		rs := fanOut(30, func(i int) *response {
			return u.do(t, http.MethodPost, "/servers", deployBody(fmt.Sprintf("race-%d", i), "vc2-1c-1gb"))
		})
		counts := statusCounts(rs)
		if counts[http.StatusAccepted] != 10 || counts[http.StatusForbidden] != 20 {
			for _, r := range rs {
				if r.Status != http.StatusAccepted && r.Status != http.StatusForbidden {
					t.Logf("unexpected: %s", r)
				}
			}
			t.Fatalf("want 10 x 202 and 20 x 403, got %v", counts)
		}
		accepted := map[string]bool{}
		for _, r := range rs {
			switch r.Status {
			case http.StatusAccepted:
				accepted[r.str("server.id")] = true
			case http.StatusForbidden:
				if r.str("code") != "server_limit" {
					t.Errorf("403 is not the limit: %s", r)
				}
			}
		}
		ids := u.serverIDs(t)
		if len(ids) != 10 || len(accepted) != 10 {
			t.Fatalf("want the 10 accepted servers listed, got %d listed, %d distinct accepted", len(ids), len(accepted))
		}
		for _, id := range ids {
			if !accepted[id] {
				t.Errorf("listed server %s was never accepted", id)
			}
		}
		u.wantBalance(t, "9.86", "0.14")
	})
}

func idempotencyTests(t *testing.T, h *harness) {
	t.Run("same Idempotency-Key and body replays the first answer and deploys nothing new", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		key := uuid.NewString()
		first := u.do(t, http.MethodPost, "/servers", deployBody("idem", "vc2-1c-1gb"), "Idempotency-Key", key).
			want(t, http.StatusAccepted)
		if first.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("a first answer is marked replayed")
		}
		again := u.do(t, http.MethodPost, "/servers", deployBody("idem", "vc2-1c-1gb"), "Idempotency-Key", key).
			want(t, http.StatusAccepted)
		if again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay without Idempotent-Replayed: true")
		}
		if !reflect.DeepEqual(first.JSON, again.JSON) {
			t.Errorf("replay differs:\n first: %s\n again: %s", first.Raw, again.Raw)
		}
		if ids := u.serverIDs(t); len(ids) != 1 || ids[0] != first.str("server.id") {
			t.Errorf("want only %s, got %v", first.str("server.id"), ids)
		}
		u.wantBalance(t, "9.986", "0.014")

		// Bulk: the whole list is replayed.
		bkey := uuid.NewString()
		b1 := u.do(t, http.MethodPost, "/servers/bulk", bulkBody("ib", 3, "vc2-1c-1gb"), "Idempotency-Key", bkey).
			want(t, http.StatusAccepted)
		b2 := u.do(t, http.MethodPost, "/servers/bulk", bulkBody("ib", 3, "vc2-1c-1gb"), "Idempotency-Key", bkey).
			want(t, http.StatusAccepted)
		if b2.Header.Get("Idempotent-Replayed") != "true" || !reflect.DeepEqual(b1.JSON, b2.JSON) {
			t.Errorf("bulk replay differs:\n first: %s\n again: %s", b1.Raw, b2.Raw)
		}
		if n := len(u.serverIDs(t)); n != 4 {
			t.Errorf("want 4 servers, got %d", n)
		}
		// A deploy without a key is a new deploy every time.
		u.deploy(t, "idem", "vc2-1c-1gb")
		u.deploy(t, "idem", "vc2-1c-1gb")
		if n := len(u.serverIDs(t)); n != 6 {
			t.Errorf("want 6 servers, got %d", n)
		}
	})

	t.Run("same Idempotency-Key with a different body is 422", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		key := uuid.NewString()
		u.do(t, http.MethodPost, "/servers", deployBody("idem", "vc2-1c-1gb"), "Idempotency-Key", key).want(t, http.StatusAccepted)
		u.do(t, http.MethodPost, "/servers", deployBody("idem-2", "vc2-1c-1gb"), "Idempotency-Key", key).
			wantError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		u.do(t, http.MethodPost, "/servers", deployBody("idem", "vc2-1c-2gb"), "Idempotency-Key", key).
			wantError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("idem", 1, "vc2-1c-1gb"), "Idempotency-Key", key).
			wantError(t, http.StatusUnprocessableEntity, "idempotency_key_reused")
		if n := len(u.serverIDs(t)); n != 1 {
			t.Errorf("want 1 server, got %d", n)
		}
	})

	t.Run("an Idempotency-Key is scoped to the account", func(t *testing.T) {
		t.Parallel()
		a, b := h.register(t), h.register(t)
		key := "shared-key-" + uuid.NewString()
		ra := a.do(t, http.MethodPost, "/servers", deployBody("scoped", "vc2-1c-1gb"), "Idempotency-Key", key).want(t, http.StatusAccepted)
		rb := b.do(t, http.MethodPost, "/servers", deployBody("scoped", "vc2-1c-1gb"), "Idempotency-Key", key).want(t, http.StatusAccepted)
		if rb.Header.Get("Idempotent-Replayed") != "" || rb.str("server.id") == ra.str("server.id") {
			t.Errorf("another account's key replayed: %s", rb)
		}
		if ids := b.serverIDs(t); len(ids) != 1 || ids[0] != rb.str("server.id") {
			t.Errorf("account b: want its own server, got %v", ids)
		}
		b.do(t, http.MethodGet, "/servers/"+ra.str("server.id"), nil).wantError(t, http.StatusNotFound, "not_found")
	})

	t.Run("simultaneous requests with one Idempotency-Key deploy once", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.bearer(t)
		key := uuid.NewString()
		rs := fanOut(10, func(int) *response {
			return u.do(t, http.MethodPost, "/servers", deployBody("once", "vc2-1c-1gb"), "Idempotency-Key", key)
		})
		ids := map[string]bool{}
		fresh := 0
		for _, r := range rs {
			if r.Status != http.StatusAccepted {
				t.Fatalf("want 202, got %s", r)
			}
			ids[r.str("server.id")] = true
			if r.Header.Get("Idempotent-Replayed") != "true" {
				fresh++
			}
		}
		if len(ids) != 1 || fresh != 1 {
			t.Errorf("want one server id and one first answer, got ids %v and %d unreplayed answers", ids, fresh)
		}
		if n := len(u.serverIDs(t)); n != 1 {
			t.Errorf("want 1 server, got %d", n)
		}
		u.wantBalance(t, "9.986", "0.014")
	})

	t.Run("an Idempotency-Key over 255 characters is 400", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.do(t, http.MethodPost, "/servers", deployBody("k", "vc2-1c-1gb"), "Idempotency-Key", strings.Repeat("k", 256)).
			wantDetail(t, "Idempotency-Key")
		if n := len(u.serverIDs(t)); n != 0 {
			t.Errorf("want no server, got %d", n)
		}
	})
}

func destroyTests(t *testing.T, h *harness) {
	t.Run("DELETE answers 202 ok and a second DELETE is 409", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		id := u.deploy(t, "doomed", "vc2-1c-1gb")
		r := u.do(t, http.MethodDelete, "/servers/"+id, nil).want(t, http.StatusAccepted)
		if v, _ := r.get("ok"); v != true {
			t.Errorf("want {\"ok\":true}, got %s", r)
		}
		u.do(t, http.MethodDelete, "/servers/"+id, nil).wantError(t, http.StatusConflict, "")
		// Billing stopped at once; the server is being destroyed.
		s := u.server(t, id)
		if st := s.str("server.status"); st != "DESTROYING" && st != "DESTROYED" {
			t.Errorf("want DESTROYING, got %s", s)
		}
		u.wantBalance(t, "9.986", "0.00")
	})

	t.Run("another account's server, an unknown id and a non-uuid id are 404", func(t *testing.T) {
		t.Parallel()
		owner, other := h.register(t), h.register(t)
		id := owner.deploy(t, "mine", "vc2-1c-1gb")
		for _, path := range []string{"/servers/" + id, "/servers/" + uuid.NewString(), "/servers/not-a-uuid",
			"/servers/" + strings.ToUpper(uuid.NewString()), "/servers/1"} {
			other.do(t, http.MethodGet, path, nil).wantError(t, http.StatusNotFound, "not_found")
			other.do(t, http.MethodDelete, path, nil).wantError(t, http.StatusNotFound, "not_found")
		}
		// Never reveal existence: another account's server answers exactly
		// like one that does not exist.
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			theirs := other.do(t, method, "/servers/"+id, nil)
			none := other.do(t, method, "/servers/"+uuid.NewString(), nil)
			if !bytes.Equal(theirs.Raw, none.Raw) {
				t.Errorf("%s: another account's server %s differs from an unknown one %s", method, theirs.Raw, none.Raw)
			}
		}
		// Untouched by the other account's attempts.
		checkServer(t, owner.server(t, id), "server", "mine", "PROVISIONING")
		if ids := other.serverIDs(t); len(ids) != 0 {
			t.Errorf("other account lists %v", ids)
		}
	})
}
