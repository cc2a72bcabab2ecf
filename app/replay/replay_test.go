package replay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/app/replay"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
)

var t0 = time.Date(2026, 3, 3, 9, 17, 23, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// history decides commands on one account and on its backups, and writes
// every decision to the store as the service would.
type history struct {
	t       *testing.T
	store   *bbolt.Store
	id      string
	st      domain.Account
	version int64
	backups map[string]domain.Backup
}

func newHistory(t *testing.T, credit string) *history {
	store, err := bbolt.Open(filepath.Join(t.TempDir(), "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	id := uuid.NewSHA1(uuid.NameSpaceURL, []byte("ann")).String()
	h := &history{t: t, store: store, id: id, st: domain.NewAccount(id), version: eventstore.NoStream, backups: map[string]domain.Backup{}}
	h.do(domain.Register{AccountID: id, SealedEmail: "v1:sealed-ann", ServerLimit: 10,
		SignupCredit: domain.MustMoney(credit)}, at(-time.Hour))
	return h
}

func (h *history) append(stream string, expected int64, events []domain.Event) int64 {
	h.t.Helper()
	props := make([]eventstore.Proposed, len(events))
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			h.t.Fatal(err)
		}
		props[i] = eventstore.Proposed{ID: uuid.New(), Type: e.EventType(), Data: data}
	}
	res, err := h.store.Append(context.Background(), stream, expected, props)
	if err != nil {
		h.t.Fatal(err)
	}
	return int64(res.Version)
}

func (h *history) do(cmd domain.Command, now time.Time) {
	h.t.Helper()
	events, err := domain.Decide(h.st, cmd, now)
	if err != nil {
		h.t.Fatalf("%T: %v", cmd, err)
	}
	if len(events) == 0 {
		return
	}
	for _, e := range events {
		h.st = domain.Evolve(h.st, e)
	}
	h.version = h.append(domain.AccountStream(h.id), h.version, events)
}

func (h *history) backup(id string, cmd domain.BackupCommand, now time.Time) {
	h.t.Helper()
	b := h.backups[id]
	events, err := domain.DecideBackup(b, cmd, now)
	if err != nil {
		h.t.Fatalf("%T: %v", cmd, err)
	}
	for _, e := range events {
		b = domain.EvolveBackup(b, e)
	}
	h.backups[id] = b
	h.append(domain.BackupStream(id), eventstore.Any, events)
}

func (h *history) replay(until time.Time) *replay.Result {
	h.t.Helper()
	r, err := replay.Account(context.Background(), h.store, h.id, replay.Options{Until: until})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func spec(id string) domain.Deploy {
	return domain.Deploy{Servers: []domain.ServerSpec{{ID: id, Label: id, Plan: "p", Region: "ams", HourlyPrice: domain.MustMoney("0.50")}}}
}

// lifecycle: a server deployed, activated, backed up, suspended when the
// money runs out, resumed by a top-up, destroyed; a second one fails.
// Web is charged hours 0-2, 5-9 and db 0-2, refunded: 2.60 left.
func lifecycle(t *testing.T) *history {
	h := newHistory(t, "1.60")
	h.do(spec("web"), t0)
	h.do(domain.StartProvision{ServerID: "web"}, at(time.Minute))
	h.do(domain.RecordInstance{ServerID: "web", InstanceID: "i-1"}, at(time.Minute))
	h.do(domain.Activate{ServerID: "web", IPv4: "198.18.0.1"}, at(2*time.Minute))
	srv, _ := h.st.Server("web")
	h.backup("bk-1", domain.RequestBackup{BackupID: "bk-1", AccountID: h.id, Server: srv}, at(10*time.Minute))
	h.backup("bk-1", domain.CompleteBackup{SnapshotID: "snap-1"}, at(13*time.Minute))
	h.do(domain.Settle{}, at(4*time.Hour+30*time.Minute)) // 1, 2 charged; suspended at 3h
	h.do(domain.CreateTopup{TopupID: "top-1", Amount: domain.MustMoney("5.00"), Currency: "BTC"}, at(5*time.Hour))
	h.do(domain.PayTopup{TopupID: "top-1"}, at(5*time.Hour+30*time.Minute)) // resumes, charges hour 5
	h.do(spec("db"), at(6*time.Hour+30*time.Minute))
	h.do(domain.Settle{}, at(8*time.Hour+40*time.Minute)) // web 6, 7, 8; db 1 (7h30), 2 (8h30)
	h.do(domain.FailDeploy{ServerID: "db", Reason: "provider"}, at(8*time.Hour+45*time.Minute))
	h.do(domain.Destroy{ServerID: "web"}, at(9*time.Hour+10*time.Minute)) // web 9 first
	h.do(domain.CompleteDestroy{ServerID: "web"}, at(9*time.Hour+11*time.Minute))
	return h
}

func TestReplayAsAtTimes(t *testing.T) {
	h := lifecycle(t)
	for _, tc := range []struct {
		until   time.Time
		balance string
		web     domain.ServerStatus
		db      domain.ServerStatus // "" when not deployed yet
		backup  domain.BackupStatus
	}{
		{at(-30 * time.Minute), "1.60", "", "", ""},
		{at(time.Minute + 30*time.Second), "1.10", domain.StatusProvisioning, "", ""},
		{at(11 * time.Minute), "1.10", domain.StatusActive, "", domain.BackupPending},
		{at(2*time.Hour + 30*time.Minute), "0.10", domain.StatusActive, "", domain.BackupAvailable},
		{at(4 * time.Hour), "0.10", domain.StatusSuspended, "", domain.BackupAvailable},
		{at(5*time.Hour + 40*time.Minute), "4.60", domain.StatusActive, "", domain.BackupAvailable},
		{at(8*time.Hour + 42*time.Minute), "1.60", domain.StatusActive, domain.StatusProvisioning, domain.BackupAvailable},
		{at(8*time.Hour + 50*time.Minute), "3.10", domain.StatusActive, domain.StatusError, domain.BackupAvailable},
		{time.Time{}, "2.60", domain.StatusDestroyed, domain.StatusError, domain.BackupAvailable},
	} {
		r := h.replay(tc.until)
		if r.Account.Balance.Cmp(domain.MustMoney(tc.balance)) != 0 {
			t.Errorf("%s: balance %s, want %s", tc.until, r.Account.Balance, tc.balance)
		}
		for id, want := range map[string]domain.ServerStatus{"web": tc.web, "db": tc.db} {
			s, ok := r.Account.Server(id)
			if want == "" && ok || want != "" && s.Status != want {
				t.Errorf("%s: %s is %q (exists %v), want %q", tc.until, id, s.Status, ok, want)
			}
		}
		if tc.backup == "" && len(r.Backups) != 0 || tc.backup != "" && (len(r.Backups) != 1 || r.Backups[0].Status != tc.backup) {
			t.Errorf("%s: backups %+v, want %s", tc.until, r.Backups, tc.backup)
		}
		if len(r.Diffs) != 0 {
			t.Errorf("%s: a clean history has differences: %v", tc.until, r.Diffs)
		}
	}
	// The end of the log is the domain's own fold of the stream.
	r := h.replay(time.Time{})
	if r.Account.Balance.Cmp(h.st.Balance) != 0 || len(r.Account.Servers) != len(h.st.Servers) || r.Account.LastHash != h.st.LastHash {
		t.Errorf("replay %+v, domain %+v", r.Account, h.st)
	}
	var out bytes.Buffer
	if err := r.WriteState(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"balance       2.60", "web", "DESTROYED", "db", "ERROR", "bk-1", "AVAILABLE", "top-1", "PAID"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("state lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReplayMarksExpiredBackups(t *testing.T) {
	h := lifecycle(t)
	r := h.replay(at(8 * 24 * time.Hour))
	var out bytes.Buffer
	if err := r.WriteState(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "AVAILABLE (expired by then, not yet retired)") {
		t.Errorf("state:\n%s", out.String())
	}
}

func TestExplainCleanHistory(t *testing.T) {
	h := lifecycle(t)
	r := h.replay(time.Time{})
	var out bytes.Buffer
	if err := r.WriteExplain(&out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"differences from the billing rules: none",
		"-0.50 for hour 5",
		"refund every charged hour: the deploy failed",
		"balance 2.60 = charge -5.50 (11) refund +1.50 (1) signup_credit +1.60 (1) topup +5.00 (1)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("explain lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "DIFF") {
		t.Errorf("clean history marked:\n%s", s)
	}
}

// TestExplainMarksDifferences corrupts the log: hour 6 of web is charged
// twice and hour 7 not at all.
func TestExplainMarksDifferences(t *testing.T) {
	h := newHistory(t, "10.00")
	h.do(spec("web"), t0)
	h.do(domain.Settle{}, at(5*time.Hour+30*time.Minute))
	// Replayed by hand: hour 6 twice, hour 7 skipped, hour 8 as usual.
	hour := func(k int) domain.LedgerPosted {
		from, to := at(time.Duration(k)*time.Hour), at(time.Duration(k+1)*time.Hour)
		tx := domain.LedgerPosted{TxID: uuid.NewString(), Kind: domain.TxCharge, ServerID: "web", From: &from, To: &to, At: from,
			Postings: []domain.Posting{{Account: domain.LedgerRevenueCompute, Amount: domain.MustMoney("0.50")},
				{Account: domain.CustomerLedger(h.id), Amount: domain.MustMoney("-0.50")}}}
		tx.PrevHash = h.st.LastHash
		tx.Hash = tx.ComputeHash()
		h.st = domain.Evolve(h.st, tx)
		return tx
	}
	for _, k := range []int{6, 6, 8} {
		h.version = h.append(domain.AccountStream(h.id), h.version, []domain.Event{hour(k)})
	}
	r := h.replay(at(8*time.Hour + 30*time.Minute))
	var out bytes.Buffer
	if err := r.WriteExplain(&out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	lines := strings.Split(s, "\n")
	find := func(re string) string {
		for _, l := range lines {
			if regexp.MustCompile(re).MatchString(l) {
				return l
			}
		}
		t.Fatalf("no line matches %s:\n%s", re, s)
		return ""
	}
	if l := find(`charge .*15:17:23, 16:17:23\).*-0.50 for hour 6`); !strings.HasSuffix(strings.TrimSpace(l), "ok") {
		t.Errorf("first charge of hour 6: %s", l)
	}
	if l := find(`hour 6 is charged already`); !strings.Contains(l, "DIFF billing") || !strings.Contains(l, "charged twice") {
		t.Errorf("second charge of hour 6: %s", l)
	}
	if l := find(`\(missing\)`); !strings.Contains(l, "16:17:23, 17:17:23)") || !strings.Contains(l, "-0.50 for hour 7") ||
		!strings.Contains(l, "DIFF billing") {
		t.Errorf("missing hour 7: %s", l)
	}
	// The missing line sits between hour 6 and hour 8.
	if !regexp.MustCompile(`(?s)hour 6 is charged already.*\(missing\).*for hour 8`).MatchString(s) {
		t.Errorf("order:\n%s", s)
	}
	if !strings.Contains(s, "differences from the billing rules: 2") || r.Differences() != 2 {
		t.Errorf("count (%d):\n%s", r.Differences(), s)
	}
}

func TestReplayUnknownAccount(t *testing.T) {
	h := newHistory(t, "1.00")
	_, err := replay.Account(context.Background(), h.store, uuid.NewString(), replay.Options{})
	if err == nil || !strings.Contains(err.Error(), "no such account") {
		t.Fatalf("err %v", err)
	}
	// Before its registration the account did not exist either.
	if _, err := replay.Account(context.Background(), h.store, h.id, replay.Options{Until: at(-2 * time.Hour)}); err == nil {
		t.Fatal("replayed an account before it existed")
	}
}
