package contract

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func topupTests(t *testing.T, h *harness) {
	t.Run("a top-up is created PENDING with a pay address, listed, paid once and credited", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		r := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "25.00", "currency": "BTC"}).
			want(t, http.StatusCreated)
		id := r.str("topup.id")
		if _, err := uuid.Parse(id); err != nil {
			t.Errorf("topup.id is not a uuid: %s", r)
		}
		if r.str("topup.status") != "PENDING" || r.str("topup.amount") != "25.00" || r.str("topup.currency") != "BTC" ||
			r.str("topup.payAddress") == "" || r.str("topup.createdAt") == "" {
			t.Errorf("want a PENDING 25.00 BTC top-up with a pay address, got %s", r)
		}
		if v, ok := r.get("topup.paidAt"); !ok || v != nil {
			t.Errorf("want paidAt null, got %s", r)
		}
		u.wantBalance(t, "10.00", "0.00")

		l := u.do(t, http.MethodGet, "/billing/topups", nil).want(t, http.StatusOK)
		if len(l.list("topups")) != 1 || l.str("topups.0.id") != id || l.str("topups.0.status") != "PENDING" {
			t.Errorf("GET /billing/topups: want the pending top-up, got %s", l)
		}
		one := u.do(t, http.MethodGet, "/billing/topups/"+id, nil).want(t, http.StatusOK)
		if one.str("topup.id") != id {
			t.Errorf("GET /billing/topups/%s: %s", id, one)
		}

		p := u.do(t, http.MethodPost, "/sandbox/topups/"+id+"/pay", nil).want(t, http.StatusOK)
		if p.str("topup.status") != "PAID" || p.str("topup.paidAt") == "" {
			t.Errorf("want PAID with paidAt, got %s", p)
		}
		u.wantBalance(t, "35.00", "0.00")
		u.do(t, http.MethodPost, "/sandbox/topups/"+id+"/pay", nil).wantError(t, http.StatusConflict, "")
		u.wantBalance(t, "35.00", "0.00")
		l = u.do(t, http.MethodGet, "/billing/topups", nil).want(t, http.StatusOK)
		if l.str("topups.0.status") != "PAID" {
			t.Errorf("GET /billing/topups: want PAID, got %s", l)
		}
		me := u.do(t, http.MethodGet, "/auth/me", nil).want(t, http.StatusOK)
		if me.str("user.balance") != "35.00" {
			t.Errorf("GET /auth/me: want balance 35.00, got %s", me)
		}
	})

	t.Run("GET /billing/topups/:id?waitFor= answers when the payment lands, or at the timeout", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		id := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "5.00", "currency": "BTC"}).
			want(t, http.StatusCreated).str("topup.id")
		if st := u.do(t, http.MethodGet, "/billing/topups/"+id+"?waitFor=PENDING&timeout=60", nil).
			want(t, http.StatusOK).str("topup.status"); st != "PENDING" {
			t.Errorf("waitFor a status it has: %s", st)
		}
		start := time.Now()
		if st := u.do(t, http.MethodGet, "/billing/topups/"+id+"?waitFor=PAID&timeout=1", nil).
			want(t, http.StatusOK).str("topup.status"); st != "PENDING" || time.Since(start) < time.Second {
			t.Errorf("waitFor PAID for 1 s: %s after %s", st, time.Since(start))
		}
		done := make(chan string, 1)
		go func() {
			done <- u.do(t, http.MethodGet, "/billing/topups/"+id+"?waitFor=PAID,EXPIRED,INVALID,REVIEW&timeout=60", nil).str("topup.status")
		}()
		u.do(t, http.MethodPost, "/sandbox/topups/"+id+"/pay", nil).want(t, http.StatusOK)
		if st := <-done; st != "PAID" {
			t.Errorf("waitFor PAID across the payment: %s", st)
		}
		u.do(t, http.MethodGet, "/billing/topups/"+id+"?waitFor=SETTLED", nil).wantDetail(t, "waitFor")
		u.do(t, http.MethodGet, "/billing/topups/"+id+"?waitFor=PAID&timeout=61", nil).wantDetail(t, "timeout")
	})

	t.Run("a top-up with a bad amount or currency is 400", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		for _, amount := range []any{"", "0.99", "0", "-5.00", "1.001", "abc", "1e3", "10000.01", " 5.00", 25} {
			u.do(t, http.MethodPost, "/billing/topups", map[string]any{"amount": amount, "currency": "BTC"}).wantDetail(t, "amount")
		}
		for _, cur := range []string{"DOGE", "USD", "BTC-NOPE", "not a currency", strings.Repeat("B", 40)} {
			u.do(t, http.MethodPost, "/billing/topups", map[string]any{"amount": "5.00", "currency": cur}).wantDetail(t, "currency")
		}
		u.do(t, http.MethodPost, "/billing/topups", map[string]any{"amount": "5.00", "currency": "BTC", "status": "PAID"}).
			wantDetail(t, "status")
		// One spelling, upper case: the 400 names it.
		for cur, want := range map[string]string{"eth": `"ETH"`, "btc-ln": `"BTC-LN"`, " BTC": `"BTC"`, "Ltc": `"LTC"`} {
			r := u.do(t, http.MethodPost, "/billing/topups", map[string]any{"amount": "5.00", "currency": cur}).wantDetail(t, "currency")
			if !strings.Contains(r.str("details.currency"), want) {
				t.Errorf("currency %q: the 400 does not name %s: %s", cur, want, r)
			}
		}
		l := u.do(t, http.MethodGet, "/billing/topups", nil).want(t, http.StatusOK)
		if len(l.list("topups")) != 0 {
			t.Errorf("refused top-ups were created: %s", l)
		}
		// The bounds themselves are fine.
		for _, amount := range []string{"1.00", "10000.00", "7"} {
			u.do(t, http.MethodPost, "/billing/topups", map[string]any{"amount": amount, "currency": "ETH"}).want(t, http.StatusCreated)
		}
	})

	t.Run("another account's top-up is 404 to read and to pay", func(t *testing.T) {
		t.Parallel()
		owner, other := h.register(t), h.register(t)
		id := owner.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "5.00", "currency": "USDC"}).
			want(t, http.StatusCreated).str("topup.id")
		other.do(t, http.MethodGet, "/billing/topups/"+id, nil).wantError(t, http.StatusNotFound, "not_found")
		other.do(t, http.MethodPost, "/sandbox/topups/"+id+"/pay", nil).wantError(t, http.StatusNotFound, "not_found")
		other.do(t, http.MethodPost, "/sandbox/topups/"+uuid.NewString()+"/pay", nil).wantError(t, http.StatusNotFound, "not_found")
		other.do(t, http.MethodPost, "/sandbox/topups/not-an-id/pay", nil).wantError(t, http.StatusNotFound, "not_found")
		other.wantBalance(t, "10.00", "0.00")
		owner.wantBalance(t, "10.00", "0.00")
		if s := owner.do(t, http.MethodGet, "/billing/topups/"+id, nil).want(t, http.StatusOK).str("topup.status"); s != "PENDING" {
			t.Errorf("want the owner's top-up still PENDING, got %s", s)
		}
	})
}

