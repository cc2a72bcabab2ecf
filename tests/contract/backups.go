package contract

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
)

// checkBackup fails unless the backup object at path has the shape
// and expires 7 days after it was created.
func checkBackup(t testing.TB, r *response, path, serverID, label, status string) {
	t.Helper()
	if _, err := uuid.Parse(r.str(path + ".id")); err != nil {
		t.Errorf("%s.id is not a uuid: %s", path, r)
	}
	if r.str(path+".serverId") != serverID || r.str(path+".label") != label || r.str(path+".status") != status {
		t.Errorf("%s: want serverId %s label %q status %s, got %s", path, serverID, label, status, r)
	}
	if r.str(path+".region") == "" || r.str(path+".plan") == "" {
		t.Errorf("%s: region and plan missing: %s", path, r)
	}
	created, err1 := time.Parse(time.RFC3339, r.str(path+".createdAt"))
	expires, err2 := time.Parse(time.RFC3339, r.str(path+".expiresAt"))
	if err1 != nil || err2 != nil {
		t.Errorf("%s: createdAt and expiresAt must be RFC 3339: %s", path, r)
	} else if expires.Sub(created) != 7*24*time.Hour {
		t.Errorf("%s: expiresAt - createdAt = %s, want 168h: %s", path, expires.Sub(created), r)
	}
}

// backupIDs lists GET /backups ids, in order.
func (u *user) backupIDs(t testing.TB) []string {
	t.Helper()
	r := u.do(t, http.MethodGet, "/backups", nil).want(t, http.StatusOK)
	var ids []string
	for i := range r.list("backups") {
		ids = append(ids, r.str("backups."+itoa(i)+".id"))
	}
	return ids
}

// backup finds one backup in GET /backups (nil when not listed).
func (u *user) backup(t testing.TB, id string) *response {
	t.Helper()
	r := u.do(t, http.MethodGet, "/backups", nil).want(t, http.StatusOK)
	for i := range r.list("backups") {
		if r.str("backups."+itoa(i)+".id") == id {
			one := *r
			one.JSON = map[string]any{"backup": r.list("backups")[i]}
			return &one
		}
	}
	return nil
}

// activeServer deploys a server and advances the clock until it is ACTIVE;
// it returns its id and IPv4.
func (u *user) activeServer(t testing.TB, label, plan string) (id, ip string) {
	t.Helper()
	id = u.deploy(t, label, plan)
	u.advance(t, provisionDelay+time.Second)
	s := u.server(t, id)
	checkServer(t, s, "server", label, "ACTIVE")
	return id, s.str("server.ipv4")
}

// backupRequestTests need no clock: the shared stack.
func backupRequestTests(t *testing.T, h *harness) {
	t.Run("GET /backups of a new account is an empty list", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		r := u.do(t, http.MethodGet, "/backups", nil).want(t, http.StatusOK)
		if v, ok := r.get("backups"); !ok || v == nil || len(r.list("backups")) != 0 {
			t.Errorf("want {\"backups\":[]}, got %s", r)
		}
	})

	t.Run("POST /backups with a missing or malformed serverId is 400", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		for _, body := range []any{map[string]any{}, map[string]any{"serverId": ""}, map[string]any{"serverId": "not-a-uuid"},
			map[string]any{"serverId": 42}, "", "null"} {
			u.do(t, http.MethodPost, "/backups", body).wantDetail(t, "serverId")
		}
		u.do(t, http.MethodPost, "/backups", map[string]any{"serverId": uuid.NewString(), "label": "x"}).wantDetail(t, "label")
		u.do(t, http.MethodPost, "/backups", `{"serverId":`).wantError(t, http.StatusBadRequest, "")
	})

	t.Run("POST /backups of another account's or an unknown server is 404", func(t *testing.T) {
		t.Parallel()
		owner, other := h.register(t), h.register(t)
		id := owner.deploy(t, "theirs", "vc2-1c-1gb")
		other.do(t, http.MethodPost, "/backups", map[string]string{"serverId": id}).wantError(t, http.StatusNotFound, "not_found")
		other.do(t, http.MethodPost, "/backups", map[string]string{"serverId": uuid.NewString()}).wantError(t, http.StatusNotFound, "not_found")
		if ids := other.backupIDs(t); len(ids) != 0 {
			t.Errorf("refused backups listed: %v", ids)
		}
	})

	t.Run("POST /backups of a server that is not ACTIVE is 409", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		prov := u.deploy(t, "provisioning", "vc2-1c-1gb")
		u.do(t, http.MethodPost, "/backups", map[string]string{"serverId": prov}).wantError(t, http.StatusConflict, "invalid_state")
		gone := u.deploy(t, "gone", "vc2-1c-1gb")
		u.do(t, http.MethodDelete, "/servers/"+gone, nil).want(t, http.StatusAccepted)
		u.do(t, http.MethodPost, "/backups", map[string]string{"serverId": gone}).wantError(t, http.StatusConflict, "invalid_state")
		if ids := u.backupIDs(t); len(ids) != 0 {
			t.Errorf("refused backups listed: %v", ids)
		}
	})

	t.Run("restore and delete of an unknown or malformed backup id are 404", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
			u.do(t, http.MethodPost, "/backups/"+id+"/restore", nil).wantError(t, http.StatusNotFound, "not_found")
			u.do(t, http.MethodDelete, "/backups/"+id, nil).wantError(t, http.StatusNotFound, "not_found")
		}
		if ids := u.serverIDs(t); len(ids) != 0 {
			t.Errorf("a refused restore deployed %v", ids)
		}
	})
}

