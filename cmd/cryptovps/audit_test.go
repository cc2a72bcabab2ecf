package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltkeys"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/pgtest"
)

var toolT0 = time.Date(2026, 3, 3, 9, 17, 23, 0, time.UTC)

// toolHistory writes two accounts' histories, decided by the domain, to
// store; with doubled, ann's third hour is charged a second time.
func toolHistory(t *testing.T, store eventstore.Store, doubled bool) {
	t.Helper()
	ctx := context.Background()
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		id := app.LegacyAccountID(email)
		st := domain.NewAccount(id)
		version := eventstore.NoStream
		write := func(events []domain.Event) {
			props := make([]eventstore.Proposed, len(events))
			for i, e := range events {
				st = domain.Evolve(st, e)
				data, _ := json.Marshal(e)
				props[i] = eventstore.Proposed{ID: uuid.New(), Type: e.EventType(), Data: data}
			}
			res, err := store.Append(ctx, domain.AccountStream(id), version, props)
			if err != nil {
				t.Fatal(err)
			}
			version = int64(res.Version)
		}
		do := func(cmd domain.Command, now time.Time) {
			events, err := domain.Decide(st, cmd, now)
			if err != nil {
				t.Fatal(err)
			}
			write(events)
		}
		// Registered as before emails were sealed: the id derived from the
		// email, the email in plain in AccountRegistered. The tools still
		// find these accounts by email.
		events, err := domain.Decide(st, domain.Register{AccountID: id, SealedEmail: "-", ServerLimit: 10,
			SignupCredit: domain.MustMoney("10.00")}, toolT0.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		reg := events[0].(domain.AccountRegistered)
		reg.Email, reg.SealedEmail, reg.PasswordHash = email, "", "x"
		events[0] = reg
		write(events)
		do(domain.Deploy{Servers: []domain.ServerSpec{{ID: email + "-web", Label: "web", Plan: "p", Region: "ams",
			HourlyPrice: domain.MustMoney("0.50")}}}, toolT0)
		do(domain.Settle{}, toolT0.Add(5*time.Hour+30*time.Minute))
		if doubled && email == "ann@example.com" {
			from, to := toolT0.Add(2*time.Hour), toolT0.Add(3*time.Hour)
			tx := domain.LedgerPosted{TxID: "again", Kind: domain.TxCharge, ServerID: email + "-web", From: &from, To: &to, At: from,
				Postings: []domain.Posting{{Account: domain.LedgerRevenueCompute, Amount: domain.MustMoney("0.50")},
					{Account: domain.CustomerLedger(id), Amount: domain.MustMoney("-0.50")}}, PrevHash: st.LastHash}
			tx.Hash = tx.ComputeHash()
			write([]domain.Event{tx})
		}
	}
}