func runwayTests(t *testing.T, h *harness) {
	t.Run("GET /billing says how long the balance lasts and when the first server is suspended", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		b := u.do(t, http.MethodGet, "/billing", nil).want(t, http.StatusOK)
		if v, ok := b.get("hoursLeft"); !ok || v != nil {
			t.Errorf("hoursLeft with nothing billed: %s, want null", b)
		}
		if v, ok := b.get("suspendsAt"); !ok || v != nil {
			t.Errorf("suspendsAt with nothing billed: %s, want null", b)
		}
		id := u.deploy(t, "runway", "vc2-1c-1gb")
		created, err := time.Parse(time.RFC3339, u.server(t, id).str("server.createdAt"))
		if err != nil {
			t.Fatal(err)
		}
		// 10.00 - 0.014 = 9.986 covers 713 whole hours of 0.014; the server
		// is charged at each full hour after createdAt: hours 1..713 are
		// covered (9.982), 0.004 is left for hour 714.
		b = u.do(t, http.MethodGet, "/billing", nil).want(t, http.StatusOK)
		if n := b.num("hoursLeft"); n != 713 {
			t.Errorf("hoursLeft %d, want 713: %s", n, b)
		}
		at, err := time.Parse(time.RFC3339, b.str("suspendsAt"))
		if err != nil || at.Sub(created.Truncate(time.Second)) < 714*time.Hour-time.Second || at.Sub(created) > 714*time.Hour+time.Second {
			t.Errorf("suspendsAt %s, want createdAt %s + 714h", b.str("suspendsAt"), created)
		}
	})
}