// backupClockTests move the clock; each has a stack of its own.
func backupClockTests(t *testing.T, stack func(t *testing.T, cfg config) *harness) {
	t.Run("backup PENDING -> AVAILABLE, restore onto a new ACTIVE server with a new IP, delete", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{})
		u := h.register(t)
		src, srcIP := u.activeServer(t, "db-1", "vc2-1c-2gb")
		balance, spend := u.billing(t)

		r := u.do(t, http.MethodPost, "/backups", map[string]string{"serverId": src}).want(t, http.StatusAccepted)
		checkBackup(t, r, "backup", src, "db-1", "PENDING")
		if r.str("backup.plan") != "vc2-1c-2gb" || r.str("backup.region") != "ams" {
			t.Errorf("want the server's plan and region, got %s", r)
		}
		bid := r.str("backup.id")
		if ids := u.backupIDs(t); len(ids) != 1 || ids[0] != bid {
			t.Errorf("GET /backups: want [%s], got %v", bid, ids)
		}
		u.do(t, http.MethodPost, "/backups/"+bid+"/restore", nil).wantError(t, http.StatusConflict, "invalid_state")

		u.advance(t, backupDelay)
		checkBackup(t, u.backup(t, bid), "backup", src, "db-1", "AVAILABLE")
		// Backups are free.
		u.wantBalance(t, balance, spend)

		res := u.do(t, http.MethodPost, "/backups/"+bid+"/restore", nil).want(t, http.StatusAccepted)
		checkServer(t, res, "server", "db-1", "PROVISIONING")
		nid := res.str("server.id")
		if nid == src || res.str("server.plan") != "vc2-1c-2gb" || res.str("server.region") != "ams" || res.str("server.hourlyPrice") != "0.025" {
			t.Errorf("want a new vc2-1c-2gb server in ams, got %s", res)
		}
		checkServer(t, u.server(t, nid), "server", "db-1", "PROVISIONING")
		// The restore is charged its first hour like a deploy.
		u.wantBalance(t, "9.95", "0.05")
		u.advance(t, provisionDelay+time.Second)
		got := u.server(t, nid)
		checkServer(t, got, "server", "db-1", "ACTIVE")
		if got.str("server.ipv4") == srcIP {
			t.Errorf("the restored server has the source's IP %s", srcIP)
		}
		if ids := u.serverIDs(t); len(ids) != 2 || ids[0] != src || ids[1] != nid {
			t.Errorf("GET /servers: want [%s %s], got %v", src, nid, ids)
		}

		// A second backup, listed after the first, then deleted.
		second := u.do(t, http.MethodPost, "/backups", map[string]string{"serverId": nid}).want(t, http.StatusAccepted).str("backup.id")
		if ids := u.backupIDs(t); len(ids) != 2 || ids[0] != bid || ids[1] != second {
			t.Errorf("GET /backups: want [%s %s] (oldest first), got %v", bid, second, ids)
		}
		other := h.register(t)
		other.do(t, http.MethodDelete, "/backups/"+second, nil).wantError(t, http.StatusNotFound, "not_found")
		theirs := other.do(t, http.MethodPost, "/backups/"+bid+"/restore", nil).wantError(t, http.StatusNotFound, "not_found")
		none := other.do(t, http.MethodPost, "/backups/"+uuid.NewString()+"/restore", nil)
		if !bytes.Equal(theirs.Raw, none.Raw) {
			t.Errorf("restoring another account's backup %s differs from an unknown one %s", theirs.Raw, none.Raw)
		}
		if n := len(other.serverIDs(t)); n != 0 {
			t.Errorf("another account restored a backup that is not theirs")
		}
		if ids := other.backupIDs(t); len(ids) != 0 {
			t.Errorf("another account sees backups %v", ids)
		}
		d := u.do(t, http.MethodDelete, "/backups/"+second, nil).want(t, http.StatusAccepted)
		if v, _ := d.get("ok"); v != true {
			t.Errorf("want {\"ok\":true}, got %s", d)
		}
		// Deleted: EXPIRED at once, listed and readable for 7 days, no
		// longer restorable or deletable.
		if ids := u.backupIDs(t); len(ids) != 2 || ids[0] != bid || ids[1] != second {
			t.Errorf("GET /backups after delete: want [%s %s], got %v", bid, second, ids)
		}
		gone := u.do(t, http.MethodGet, "/backups/"+second, nil).want(t, http.StatusOK)
		if st := gone.str("backup.status"); st != "EXPIRED" {
			t.Errorf("a deleted backup is %s, want EXPIRED", st)
		}
		if st := u.backup(t, second).str("backup.status"); st != "EXPIRED" {
			t.Errorf("GET /backups shows a deleted backup %s, want EXPIRED", st)
		}
		u.do(t, http.MethodDelete, "/backups/"+second, nil).wantError(t, http.StatusConflict, "invalid_state")
		u.do(t, http.MethodPost, "/backups/"+second+"/restore", nil).wantError(t, http.StatusConflict, "invalid_state")
		// A deleted backup does not come back once its snapshot would have completed.
		u.advance(t, backupDelay)
		if st := u.backup(t, second).str("backup.status"); st != "EXPIRED" {
			t.Errorf("GET /backups: the deleted backup is %s, want EXPIRED", st)
		}
	})

	t.Run("a backup of a sandbox-fail-backup server ends in ERROR and cannot be restored", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{})
		u := h.register(t)
		src, _ := u.activeServer(t, "sandbox-fail-backup-db", "vc2-1c-1gb")
		bid := u.do(t, http.MethodPost, "/backups", map[string]string{"serverId": src}).want(t, http.StatusAccepted).str("backup.id")
		u.advance(t, backupDelay+time.Second)
		b := u.backup(t, bid)
		if b == nil {
			t.Fatalf("an ERROR backup must stay listed")
		}
		checkBackup(t, b, "backup", src, "sandbox-fail-backup-db", "ERROR")
		u.do(t, http.MethodPost, "/backups/"+bid+"/restore", nil).wantError(t, http.StatusConflict, "invalid_state")
		if n := len(u.serverIDs(t)); n != 1 {
			t.Errorf("a refused restore deployed: %d servers", n)
		}
		u.do(t, http.MethodDelete, "/backups/"+bid, nil).want(t, http.StatusAccepted)
	})

	t.Run("a backup survives its server's destruction, restores, is EXPIRED after 7 days and gone 7 days later", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{TokenTTL: 16 * 24 * time.Hour})
		u := h.register(t)
		u.topUp(t, "20.00") // two weeks of a server
		src, srcIP := u.activeServer(t, "web", "vc2-1c-1gb")
		bid := u.do(t, http.MethodPost, "/backups", map[string]string{"serverId": src}).want(t, http.StatusAccepted).str("backup.id")
		u.advance(t, backupDelay)
		u.do(t, http.MethodDelete, "/servers/"+src, nil).want(t, http.StatusAccepted)
		u.advance(t, destroyDelay+time.Second)
		if st := u.server(t, src).str("server.status"); st != "DESTROYED" {
			t.Fatalf("want the source DESTROYED, got %s", st)
		}
		checkBackup(t, u.backup(t, bid), "backup", src, "web", "AVAILABLE")

		nid := u.do(t, http.MethodPost, "/backups/"+bid+"/restore", nil).want(t, http.StatusAccepted).str("server.id")
		u.advance(t, provisionDelay+time.Second)
		got := u.server(t, nid)
		checkServer(t, got, "server", "web", "ACTIVE")
		if got.str("server.ipv4") == srcIP {
			t.Errorf("restored server reuses IP %s", srcIP)
		}

		u.advance(t, 7*24*time.Hour)
		// Expired: EXPIRED, listed and readable, no longer restorable.
		if ids := u.backupIDs(t); len(ids) != 1 || ids[0] != bid {
			t.Errorf("want the backup listed 7 days on, got %v", ids)
		}
		exp := u.do(t, http.MethodGet, "/backups/"+bid+"?waitFor=EXPIRED&timeout=1", nil).want(t, http.StatusOK)
		checkBackup(t, exp, "backup", src, "web", "EXPIRED")
		u.do(t, http.MethodPost, "/backups/"+bid+"/restore", nil).wantError(t, http.StatusConflict, "invalid_state")
		u.do(t, http.MethodDelete, "/backups/"+bid, nil).wantError(t, http.StatusConflict, "invalid_state")
		// A week after it expired, it is gone.
		u.advance(t, 7*24*time.Hour)
		if ids := u.backupIDs(t); len(ids) != 0 {
			t.Errorf("want no backup 14 days on, got %v", ids)
		}
		u.do(t, http.MethodGet, "/backups/"+bid, nil).wantError(t, http.StatusNotFound, "not_found")
		u.do(t, http.MethodPost, "/backups/"+bid+"/restore", nil).wantError(t, http.StatusNotFound, "not_found")
		u.do(t, http.MethodDelete, "/backups/"+bid, nil).wantError(t, http.StatusNotFound, "not_found")
		if ids := u.serverIDs(t); len(ids) != 1 || ids[0] != nid {
			t.Errorf("GET /servers: want [%s], got %v", nid, ids)
		}
	})

	t.Run("a restore is a deploy: 402 without the money, 403 at the limit, idempotent", func(t *testing.T) {
		t.Parallel()
		// 2.00: the big server and five more leave 1.016, which does not
		// cover an hour of the six (0.984) and the restored one (0.164).
		h := stack(t, config{SignupCredit: "2.00"})
		u := h.register(t)
		src, _ := u.activeServer(t, "big", "vc2-6c-16gb")
		bid := u.do(t, http.MethodPost, "/backups", map[string]string{"serverId": src}).want(t, http.StatusAccepted).str("backup.id")
		u.advance(t, backupDelay)
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("big", 5, "vc2-6c-16gb")).want(t, http.StatusAccepted)
		u.wantBalance(t, "1.016", "0.984")

		u.do(t, http.MethodPost, "/backups/"+bid+"/restore", nil).wantError(t, http.StatusPaymentRequired, "insufficient_balance")
		h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/limit", map[string]int{"limit": 6}).want(t, http.StatusOK)
		u.do(t, http.MethodPost, "/backups/"+bid+"/restore", nil).wantError(t, http.StatusForbidden, "server_limit")
		u.topUp(t, "25.00")
		u.do(t, http.MethodPost, "/backups/"+bid+"/restore", nil).wantError(t, http.StatusForbidden, "server_limit")
		if n := len(u.serverIDs(t)); n != 6 {
			t.Fatalf("refused restores deployed: %d servers", n)
		}
		u.wantBalance(t, "26.016", "0.984")

		h.admin(t, http.MethodPost, "/admin/accounts/"+u.email+"/limit", map[string]int{"limit": 7}).want(t, http.StatusOK)
		key := uuid.NewString()
		first := u.do(t, http.MethodPost, "/backups/"+bid+"/restore", nil, "Idempotency-Key", key).want(t, http.StatusAccepted)
		again := u.do(t, http.MethodPost, "/backups/"+bid+"/restore", nil, "Idempotency-Key", key).want(t, http.StatusAccepted)
		if again.Header.Get("Idempotent-Replayed") != "true" || again.str("server.id") != first.str("server.id") {
			t.Errorf("restore replay: want the first server %s replayed, got %s", first.str("server.id"), again)
		}
		if n := len(u.serverIDs(t)); n != 7 {
			t.Errorf("want 7 servers, got %d", n)
		}
		u.wantBalance(t, "25.852", "1.148")
	})
}
