package contract

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// accountClockTests: each account has its own sandbox clock. Every test has
// a stack of its own, since the operator's move changes every account.
func accountClockTests(t *testing.T, newModel func(t *testing.T, store eventstore.Store) projections.Model) {
	stack := func(t *testing.T) *harness { return newHarness(t, newModel, config{}) }

	t.Run("an account's clock move bills, provisions, backs up and expires only that account", func(t *testing.T) {
		t.Parallel()
		h := stack(t)
		a, b := h.register(t), h.register(t)
		aSrv, _ := a.activeServer(t, "a-web", "vc2-1c-1gb")
		bSrv, _ := b.activeServer(t, "b-web", "vc2-1c-1gb")
		bBackup := b.do(t, http.MethodPost, "/backups", map[string]string{"serverId": bSrv}).
			want(t, http.StatusAccepted).str("backup.id")
		bPending := b.deploy(t, "b-pending", "vc2-1c-1gb")
		bToken := b.token
		// Not the new server's own page: it shows its root password once.
		before := b.snapshot(t, bSrv)
		bLedger := b.do(t, http.MethodGet, "/billing/ledger", nil).want(t, http.StatusOK).JSON

		aToken := a.token
		// Three hours of A's time: three charges on A, its token expired.
		a.do(t, http.MethodPost, "/sandbox/clock/advance", map[string]int{"seconds": 3 * 3600}).want(t, http.StatusOK)
		h.do(t, http.MethodGet, "/billing", nil, "Authorization", "Bearer "+aToken).
			wantError(t, http.StatusUnauthorized, "token_expired")
		a.wantBalance(t, "9.944", "0.014")
		if n := len(a.do(t, http.MethodGet, "/billing/ledger", nil).want(t, http.StatusOK).list("transactions")); n != 5 {
			t.Errorf("A's ledger after three hours: %d transactions, want 5 (credit, first hour, three hours)", n)
		}
		aClock := a.do(t, http.MethodGet, "/sandbox/clock", nil).want(t, http.StatusOK)
		if got := aClock.num("offsetSeconds"); got != 3*3600+61 {
			t.Errorf("A's offsetSeconds %d, want %d", got, 3*3600+61)
		}

		// B: the same token still works, nothing charged, provisioned,
		// backed up or expired; its clock did not move.
		if r := h.do(t, http.MethodGet, "/auth/me", nil, "Authorization", "Bearer "+bToken); r.Status != http.StatusOK {
			t.Errorf("B's token after A's move: %s", r)
		}
		if after := b.snapshot(t, bSrv); !reflect.DeepEqual(before, after) {
			t.Errorf("A's clock move changed B:\n before: %v\n after:  %v", before, after)
		}
		if after := b.do(t, http.MethodGet, "/billing/ledger", nil).want(t, http.StatusOK).JSON; !reflect.DeepEqual(bLedger, after) {
			t.Errorf("A's clock move changed B's ledger:\n before: %v\n after:  %v", bLedger, after)
		}
		if st := b.do(t, http.MethodGet, "/backups/"+bBackup, nil).want(t, http.StatusOK).str("backup.status"); st != "PENDING" {
			t.Errorf("B's backup after A's move: %s, want PENDING", st)
		}
		if st := b.server(t, bPending).str("server.status"); st != "PROVISIONING" {
			t.Errorf("B's new server after A's move: %s, want PROVISIONING", st)
		}
		bClock := b.do(t, http.MethodGet, "/sandbox/clock", nil).want(t, http.StatusOK)
		if got := bClock.num("offsetSeconds"); got != 61 {
			t.Errorf("B's offsetSeconds %d, want 61 (its own move only)", got)
		}
		at, _ := time.Parse(time.RFC3339, aClock.str("now"))
		bt, _ := time.Parse(time.RFC3339, bClock.str("now"))
		if d := at.Sub(bt); d < 3*time.Hour-time.Minute || d > 3*time.Hour+time.Minute {
			t.Errorf("A is %s ahead of B, want 3 h", d)
		}

		// B's own move does B's work, and A's server is left as it was.
		aBefore := a.snapshot(t, aSrv)
		b.advance(t, backupDelay+time.Second)
		if st := b.do(t, http.MethodGet, "/backups/"+bBackup, nil).want(t, http.StatusOK).str("backup.status"); st != "AVAILABLE" {
			t.Errorf("B's backup after B's move: %s", st)
		}
		if st := b.server(t, bPending).str("server.status"); st != "ACTIVE" {
			t.Errorf("B's new server after B's move: %s", st)
		}
		if after := a.snapshot(t, aSrv); !reflect.DeepEqual(aBefore, after) {
			t.Errorf("B's clock move changed A:\n before: %v\n after:  %v", aBefore, after)
		}
	})

	t.Run("a move that would charge more than 1000 server-hours at once is a 400 that changes nothing", func(t *testing.T) {
		t.Parallel()
		h := stack(t)
		u := h.register(t)
		u.topUp(t, "100.00")
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("fleet", 10, "vc2-1c-1gb")).want(t, http.StatusAccepted)
		before := u.snapshot(t)
		clock := u.do(t, http.MethodGet, "/sandbox/clock", nil).want(t, http.StatusOK).num("offsetSeconds")
		// 10 billed servers: 101 hours is over 1000 charges.
		r := u.do(t, http.MethodPost, "/sandbox/clock/advance", map[string]int{"seconds": 101 * 3600})
		r.wantDetail(t, "seconds")
		if msg := r.str("details.seconds"); !strings.Contains(msg, "smaller steps") || !strings.Contains(msg, "1000") {
			t.Errorf("the refusal does not say to move in smaller steps: %s", r)
		}
		if after := u.snapshot(t); !reflect.DeepEqual(before, after) {
			t.Errorf("a refused move changed the account:\n before: %v\n after:  %v", before, after)
		}
		if after := u.do(t, http.MethodGet, "/sandbox/clock", nil).want(t, http.StatusOK).num("offsetSeconds"); after != clock {
			t.Errorf("a refused move moved the clock: offsetSeconds %d -> %d", clock, after)
		}
		// In steps it works: 99 hours, then more.
		u.do(t, http.MethodPost, "/sandbox/clock/advance", map[string]int{"seconds": 99 * 3600}).want(t, http.StatusOK)
		u.do(t, http.MethodPost, "/sandbox/clock/advance", map[string]int{"seconds": 2 * 3600}).want(t, http.StatusOK)
	})

	t.Run("the operator's move moves every account, and the account's own moves add to it", func(t *testing.T) {
		t.Parallel()
		h := stack(t)
		a, b := h.register(t), h.register(t)
		a.advance(t, time.Hour)
		h.admin(t, http.MethodPost, "/admin/sandbox/clock/advance", map[string]int{"seconds": 600}).want(t, http.StatusOK)
		h.do(t, http.MethodPost, "/admin/sandbox/clock/advance", map[string]int{"seconds": 600}, b.bearer(t)...).
			wantError(t, http.StatusUnauthorized, "unauthorized")
		ra := a.do(t, http.MethodGet, "/sandbox/clock", nil).want(t, http.StatusOK)
		rb := b.do(t, http.MethodGet, "/sandbox/clock", nil).want(t, http.StatusOK)
		if ra.num("offsetSeconds") != 3600 || ra.num("sharedOffsetSeconds") != 600 ||
			rb.num("offsetSeconds") != 0 || rb.num("sharedOffsetSeconds") != 600 {
			t.Errorf("clocks after A's hour and the operator's 10 minutes: A %s, B %s", ra, rb)
		}
	})
}
