package audit

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

func TestShow(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0", "0.00"},
		{"0.00", "0.00"},
		{"0.000", "0.00"},
		{"-0.00", "0.00"},
		{"10", "10.00"},
		{"10.5", "10.50"},
		{"10.500", "10.50"},
		{"0.014", "0.014"},
		{"-0.0140", "-0.014"},
		{"-0.5", "-0.50"},
		{"123456789.123456789", "123456789.123456789"},
	} {
		if got := show(domain.MustMoney(tc.in)); got != tc.want {
			t.Errorf("show(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := show(domain.Money{}); got != "0.00" {
		t.Errorf("show(zero value) = %s", got)
	}
}

func sampleCharge() domain.LedgerPosted {
	from := time.Date(2026, 1, 1, 3, 17, 23, 0, time.UTC)
	to := from.Add(time.Hour)
	tx := domain.LedgerPosted{TxID: "t2", Kind: domain.TxCharge, At: from, ServerID: "s1", From: &from, To: &to, PrevHash: "abc",
		Postings: []domain.Posting{{Account: domain.LedgerRevenueCompute, Amount: domain.MustMoney("0.014")},
			{Account: "customer:a", Amount: domain.MustMoney("-0.014")}}}
	tx.Hash = tx.ComputeHash()
	return tx
}

// The hash check says what ComputeHash says about the transaction the
// stored bytes decode to, whatever their spelling: a respelling that
// decodes to the same transaction keeps its hash, an edit does not.
func TestHashVerdict(t *testing.T) {
	data, err := json.Marshal(sampleCharge())
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, tc := range []struct {
		name, data string
		ok         bool
	}{
		{"unchanged", s, true},
		{"whitespace", strings.Replace(s, `"kind":`, `"kind": `, 1), true},
		{"reordered", strings.Replace(s, `{"txId":"t2","kind":"charge",`, `{"kind":"charge","txId":"t2",`, 1), true},
		{"escaped string", strings.Replace(s, `"s1"`, `"s\u0031"`, 1), true},
		{"offset time", strings.Replace(s, `"from":"2026-01-01T03:17:23Z"`, `"from":"2026-01-01T04:17:23+01:00"`, 1), false},
		{"trailing zero", strings.Replace(s, `"0.014"`, `"0.0140"`, 1), false},
		{"edited amount", strings.Replace(s, `"0.014"`, `"0.015"`, 1), false},
		{"edited prevHash", strings.Replace(s, `"abc"`, `"abd"`, 1), false},
	} {
		if tc.name != "unchanged" && tc.data == s {
			t.Fatalf("%s: the variant changes nothing", tc.name)
		}
		var p prepared
		prepare(&p, &eventstore.Event{ID: uuid.New(), Stream: domain.AccountStream("a"), Type: "LedgerPosted", Data: json.RawMessage(tc.data)})
		if p.err != nil || !p.isTx {
			t.Fatalf("%s: %v", tc.name, p.err)
		}
		var lp domain.LedgerPosted
		if err := json.Unmarshal([]byte(tc.data), &lp); err != nil {
			t.Fatal(err)
		}
		if want := lp.Hash == lp.ComputeHash(); p.tx.hashOK != want || want != tc.ok {
			t.Errorf("%s: hash verdict %v, ComputeHash says %v, want %v", tc.name, p.tx.hashOK, want, tc.ok)
		}
	}
}

func TestLedgerTxTotals(t *testing.T) {
	m := domain.MustMoney
	for _, tc := range []struct {
		name                string
		postings            []domain.Posting
		sum, moved, revenue string
	}{
		{"charge", []domain.Posting{{Account: domain.LedgerRevenueCompute, Amount: m("0.50")}, {Account: "customer:a", Amount: m("-0.50")}},
			"0.00", "0.50", "0.50"},
		{"refund", []domain.Posting{{Account: "customer:a", Amount: m("0.50")}, {Account: domain.LedgerRevenueCompute, Amount: m("-0.50")}},
			"0.00", "0.50", "-0.50"},
		{"unbalanced", []domain.Posting{{Account: "customer:a", Amount: m("6.00")}, {Account: domain.LedgerCryptoDeposits, Amount: m("-5.00")}},
			"1.00", "6.00", "0.00"},
		{"split", []domain.Posting{{Account: domain.LedgerRevenueCompute, Amount: m("0.25")}, {Account: domain.LedgerRevenueCompute, Amount: m("0.25")},
			{Account: "customer:a", Amount: m("-0.5")}}, "0.00", "0.50", "0.50"},
		{"none", nil, "0.00", "0.00", "0.00"},
	} {
		var l ledgerTx
		l.set(domain.LedgerPosted{Postings: tc.postings})
		if got := [3]string{show(l.sum), show(l.moved), show(l.revenue)}; got != [3]string{tc.sum, tc.moved, tc.revenue} {
			t.Errorf("%s: sum, moved, revenue %v, want %s %s %s", tc.name, got, tc.sum, tc.moved, tc.revenue)
		}
	}
}
