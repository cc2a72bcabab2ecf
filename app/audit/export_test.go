package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/domain"
)

func TestExportLedger(t *testing.T) {
	logs := cleanLogs(t)
	store := openStore(t, t.TempDir())
	w := writeLogs(t, store, logs...)
	ctx := context.Background()

	var txs, postings int
	for _, l := range logs {
		for _, e := range l.events {
			if tx, ok := e.(domain.LedgerPosted); ok {
				txs++
				postings += len(tx.Postings)
			}
		}
	}

	run := func(o audit.ExportOptions) (string, int64) {
		t.Helper()
		var out bytes.Buffer
		n, err := audit.ExportLedger(ctx, store, &out, o)
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), n
	}

	// CSV: the header, then one row per posting in log order.
	text, n := run(audit.ExportOptions{Format: "csv"})
	rows, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rows[0], []string{"position", "recorded_at", "at", "tx_id", "kind", "account", "amount",
		"customer_account_id", "server_id", "hour_from", "hour_to", "topup_id", "invoice_id", "event_id"}) {
		t.Fatalf("header %v", rows[0])
	}
	if int(n) != postings || len(rows)-1 != postings {
		t.Fatalf("%d rows (%d reported), want %d", len(rows)-1, n, postings)
	}
	sum := domain.Zero()
	for _, r := range rows[1:] {
		sum = sum.Add(domain.MustMoney(r[6]))
	}
	if sum.Sign() != 0 {
		t.Errorf("postings sum to %s", sum)
	}
	// The active server's first charge, exactly.
	active := logs[5]
	i := active.chargeAt("s-active", t0)
	tx := active.ledger(i)
	want := []string{w.at(active, i).String(), "2026-06-01T00:00:00Z", "2026-03-03T09:17:23Z", tx.TxID, "charge",
		"revenue:compute", "0.50", active.id, "s-active", "2026-03-03T09:17:23Z", "2026-03-03T10:17:23Z", ""}
	found := false
	for _, r := range rows[1:] {
		if slices.Equal(r[:13], append(want, "")) && r[13] != "" {
			found = true
		}
	}
	if !found {
		t.Errorf("no row %v in\n%s", want, text)
	}

	// JSONL: the same rows, keys in column order.
	jsonl, n2 := run(audit.ExportOptions{Format: "jsonl"})
	if n2 != n {
		t.Errorf("jsonl %d rows, csv %d", n2, n)
	}
	sc := bufio.NewScanner(strings.NewReader(jsonl))
	line := 1
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), `{"position":"`) || !strings.Contains(sc.Text(), `"topup_id":`) {
			t.Fatalf("line %d: %s", line, sc.Text())
		}
		var obj map[string]string
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatal(err)
		}
		for c, col := range rows[0] {
			if obj[col] != rows[line][c] {
				t.Fatalf("line %d %s: %q vs csv %q", line, col, obj[col], rows[line][c])
			}
		}
		line++
	}
	if line-1 != postings {
		t.Errorf("%d json lines", line-1)
	}

	// One account: its transactions whole.
	text, _ = run(audit.ExportOptions{AccountID: logs[1].id})
	rows, _ = csv.NewReader(strings.NewReader(text)).ReadAll()
	var acctPostings int
	for _, e := range logs[1].events {
		if tx, ok := e.(domain.LedgerPosted); ok {
			acctPostings += len(tx.Postings)
		}
	}
	if len(rows)-1 != acctPostings {
		t.Errorf("account export: %d rows, want %d", len(rows)-1, acctPostings)
	}
	for _, r := range rows[1:] {
		if r[7] != logs[1].id {
			t.Errorf("row of another account: %v", r)
		}
	}

	// A window on the transactions' date, [2h, 3h): the hour-2 charges of
	// the servers billed then and the two refunds, nothing else.
	text, _ = run(audit.ExportOptions{From: at(2 * time.Hour), To: at(3 * time.Hour)})
	rows, _ = csv.NewReader(strings.NewReader(text)).ReadAll()
	kinds := map[string]int{}
	for _, r := range rows[1:] {
		when, err := time.Parse(time.RFC3339, r[2])
		if err != nil || when.Before(at(2*time.Hour)) || !when.Before(at(3*time.Hour)) {
			t.Errorf("window row %v", r)
		}
		kinds[r[4]]++
	}
	// destroyer, suspender, failer, active were billed hour 2: 4 charges.
	if kinds["charge"] != 2*4 || kinds["refund"] != 2*2 || len(kinds) != 2 {
		t.Errorf("window kinds %v", kinds)
	}

	if _, err := audit.ExportLedger(ctx, store, &bytes.Buffer{}, audit.ExportOptions{Format: "xml"}); err == nil {
		t.Error("unknown format accepted")
	}
}