// lowCreditTests run on a stack whose accounts start with 1.00.
func lowCreditTests(t *testing.T, h *harness) {
	t.Run("402 when the balance cannot cover an hour of every billed server, and nothing is deployed", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.wantBalance(t, "1.00", "0.00")
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("beast", 10, "vc2-6c-16gb")).
			wantError(t, http.StatusPaymentRequired, "insufficient_balance")
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("beast", 7, "vc2-6c-16gb")).
			wantError(t, http.StatusPaymentRequired, "insufficient_balance")
		if n := len(u.serverIDs(t)); n != 0 {
			t.Fatalf("a refused deploy created %d servers", n)
		}
		u.wantBalance(t, "1.00", "0.00")
		// 6 x 0.164 = 0.984 is covered; then 0.016 is left.
		u.do(t, http.MethodPost, "/servers/bulk", bulkBody("beast", 6, "vc2-6c-16gb")).want(t, http.StatusAccepted)
		u.wantBalance(t, "0.016", "0.984")
		u.do(t, http.MethodPost, "/servers", deployBody("one-more", "vc2-6c-16gb")).
			wantError(t, http.StatusPaymentRequired, "insufficient_balance")
		u.do(t, http.MethodPost, "/servers", deployBody("one-more", "vc2-1c-2gb")).
			wantError(t, http.StatusPaymentRequired, "insufficient_balance")
		// 0.014 would fit the balance, but not with the next hour of the six
		// beasts (0.984): the fleet would be suspended within the hour.
		e := u.do(t, http.MethodPost, "/servers", deployBody("micro", "vc2-1c-1gb")).
			wantError(t, http.StatusPaymentRequired, "insufficient_balance")
		if msg := e.str("error"); !strings.Contains(msg, "0.982 missing") {
			t.Errorf("the 402 does not say how much is missing: %q", msg)
		}
		// Every amount in it reads as GET /billing writes it.
		for _, amount := range []string{"balance 0.016", "0.014 for the new ones", "0.984 for those already billed"} {
			if msg := e.str("error"); !strings.Contains(msg, amount) {
				t.Errorf("the 402 does not say %q: %q", amount, msg)
			}
		}
		u.wantBalance(t, "0.016", "0.984")
	})

	t.Run("30 simultaneous deploys never overdraw: 3 accepted, 27 refused with 402", func(t *testing.T) {
		t.Parallel()
		u := h.register(t)
		u.bearer(t)
		rs := fanOut(30, func(i int) *response {
			return u.do(t, http.MethodPost, "/servers", deployBody(fmt.Sprintf("spend-%d", i), "vc2-6c-16gb"))
		})
		counts := statusCounts(rs)
		// The k-th deploy needs k x 0.164 with 1.00 - (k-1) x 0.164 left: 3.
		if counts[http.StatusAccepted] != 3 || counts[http.StatusPaymentRequired] != 27 {
			for _, r := range rs {
				if r.Status != http.StatusAccepted && r.Status != http.StatusPaymentRequired {
					t.Logf("unexpected: %s", r)
				}
			}
			t.Fatalf("want 3 x 202 and 27 x 402, got %v", counts)
		}
		if n := len(u.serverIDs(t)); n != 3 {
			t.Errorf("want 3 servers, got %d", n)
		}
		// 1.00 - 3 x 0.164: never below zero, every cent accounted for.
		u.wantBalance(t, "0.508", "0.492")
	})
}

