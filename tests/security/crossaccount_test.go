package security

import (
	"net/http"
	"strings"
	"testing"
)

// Another account's ids are unknown ids: every read and every write on a
// server, backup, top-up or SSH key of another account answers 404 (or,
// for a key named in a deploy, the 400 of an unknown key) and both
// accounts stay exactly as they were.
func TestAnotherAccountsIDsAreNotFound(t *testing.T) {
	t.Parallel()
	s := start(t, false)
	owner, intruder := s.register(t), s.register(t)

	key := owner.do(t, http.MethodPost, "/ssh-keys", map[string]string{"name": "laptop", "publicKey": sshKey}).
		Expect(t, http.StatusCreated).Str("sshKey.id")
	server := owner.deploy(t)
	owner.advance(t, 61) // ACTIVE
	backup := owner.do(t, http.MethodPost, "/backups", map[string]string{"serverId": server}).
		Expect(t, http.StatusAccepted).Str("backup.id")
	owner.advance(t, 181) // AVAILABLE
	topup := owner.topup(t, "25.00")
	limit := owner.do(t, http.MethodPost, "/limit-requests", map[string]any{"serverLimit": 20, "reason": "more agents"}).
		Expect(t, http.StatusCreated).Str("limitRequest.id")
	intruder.deploy(t)

	ownerBefore, intruderBefore := owner.state(t), intruder.state(t)
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/servers/" + server, nil},
		{http.MethodGet, "/servers/" + server + "?waitFor=ACTIVE&timeout=1", nil},
		{http.MethodDelete, "/servers/" + server, nil},
		{http.MethodPost, "/backups", map[string]string{"serverId": server}},
		{http.MethodGet, "/backups/" + backup, nil},
		{http.MethodPost, "/backups/" + backup + "/restore", nil},
		{http.MethodDelete, "/backups/" + backup, nil},
		{http.MethodGet, "/billing/topups/" + topup, nil},
		{http.MethodPost, "/sandbox/topups/" + topup + "/pay", nil},
		{http.MethodDelete, "/ssh-keys/" + key, nil},
	} {
		a := intruder.do(t, r.method, r.path, r.body)
		if e := a.ExpectError(t, http.StatusNotFound, "not_found"); strings.Contains(a.String(), owner.id) || strings.Contains(e.Error, owner.email) {
			t.Errorf("%s %s names the owner: %s", r.method, r.path, a)
		}
	}
	intruder.do(t, http.MethodPost, "/servers", map[string]any{"label": "x", "planId": "vc2-1c-1gb", "regionId": "ams",
		"sshKeyIds": []string{key}}).ExpectDetail(t, "sshKeyIds[0]")
	for _, list := range []string{"/servers", "/backups", "/billing/topups", "/ssh-keys", "/limit-requests", "/billing/ledger"} {
		a := intruder.do(t, http.MethodGet, list, nil).Expect(t, http.StatusOK)
		for _, id := range []string{server, backup, topup, key, limit, owner.id} {
			if strings.Contains(string(a.Raw), id) {
				t.Errorf("GET %s shows the other account's %s", list, id)
			}
		}
	}
	owner.unchanged(t, ownerBefore, "another account's requests")
	intruder.unchanged(t, intruderBefore, "requests on another account's ids")
}
