package domain_test

import (
	"slices"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

// ledgerScenario posts every kind of transaction: signup credit, charges,
// a suspension, a top-up with a resume, and a refund.
func ledgerScenario(t *testing.T) *spec {
	t.Helper()
	s := registered(t, "0.056")
	s.then(deploy("a", "b"), t0)
	s.then(domain.Activate{ServerID: "a", IPv4: "203.0.113.7"}, at(time.Minute))
	s.then(domain.Settle{}, at(3*hour))
	s.then(topup("t1", "2.00"), at(3*hour))
	s.then(domain.PayTopup{TopupID: "t1"}, at(4*hour))
	s.then(domain.FailDeploy{ServerID: "b", Reason: "no capacity"}, at(4*hour+time.Minute))
	s.then(domain.Destroy{ServerID: "a"}, at(7*hour+30*time.Minute))
	return s
}

func transactions(events []domain.Event) []domain.LedgerPosted {
	var out []domain.LedgerPosted
	for _, e := range events {
		if tx, ok := e.(domain.LedgerPosted); ok {
			out = append(out, tx)
		}
	}
	return out
}

func TestEveryTransactionIsBalancedAndChainedToThePreviousOne(t *testing.T) {
	t.Parallel()
	txs := transactions(ledgerScenario(t).history)
	kinds := map[domain.TxKind]bool{}
	for i, tx := range txs {
		kinds[tx.Kind] = true
		if !tx.Balanced() {
			t.Errorf("tx %d (%s) is not balanced: %+v", i, tx.Kind, tx.Postings)
		}
		want := ""
		if i > 0 {
			want = txs[i-1].Hash
		}
		if tx.PrevHash != want {
			t.Errorf("tx %d: PrevHash %q, want %q", i, tx.PrevHash, want)
		}
		if tx.Hash == "" || tx.Hash != tx.ComputeHash() {
			t.Errorf("tx %d: Hash %q, ComputeHash %q", i, tx.Hash, tx.ComputeHash())
		}
	}
	for _, k := range []domain.TxKind{domain.TxSignupCredit, domain.TxCharge, domain.TxTopup, domain.TxRefund} {
		if !kinds[k] {
			t.Errorf("the scenario posted no %s transaction", k)
		}
	}
}

func TestComputeHashDetectsAnEditedTransaction(t *testing.T) {
	t.Parallel()
	txs := transactions(ledgerScenario(t).history)
	tx := txs[3]
	later := tx.From.Add(time.Hour)
	for name, edit := range map[string]func(*domain.LedgerPosted){
		"amount": func(tx *domain.LedgerPosted) {
			tx.Postings = slices.Clone(tx.Postings)
			tx.Postings[0].Amount = tx.Postings[0].Amount.Add(money("0.001"))
		},
		"balanced amounts": func(tx *domain.LedgerPosted) {
			tx.Postings = []domain.Posting{
				{Account: tx.Postings[0].Account, Amount: money("0.001")},
				{Account: tx.Postings[1].Account, Amount: money("-0.001")},
			}
		},
		"account": func(tx *domain.LedgerPosted) {
			tx.Postings = slices.Clone(tx.Postings)
			tx.Postings[1].Account = "customer:other"
		},
		"kind":          func(tx *domain.LedgerPosted) { tx.Kind = domain.TxRefund },
		"server":        func(tx *domain.LedgerPosted) { tx.ServerID = "z" },
		"hour":          func(tx *domain.LedgerPosted) { tx.From = &later },
		"time":          func(tx *domain.LedgerPosted) { tx.At = tx.At.Add(time.Second) },
		"previous hash": func(tx *domain.LedgerPosted) { tx.PrevHash = txs[1].Hash },
		"id":            func(tx *domain.LedgerPosted) { tx.TxID = "forged" },
	} {
		edited := tx
		edit(&edited)
		if edited.ComputeHash() == tx.Hash {
			t.Errorf("editing the %s leaves the hash unchanged", name)
		}
	}
	// The original is untouched by the edits and still verifies.
	wantEqual(t, "original hash", tx.ComputeHash(), tx.Hash)
	// A dropped or reordered transaction breaks the chain.
	wantEqual(t, "chain after dropping a tx", txs[3].PrevHash == txs[1].Hash, false)
}

func TestBalanceIsTheSumOfTheCustomersPostings(t *testing.T) {
	t.Parallel()
	s := ledgerScenario(t)
	customer := domain.CustomerLedger(accountID)
	sum, others := domain.Zero(), domain.Zero()
	for _, tx := range transactions(s.history) {
		for _, p := range tx.Postings {
			if p.Account == customer {
				sum = sum.Add(p.Amount)
			} else {
				others = others.Add(p.Amount)
			}
		}
	}
	wantMoney(t, "balance", s.state().Balance, sum.String())
	wantMoney(t, "the other side of every posting", others, sum.Neg().String())
	// The balance is what came in less what the servers kept.
	var charged domain.Money
	for _, srv := range s.state().Servers {
		charged = charged.Add(srv.Charged)
	}
	wantMoney(t, "credits less charges", money("2.056").Sub(charged), sum.String())
}

func TestBalancedAndAmountForOnHandBuiltTransactions(t *testing.T) {
	t.Parallel()
	tx := domain.LedgerPosted{Postings: []domain.Posting{
		{Account: "customer:x", Amount: money("1.00")},
		{Account: "customer:x", Amount: money("0.50")},
		{Account: domain.LedgerCryptoDeposits, Amount: money("-1.50")},
	}}
	wantEqual(t, "balanced", tx.Balanced(), true)
	wantMoney(t, "customer", tx.AmountFor("customer:x"), "1.50")
	wantMoney(t, "absent", tx.AmountFor("customer:y"), "0")
	tx.Postings[2].Amount = money("-1.49")
	wantEqual(t, "balanced after edit", tx.Balanced(), false)
	wantEqual(t, "empty is balanced", domain.LedgerPosted{}.Balanced(), true)
	wantEqual(t, "customer ledger", domain.CustomerLedger("abc"), "customer:abc")
}
