package contract

import (
	"net/http"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// ledgerTests need a clock of their own: they bill hours.
func ledgerTests(t *testing.T, newModel func(t *testing.T, store eventstore.Store) projections.Model) {
	t.Run("the ledger explains every cent of the balance, newest first, page by page", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, newModel, config{})
		u := h.register(t)
		id := u.deploy(t, "ledgered", "vc2-1c-1gb")
		u.topUp(t, "25.00")
		u.advance(t, 3*time.Hour)
		balance, _ := u.billing(t)

		var all []any
		cursor := ""
		for page := 0; ; page++ {
			path := "/billing/ledger?limit=2"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			r := u.do(t, http.MethodGet, path, nil).want(t, http.StatusOK)
			items := r.list("transactions")
			if len(items) > 2 {
				t.Fatalf("page of %d items with limit=2", len(items))
			}
			for i := range items {
				all = append(all, r.str("transactions."+itoa(i)+".id"))
			}
			next, _ := r.get("nextCursor")
			if next == nil {
				break
			}
			cursor = next.(string)
			if page > 20 {
				t.Fatal("pagination does not end")
			}
		}
		// signup, first hour, top-up, three more hours.
		if len(all) != 6 {
			t.Fatalf("want 6 transactions, got %d", len(all))
		}

		r := u.do(t, http.MethodGet, "/billing/ledger", nil).want(t, http.StatusOK)
		sum := domain.Zero()
		items := r.list("transactions")
		for i := range items {
			pre := "transactions." + itoa(i) + "."
			sum = sum.Add(domain.MustMoney(r.str(pre + "amount")))
			if i == 0 && r.str(pre+"balanceAfter") != balance {
				t.Errorf("newest balanceAfter %s, balance %s", r.str(pre+"balanceAfter"), balance)
			}
			switch r.str(pre + "type") {
			case "charge":
				if r.str(pre+"serverId") != id || r.str(pre+"from") == "" || r.str(pre+"to") == "" || r.str(pre+"amount") != "-0.014" {
					t.Errorf("charge without what it is for: %v", items[i])
				}
			case "topup":
				if r.str(pre+"topupId") == "" || r.str(pre+"amount") != "25.00" {
					t.Errorf("top-up without its id: %v", items[i])
				}
			}
		}
		if sum.Cmp(domain.MustMoney(balance)) != 0 {
			t.Errorf("ledger sums to %s, balance is %s", sum, balance)
		}
		if last := "transactions." + itoa(len(items)-1) + ".type"; r.str(last) != "signup_credit" {
			t.Errorf("oldest transaction %q, want signup_credit", r.str(last))
		}
	})

	t.Run("a bad limit or cursor is 400 naming it", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, newModel, config{})
		u := h.register(t)
		for _, q := range []string{"limit=0", "limit=101", "limit=abc"} {
			u.do(t, http.MethodGet, "/billing/ledger?"+q, nil).wantError(t, http.StatusBadRequest, "validation_failed").wantDetail(t, "limit")
		}
		for _, q := range []string{"cursor=!!!", "cursor=bm9wZQ", "cursor=MC4w"} {
			u.do(t, http.MethodGet, "/billing/ledger?"+q, nil).wantError(t, http.StatusBadRequest, "validation_failed").wantDetail(t, "cursor")
		}
	})
}