// toolDataDir is a stopped deployment's data dir.
func toolDataDir(t *testing.T, doubled bool) string {
	t.Helper()
	dir := t.TempDir()
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	toolHistory(t, store, doubled)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func toolRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestAuditCommand(t *testing.T) {
	dir := toolDataDir(t, false)
	out, errOut, err := toolRun(t, "audit", "--data-dir", dir, "--progress", "1ns")
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{`accounts 2, servers 2`, `6 read-model\s+ok\s+memory \(2 balances\)`, `no violations`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "audit: 18 events") || !strings.Contains(errOut, "audited 18 events") {
		t.Errorf("no progress on stderr:\n%s", errOut)
	}

	// serve's environment works as for serve.
	t.Setenv("CRYPTOVPS_DATA_DIR", toolDataDir(t, true))
	out, _, err = toolRun(t, "audit", "--read-model=false")
	if !errors.Is(err, errViolations) {
		t.Fatalf("corrupted log: %v\n%s", err, out)
	}
	for _, want := range []string{`3 billing\s+1 violation\(s\)`, `charged twice`, `6 read-model\s+not run: --read-model=false`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	if _, _, err := toolRun(t, "audit", "--data-dir", filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "no event store") {
		t.Errorf("missing data dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); !os.IsNotExist(err) {
		t.Error("the audit created a data dir")
	}
}

func TestLedgerExportCommand(t *testing.T) {
	dir := toolDataDir(t, false)
	out, _, err := toolRun(t, "ledger", "export", "--data-dir", dir, "--account", "Ann@Example.com")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	ann := app.LegacyAccountID("ann@example.com")
	// Signup credit and six charged hours, two postings each.
	if len(rows) != 1+2*7 || rows[0][0] != "position" || rows[0][12] != "invoice_id" || rows[0][13] != "event_id" {
		t.Fatalf("rows %v", rows)
	}
	for _, r := range rows[1:] {
		if r[7] != ann {
			t.Errorf("row of another account: %v", r)
		}
	}

	file := filepath.Join(t.TempDir(), "ledger.jsonl")
	_, errOut, err := toolRun(t, "ledger", "export", "--data-dir", dir, "--format", "jsonl", "--output", file,
		"--from", "2026-03-03T10:17:23Z", "--to", "2026-03-03T12:17:23Z")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	// Hours 1 and 2 of both servers.
	if len(lines) != 2*2*2 || !strings.Contains(errOut, "exported 8 postings") {
		t.Fatalf("%d lines, stderr %q:\n%s", len(lines), errOut, b)
	}
	var row map[string]string
	if err := json.Unmarshal([]byte(lines[0]), &row); err != nil || row["kind"] != "charge" || row["hour_from"] != "2026-03-03T10:17:23Z" {
		t.Errorf("first row %v %v", row, err)
	}

	for _, bad := range [][]string{
		{"ledger", "export", "--data-dir", dir, "--format", "xml"},
		{"ledger", "export", "--data-dir", dir, "--from", "yesterday"},
		{"ledger", "export", "--data-dir", dir, "--account", "not an email"},
		{"ledger", "import"},
	} {
		if _, _, err := toolRun(t, bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestReplayCommand(t *testing.T) {
	dir := toolDataDir(t, true)
	out, _, err := toolRun(t, "replay", "--data-dir", dir, "--account", "ann@example.com", "--explain")
	if err != nil {
		t.Fatal(err)
	}
	// 10.00, six hours charged and one of them twice.
	for _, want := range []string{"balance       6.50", "ann@example.com-web", "PROVISIONING", "hour 2 is charged already",
		"differences from the billing rules: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("replay lacks %q:\n%s", want, out)
		}
	}
	out, _, err = toolRun(t, "replay", "--data-dir", dir, "--account", app.LegacyAccountID("bob@example.com"), "--until", "2026-03-03T11:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	// Registered with 10.00, hours 0 and 1 charged by then.
	if !strings.Contains(out, "balance       9.00") || strings.Contains(out, "DIFF") {
		t.Errorf("bob at 11:00:\n%s", out)
	}
	if _, _, err := toolRun(t, "replay", "--data-dir", dir, "--account", "ann@example.com", "--until", "2026-03-01"); err == nil ||
		!strings.Contains(err.Error(), "not in the log by") {
		t.Errorf("before registration: %v", err)
	}
	if _, _, err := toolRun(t, "replay", "--data-dir", dir); err == nil {
		t.Error("replay without --account")
	}
}

// TestToolsReadASnapshotOfALockedStore runs the tools while "a server"
// holds the data dir's store: they fetch its snapshot over the operator
// API, and leave no copy behind.
func TestToolsReadASnapshotOfALockedStore(t *testing.T) {
	dir, store, hs := runningServer(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)

	// No token given and none in the data dir.
	if _, _, err := toolRun(t, "audit", "--data-dir", dir, "--server", hs.URL); err == nil || !strings.Contains(err.Error(), "operator token") {
		t.Fatalf("without a token: %v", err)
	}
	if _, _, err := toolRun(t, "audit", "--data-dir", dir, "--server", hs.URL, "--admin-token", "wrong"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}

	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte(serverToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := toolRun(t, "audit", "--data-dir", dir, "--server", hs.URL)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "locked by a running server") || !strings.Contains(out, "no violations") || !strings.Contains(out, "accounts 2") {
		t.Errorf("stderr:\n%s\nstdout:\n%s", errOut, out)
	}
	t.Setenv("CRYPTOVPS_SERVER", hs.URL)
	out, errOut, err = toolRun(t, "replay", "--data-dir", dir, "--account", "bob@example.com")
	// keys.db is the server's too: the tool asks it for the account and
	// its email (the server sealed bob's plain email when it started).
	if err != nil || !strings.Contains(out, "balance       7.00") || !strings.Contains(out, "(bob@example.com)") ||
		!strings.Contains(errOut, "keys.db is locked by a running server") {
		t.Errorf("replay: %v\n%s\n%s", err, out, errOut)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("snapshots left behind: %v", left)
	}
	// The running server's store is untouched and still usable.
	if _, err := store.Head(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAuditComparesPostgres runs check 6 against the PostgreSQL read model:
// at its own checkpoint when the log has moved on since, and it names an
// account whose balance the model got wrong.
func TestAuditComparesPostgres(t *testing.T) {
	url := pgtest.Start(t)
	dir := toolDataDir(t, false)
	if out, err := runCmd(t, "projections", "rebuild", "--data-dir", dir, "--database-url", url); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, out)
	}
	out, _, err := toolRun(t, "audit", "--data-dir", dir, "--database-url", url)
	if err != nil || !regexp.MustCompile(`6 read-model\s+ok\s+postgres \(2 balances at position 18\)`).MatchString(out) {
		t.Fatalf("%v\n%s", err, out)
	}

	// The log moves on (bob tops up) while the model stays at 18: it is
	// compared with the ledger as it was at 18.
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bob := app.LegacyAccountID("bob@example.com")
	events, _ := store.ReadStream(context.Background(), domain.AccountStream(bob), 0)
	st := domain.NewAccount(bob)
	for _, ev := range events {
		e, _ := domain.DecodeEvent(ev.Type, ev.Data)
		st = domain.Evolve(st, e)
	}
	var more []eventstore.Proposed
	for _, cmd := range []domain.Command{domain.CreateTopup{TopupID: "t", Amount: domain.MustMoney("5.00"), Currency: "BTC"}, domain.PayTopup{TopupID: "t"}} {
		es, err := domain.Decide(st, cmd, toolT0.Add(5*time.Hour+40*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			st = domain.Evolve(st, e)
			data, _ := json.Marshal(e)
			more = append(more, eventstore.Proposed{ID: uuid.New(), Type: e.EventType(), Data: data})
		}
	}
	if _, err := store.Append(context.Background(), domain.AccountStream(bob), eventstore.Any, more); err != nil {
		t.Fatal(err)
	}
	store.Close()
	out, _, err = toolRun(t, "audit", "--data-dir", dir, "--database-url", url)
	if err != nil || !strings.Contains(out, "postgres (2 balances at position 18)") {
		t.Fatalf("model behind the log: %v\n%s", err, out)
	}

	// A model that disagrees with the ledger.
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `UPDATE accounts SET balance = balance + 1 WHERE id = $1`, bob); err != nil {
		t.Fatal(err)
	}
	out, _, err = toolRun(t, "audit", "--data-dir", dir, "--database-url", url)
	if !errors.Is(err, errViolations) || !strings.Contains(out, "[6 read-model]") || !strings.Contains(out, "shows balance 8.00, the ledger's fold is 7.00") {
		t.Fatalf("wrong balance: %v\n%s", err, out)
	}
}

// serverToken is the operator token of runningServer.
const serverToken = "operator-token-of-the-running-server"

// runningServer is "a server" holding a data dir's store (with the tool
// history) and serving its operator API, as the tools meet one; both are
// closed when the test ends.
func runningServer(t *testing.T) (dataDir string, store *bbolt.Store, hs *httptest.Server) {
	t.Helper()
	dataDir = t.TempDir()
	store, err := bbolt.Open(filepath.Join(dataDir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	toolHistory(t, store, false)
	// Its key store, as serve keeps it: keys.db in the data dir, held open,
	// under the data dir's secrets key.
	var cfg config
	cfg.DataDir = dataDir
	key, err := cfg.secretsKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := boltkeys.Open(filepath.Join(dataDir, keysFile), boltkeys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	personal, err := app.NewPersonal(keys, key)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := stack.New(context.Background(), stack.Config{Store: store, Model: memory.New(store), Log: log, Personal: personal,
		SandboxCloud: filepath.Join(t.TempDir(), "cloud.json"),
		API:          api.Config{JWTSecret: []byte("s"), AdminToken: serverToken, Snapshots: snapshotterOf(store), Log: log}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hs = httptest.NewServer(st.API)
	t.Cleanup(hs.Close)
	return dataDir, store, hs
}