// billingClockTests prove the billing rules by moving the sandbox clock;
// each has a stack of its own.
func billingClockTests(t *testing.T, stack func(t *testing.T, cfg config) *harness) {
	t.Run("advancing N hours charges exactly N x the hourly price per server", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{TokenTTL: 24 * time.Hour})
		u := h.register(t)
		a := u.deploy(t, "small", "vc2-1c-1gb")
		u.deploy(t, "big", "vc2-6c-16gb")
		// First hours: 0.014 + 0.164 = 0.178.
		u.wantBalance(t, "9.822", "0.178")
		u.advance(t, 5*time.Hour)
		// + 5 x 0.178 = 0.890.
		u.wantBalance(t, "8.932", "0.178")
		u.advance(t, time.Hour)
		u.wantBalance(t, "8.754", "0.178")
		// Less than a full hour charges nothing more.
		u.advance(t, 30*time.Minute)
		u.wantBalance(t, "8.754", "0.178")
		checkServer(t, u.server(t, a), "server", "small", "ACTIVE")
		if p := u.server(t, a).str("server.hourlyPrice"); p != "0.014" {
			t.Errorf("the hourly price changed to %s", p)
		}
	})

	t.Run("DELETE stops billing and the server ends DESTROYED, gone from GET /servers", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{TokenTTL: 24 * time.Hour})
		u := h.register(t)
		id := u.deploy(t, "short-lived", "vc2-4c-8gb")
		keep := u.deploy(t, "keeper", "vc2-1c-1gb")
		u.advance(t, 90*time.Minute)
		// Two hours each: 2 x (0.085 + 0.014) = 0.198.
		u.wantBalance(t, "9.802", "0.099")
		u.do(t, http.MethodDelete, "/servers/"+id, nil).want(t, http.StatusAccepted)
		u.wantBalance(t, "9.802", "0.014")
		u.advance(t, 10*time.Second)
		s := u.server(t, id)
		if s.str("server.status") != "DESTROYED" {
			t.Errorf("want DESTROYED after the destroy delay, got %s", s)
		}
		if ids := u.serverIDs(t); len(ids) != 1 || ids[0] != keep {
			t.Errorf("GET /servers: want only %s, got %v", keep, ids)
		}
		u.do(t, http.MethodDelete, "/servers/"+id, nil).wantError(t, http.StatusConflict, "")
		// Three more hours: only the keeper is charged.
		u.advance(t, 3*time.Hour)
		u.wantBalance(t, "9.76", "0.014")
	})

	t.Run("a server is SUSPENDED when the money runs out and resumes after a paid top-up", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{SignupCredit: "1.00", TokenTTL: 24 * time.Hour})
		u := h.register(t)
		id := u.deploy(t, "hungry", "vc2-6c-16gb")
		u.wantBalance(t, "0.836", "0.164")
		// Hours 1..5 are covered (1.00 - 6 x 0.164 = 0.016); hour 6 is not.
		u.advance(t, 7*time.Hour)
		s := u.server(t, id)
		if s.str("server.status") != "SUSPENDED" {
			t.Fatalf("want SUSPENDED, got %s", s)
		}
		u.wantBalance(t, "0.016", "0.00")
		if ids := u.serverIDs(t); len(ids) != 1 {
			t.Errorf("a suspended server must still be listed: %v", ids)
		}
		// Not charged while suspended.
		u.advance(t, 2*time.Hour)
		u.wantBalance(t, "0.016", "0.00")

		r := u.do(t, http.MethodPost, "/billing/topups", map[string]string{"amount": "25.00", "currency": "XMR"}).
			want(t, http.StatusCreated)
		if r.str("topup.status") != "PENDING" {
			t.Errorf("want PENDING, got %s", r)
		}
		// An unpaid top-up changes nothing.
		if st := u.server(t, id).str("server.status"); st != "SUSPENDED" {
			t.Errorf("want SUSPENDED before payment, got %s", st)
		}
		u.do(t, http.MethodPost, "/sandbox/topups/"+r.str("topup.id")+"/pay", nil).want(t, http.StatusOK)
		checkServer(t, u.server(t, id), "server", "hungry", "ACTIVE")
		// Billing resumes with the current hour: 0.016 + 25.00 - 0.164.
		u.wantBalance(t, "24.852", "0.164")
		u.advance(t, time.Hour)
		u.wantBalance(t, "24.688", "0.164")
	})

	t.Run("a clock jump charges the missed hours in time order and suspends where the money ran out", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{SignupCredit: "1.00", TokenTTL: 24 * time.Hour})
		u := h.register(t)
		big := u.deploy(t, "big", "vc2-6c-16gb")
		small := u.deploy(t, "small", "vc2-1c-1gb")
		u.wantBalance(t, "0.822", "0.178")
		// Hours 1..4 of both: 0.822 - 4 x 0.178 = 0.110. Hour 5 of big
		// (0.164) is not covered: big is suspended there; small goes on for
		// hours 5..10: 0.110 - 6 x 0.014 = 0.026.
		u.advance(t, 10*time.Hour)
		if st := u.server(t, big).str("server.status"); st != "SUSPENDED" {
			t.Errorf("big: want SUSPENDED, got %s", st)
		}
		checkServer(t, u.server(t, small), "server", "small", "ACTIVE")
		u.wantBalance(t, "0.026", "0.014")
	})

	t.Run("a sandbox-fail-deploy label ends in ERROR and its charge is refunded", func(t *testing.T) {
		t.Parallel()
		h := stack(t, config{})
		u := h.register(t)
		id := u.deploy(t, "sandbox-fail-deploy-test", "vc2-2c-4gb")
		u.wantBalance(t, "9.953", "0.047")
		u.advance(t, provisionDelay+time.Second)
		s := u.server(t, id)
		checkServer(t, s, "server", "sandbox-fail-deploy-test", "ERROR")
		u.wantBalance(t, "10.00", "0.00")
		// An ERROR server is listed until destroyed, and can be destroyed.
		if ids := u.serverIDs(t); len(ids) != 1 {
			t.Errorf("want the ERROR server listed, got %v", ids)
		}
		u.do(t, http.MethodDelete, "/servers/"+id, nil).want(t, http.StatusAccepted)
		u.advance(t, destroyDelay+time.Second)
		if ids := u.serverIDs(t); len(ids) != 0 {
			t.Errorf("want no server, got %v", ids)
		}
		u.wantBalance(t, "10.00", "0.00")
	})
}
