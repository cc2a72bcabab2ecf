package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/app/audit"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/history"
)

const price = "0.50"

// end is when every scenario's biller runs last.
var end = at(9*time.Hour + 45*time.Minute)

// cleanLogs is every billing path the domain has, decided by the domain.
func cleanLogs(t testing.TB) []*acctLog {
	// Deployed, billed, destroyed: hours 0..6, the 7th because it began
	// before the DELETE.
	destroyer := newAcct(t, "destroyer", "10.00")
	destroyer.deploy("s-destroy", price, t0)
	destroyer.do(domain.Settle{}, at(5*time.Hour+30*time.Minute))
	destroyer.do(domain.Destroy{ServerID: "s-destroy"}, at(6*time.Hour+10*time.Minute))
	destroyer.do(domain.CompleteDestroy{ServerID: "s-destroy"}, at(6*time.Hour+11*time.Minute))

	// Runs out of money at hour 3, is topped up during hour 5 and resumes
	// with that hour: 0, 1, 2, 5, 6, 7, 8, 9.
	suspender := newAcct(t, "suspender", "1.60")
	suspender.deploy("s-suspend", price, t0)
	suspender.do(domain.Settle{}, at(4*time.Hour+30*time.Minute))
	suspender.topup("top-1", "5.00", at(5*time.Hour+30*time.Minute))
	suspender.do(domain.Settle{}, end)

	// Fails after three charged hours, all refunded.
	failer := newAcct(t, "failer", "10.00")
	failer.deploy("s-fail", price, t0)
	failer.do(domain.Settle{}, at(2*time.Hour+30*time.Minute))
	failer.do(domain.FailDeploy{ServerID: "s-fail", Reason: "provider"}, at(2*time.Hour+45*time.Minute))

	// Suspended while provisioning, then failed: its one hour refunded.
	suspendedFailer := newAcct(t, "suspended-failer", "0.70")
	suspendedFailer.deploy("s-suspend-fail", price, t0)
	suspendedFailer.do(domain.Settle{}, at(90*time.Minute))
	suspendedFailer.do(domain.FailDeploy{ServerID: "s-suspend-fail", Reason: "provider"}, at(2*time.Hour))

	// Destroyed while suspended: nothing more to bill.
	destroySuspended := newAcct(t, "destroy-suspended", "0.60")
	destroySuspended.deploy("s-destroy-suspended", price, t0)
	destroySuspended.do(domain.Settle{}, at(65*time.Minute))
	destroySuspended.do(domain.Destroy{ServerID: "s-destroy-suspended"}, at(2*time.Hour))
	destroySuspended.do(domain.CompleteDestroy{ServerID: "s-destroy-suspended"}, at(2*time.Hour+time.Minute))

	// Provisioned, active, billed to the end: 0..9.
	active := newAcct(t, "active", "10.00")
	active.deploy("s-active", price, t0)
	active.do(domain.StartProvision{ServerID: "s-active"}, at(time.Minute))
	active.do(domain.RecordInstance{ServerID: "s-active", InstanceID: "i-1"}, at(time.Minute))
	active.do(domain.Activate{ServerID: "s-active", IPv4: "198.18.0.1"}, at(90*time.Second))
	active.do(domain.Settle{}, end)

	return []*acctLog{destroyer, suspender, failer, suspendedFailer, destroySuspended, active}
}

func TestCleanDomainHistory(t *testing.T) {
	logs := cleanLogs(t)
	store := openStore(t, t.TempDir())
	writeLogs(t, store, logs...)
	r := runAudit(t, store, audit.Options{})
	assertExactly(t, r)
	if r.Accounts != 6 || r.Servers != 6 || r.ChargedHours != 7+8+3+1+1+10 || r.FailedDeploys != 2 {
		t.Errorf("accounts %d servers %d charged %d failed %d", r.Accounts, r.Servers, r.ChargedHours, r.FailedDeploys)
	}
	// The newest time in the log is hour 9's charge, so hour 9 of the two
	// servers still running is within the grace: charged, not yet due.
	if r.RequiredHours != r.ChargedHours-2 || !r.Newest.Equal(at(9*time.Hour)) {
		t.Errorf("required %d, charged %d, newest %s", r.RequiredHours, r.ChargedHours, r.Newest)
	}
	if r.Trial.Sign() != 0 {
		t.Errorf("trial balance %s", r.Trial)
	}
	// The suspender: 1.60 + 5.00 - 8 hours.
	if got := r.Balances[logs[1].id]; got.Cmp(domain.MustMoney("2.60")) != 0 {
		t.Errorf("suspender balance %s", got)
	}
	var out bytes.Buffer
	if err := audit.WriteReport(&out, r, 10); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"accounts 6, servers 6", "revenue:compute", "customer:*", "no violations", "5 hash-chain"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestCleanGeneratedHistory(t *testing.T) {
	ctx := context.Background()
	store, n := generatedStore(t, 6000)
	r := runAudit(t, store, audit.Options{})
	assertExactly(t, r)
	if r.Events < int64(n) || r.Accounts < 6 || r.ChargedHours == 0 || r.Trial.Sign() != 0 {
		t.Errorf("events %d accounts %d charged %d trial %s", r.Events, r.Accounts, r.ChargedHours, r.Trial)
	}
	// The read model folded from the same log agrees.
	a := audit.New(audit.Options{})
	head, err := audit.Run(ctx, store, a, audit.RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	model := memory.New(store)
	if err := projections.NewProjector(audit.Bounded(store, head), model, slog.New(slog.NewTextHandler(io.Discard, nil))).CatchUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckReadModel(ctx, "memory", audit.ReaderBalances(model)); err != nil {
		t.Fatal(err)
	}
	assertExactly(t, a.Finish())
	if !strings.Contains(a.Finish().ReadModel, "memory") {
		t.Errorf("read model not named: %q", a.Finish().ReadModel)
	}
}

// TestCorruptedHistory plants one corruption per account and expects
// exactly the violations it must cause, and nothing else.
func TestCorruptedHistory(t *testing.T) {
	var want []expect
	var logs []*acctLog
	var plant []func(written)
	billed := func(name string) *acctLog {
		a := newAcct(t, name, "10.00")
		a.deploy(name+"-1", price, t0)
		a.do(domain.Settle{}, at(3*time.Hour+30*time.Minute))
		a.topup(name+"-top", "5.00", at(3*time.Hour+40*time.Minute))
		a.do(domain.Settle{}, end)
		logs = append(logs, a)
		return a
	}
	topupTx := func(a *acctLog) int {
		return a.find(0, func(e domain.Event) bool {
			tx, ok := e.(domain.LedgerPosted)
			return ok && tx.Kind == domain.TxTopup
		})
	}

	// 1: a top-up credits 6.00 but takes only 5.00 from deposits; the chain
	// is resealed, so the imbalance shows, and (7) a credit that is not the
	// top-up's amount.
	unbalanced := billed("unbalanced")
	{
		i := topupTx(unbalanced)
		tx := unbalanced.ledger(i)
		tx.Postings = []domain.Posting{{Account: domain.CustomerLedger(unbalanced.id), Amount: domain.MustMoney("6.00")},
			{Account: domain.LedgerCryptoDeposits, Amount: domain.MustMoney("-5.00")}}
		unbalanced.events[i] = tx
		unbalanced.reseal()
		plant = append(plant, func(w written) {
			want = append(want, expect{audit.CheckBalanced, w.at(unbalanced, i)}, expect{audit.CheckTopups, w.at(unbalanced, i)})
		})
	}

	// 3: the third hour is charged a second time.
	doubled := billed("doubled")
	{
		i := doubled.chargeAt("doubled-1", at(2*time.Hour))
		tx := doubled.ledger(i)
		tx.TxID = "replayed"
		doubled.insert(i+1, tx)
		doubled.reseal()
		plant = append(plant, func(w written) { want = append(want, expect{audit.CheckBilling, w.at(doubled, i+1)}) })
	}

	// 3: the fourth hour's charge is gone; the missing run names the deploy.
	missing := billed("missing")
	{
		missing.remove(missing.chargeAt("missing-1", at(3*time.Hour)))
		missing.reseal()
		deployed := missing.find(0, func(e domain.Event) bool { _, ok := e.(domain.ServerDeployed); return ok })
		plant = append(plant, func(w written) { want = append(want, expect{audit.CheckBilling, w.at(missing, deployed)}) })
	}

	// 5: the top-up's amount was edited in place, hash left as it was; and
	// (7) it no longer matches the top-up.
	edited := billed("edited")
	{
		i := topupTx(edited)
		tx := edited.ledger(i)
		tx.Postings = []domain.Posting{{Account: domain.CustomerLedger(edited.id), Amount: domain.MustMoney("50.00")},
			{Account: domain.LedgerCryptoDeposits, Amount: domain.MustMoney("-50.00")}}
		edited.events[i] = tx
		plant = append(plant, func(w written) {
			want = append(want, expect{audit.CheckHashChain, w.at(edited, i)}, expect{audit.CheckTopups, w.at(edited, i)})
		})
	}

	// 5: a transaction was dropped: the next one's link breaks, once.
	dropped := billed("dropped")
	{
		i := topupTx(dropped)
		dropped.remove(i)
		next := i
		for {
			if _, ok := dropped.events[next].(domain.LedgerPosted); ok {
				break
			}
			next++
		}
		plant = append(plant, func(w written) { want = append(want, expect{audit.CheckHashChain, w.at(dropped, next)}) })
	}

	// 2: the hour the balance could not cover was charged anyway instead of
	// suspending the server, which was then destroyed.
	negative := newAcct(t, "negative", "1.00")
	negative.deploy("negative-1", price, t0)
	negative.do(domain.Settle{}, at(90*time.Minute))
	negative.do(domain.Destroy{ServerID: "negative-1"}, at(2*time.Hour+10*time.Minute))
	logs = append(logs, negative)
	{
		i := negative.find(0, func(e domain.Event) bool { _, ok := e.(domain.ServerSuspended); return ok })
		tx := negative.ledger(negative.chargeAt("negative-1", at(time.Hour)))
		from, to := at(2*time.Hour), at(3*time.Hour)
		tx.TxID, tx.From, tx.To, tx.At = "forced", &from, &to, from
		negative.events[i] = tx
		negative.reseal()
		plant = append(plant, func(w written) { want = append(want, expect{audit.CheckNonNegative, w.at(negative, i)}) })
	}

	// 4: a failed deploy whose refund never happened.
	unrefunded := newAcct(t, "unrefunded", "10.00")
	unrefunded.deploy("unrefunded-1", price, t0)
	unrefunded.do(domain.Settle{}, at(2*time.Hour+30*time.Minute))
	unrefunded.do(domain.FailDeploy{ServerID: "unrefunded-1", Reason: "provider"}, at(2*time.Hour+45*time.Minute))
	logs = append(logs, unrefunded)
	{
		unrefunded.remove(unrefunded.find(0, func(e domain.Event) bool {
			tx, ok := e.(domain.LedgerPosted)
			return ok && tx.Kind == domain.TxRefund
		}))
		failed := unrefunded.find(0, func(e domain.Event) bool { _, ok := e.(domain.ServerFailed); return ok })
		plant = append(plant, func(w written) { want = append(want, expect{audit.CheckRefunds, w.at(unrefunded, failed)}) })
	}

	// 3: an hour charged after the DELETE.
	afterDelete := newAcct(t, "after-delete", "10.00")
	afterDelete.deploy("after-delete-1", price, t0)
	afterDelete.do(domain.Destroy{ServerID: "after-delete-1"}, at(90*time.Minute))
	logs = append(logs, afterDelete)
	{
		tx := afterDelete.ledger(afterDelete.chargeAt("after-delete-1", at(time.Hour)))
		from, to := at(3*time.Hour), at(4*time.Hour)
		tx.TxID, tx.From, tx.To, tx.At = "late", &from, &to, from
		afterDelete.events = append(afterDelete.events, tx)
		afterDelete.reseal()
		i := len(afterDelete.events) - 1
		plant = append(plant, func(w written) { want = append(want, expect{audit.CheckBilling, w.at(afterDelete, i)}) })
	}

	// A clean account alongside, which must stay clean.
	logs = append(logs, cleanLogs(t)[1])

	store := openStore(t, t.TempDir())
	w := writeLogs(t, store, logs...)
	for _, p := range plant {
		p(w)
	}
	r := runAudit(t, store, audit.Options{})
	assertExactly(t, r, want...)
	var out bytes.Buffer
	if err := audit.WriteReport(&out, r, 3); err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		var all bytes.Buffer
		_ = audit.WriteReport(&all, r, 0)
		t.Log("\n" + all.String())
	}
	for _, want := range []string{"10 violation(s):", "... and 7 more", "1 balanced", "charged twice"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestGraceDecidesWhatIsDue(t *testing.T) {
	a := newAcct(t, "grace", "10.00")
	a.deploy("g-1", price, t0)
	a.do(domain.Settle{}, at(3*time.Hour+10*time.Minute)) // hours 0..3
	store := openStore(t, t.TempDir())
	w := writeLogs(t, store, a)
	deployed := w.at(a, a.find(0, func(e domain.Event) bool { _, ok := e.(domain.ServerDeployed); return ok }))

	// The log's own newest time is the last charge's hour (3h): all due
	// hours are charged.
	assertExactly(t, runAudit(t, store, audit.Options{}))
	// At 4h30 the biller is half an hour late for hour 4: within the grace.
	assertExactly(t, runAudit(t, store, audit.Options{Now: at(4*time.Hour + 30*time.Minute)}))
	// At 5h30 it is over an hour late: hours 4 (and not 5, within the
	// grace) are missing, one run.
	r := runAudit(t, store, audit.Options{Now: at(5*time.Hour + 30*time.Minute)})
	assertExactly(t, r, expect{audit.CheckBilling, deployed})
	if v := r.Violations[0]; !v.From.Equal(at(4*time.Hour)) || !v.To.Equal(at(5*time.Hour)) {
		t.Errorf("missing run [%s, %s)", v.From, v.To)
	}
	// No grace: hour 5 is due too, same run.
	r = runAudit(t, store, audit.Options{Now: at(5*time.Hour + 30*time.Minute), Grace: -1})
	assertExactly(t, r, expect{audit.CheckBilling, deployed})
	if v := r.Violations[0]; !v.To.Equal(at(6 * time.Hour)) {
		t.Errorf("missing run ends %s", v.To)
	}
}

// fakeBalances is a read model that disagrees on purpose.
type fakeBalances map[string]string

func (f fakeBalances) Balance(_ context.Context, id string) (domain.Money, bool, error) {
	s, ok := f[id]
	if !ok {
		return domain.Money{}, false, nil
	}
	return domain.MustMoney(s), true, nil
}

func TestReadModelCheck(t *testing.T) {
	logs := cleanLogs(t)
	store := openStore(t, t.TempDir())
	w := writeLogs(t, store, logs...)
	a := audit.New(audit.Options{})
	if _, err := audit.Run(context.Background(), store, a, audit.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	r := a.Finish()
	fake := fakeBalances{}
	for id, b := range r.Balances {
		fake[id] = b.String()
	}
	fake[logs[0].id] = "1234.00"
	delete(fake, logs[2].id)
	if err := a.CheckReadModel(context.Background(), "fake", fake); err != nil {
		t.Fatal(err)
	}
	last := func(l *acctLog) eventstore.Position { return w.at(l, len(l.events)-1) }
	assertExactly(t, r, expect{audit.CheckReadModel, last(logs[0])}, expect{audit.CheckReadModel, last(logs[2])})
	if !strings.Contains(r.Violations[0].Message, "1234.00") {
		t.Errorf("message: %s", r.Violations[0].Message)
	}
}

func TestUndecodableEventIsAViolation(t *testing.T) {
	store := openStore(t, t.TempDir())
	ctx := context.Background()
	res, err := store.Append(ctx, "account-x", eventstore.NoStream, []eventstore.Proposed{
		{ID: newID(), Type: "NoSuchEvent", Data: []byte(`{}`)},
		{ID: newID(), Type: "LedgerPosted", Data: []byte(`{"postings":"nope"}`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Money on a backup stream is outside every chain and balance.
	tx, _ := json.Marshal(domain.LedgerPosted{TxID: "x", Kind: domain.TxTopup, At: t0,
		Postings: []domain.Posting{{Account: "customer:x", Amount: domain.MustMoney("1.00")}, {Account: "crypto:deposits", Amount: domain.MustMoney("-1.00")}}})
	stray, err := store.Append(ctx, "backup-x", eventstore.NoStream, []eventstore.Proposed{{ID: newID(), Type: "LedgerPosted", Data: tx}})
	if err != nil {
		t.Fatal(err)
	}
	// Streams the domain does not own are counted and left alone.
	if _, err := store.Append(ctx, "other", eventstore.NoStream, []eventstore.Proposed{{ID: newID(), Type: "Whatever", Data: []byte(`1`)}}); err != nil {
		t.Fatal(err)
	}
	r := runAudit(t, store, audit.Options{})
	p := res.Position.Commit
	assertExactly(t, r, expect{audit.CheckDecode, eventstore.Position{Commit: p - 1, Prepare: p - 1}},
		expect{audit.CheckDecode, eventstore.Position{Commit: p, Prepare: p}}, expect{audit.CheckDecode, stray.Position})
	if r.Events != 4 {
		t.Errorf("events %d", r.Events)
	}
}

func TestRunStopsAtTheHeadItStartedWith(t *testing.T) {
	logs := cleanLogs(t)
	store := openStore(t, t.TempDir())
	writeLogs(t, store, logs[:2]...)
	ctx := context.Background()
	head, _ := store.Head(ctx)
	view := audit.Bounded(store, head)
	writeLogs(t, store, logs[2:]...)
	a := audit.New(audit.Options{})
	var progress []audit.Progress
	got, err := audit.Run(ctx, view, a, audit.RunOptions{Page: 10, Progress: func(p audit.Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatal(err)
	}
	if got != head || a.Finish().Last != head || a.Finish().Accounts != 2 {
		t.Errorf("audited to %s (last %s, %d accounts), head was %s", got, a.Finish().Last, a.Finish().Accounts, head)
	}
	if len(progress) < 2 || progress[len(progress)-1].Position != head || progress[0].Head != head {
		t.Errorf("progress %+v", progress)
	}
	if _, err := view.Append(ctx, "x", eventstore.Any, nil); err == nil {
		t.Error("the bounded view took an append")
	}
	all, err := view.ReadAll(ctx, eventstore.Position{}, 10_000)
	if err != nil || len(all) != int(head.Commit) {
		t.Errorf("bounded ReadAll: %d events, %v", len(all), err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := audit.Run(cancelled, store, audit.New(audit.Options{}), audit.RunOptions{}); err == nil {
		t.Error("Run ignored a cancelled context")
	}
}

// A read model that stopped at some position is compared with the fold at
// that position.
func TestReadModelCheckAtItsCheckpoint(t *testing.T) {
	logs := cleanLogs(t)
	store := openStore(t, t.TempDir())
	writeLogs(t, store, logs[:3]...)
	ctx := context.Background()
	at, _ := store.Head(ctx)
	model := memory.New(store)
	if err := projections.NewProjector(store, model, slog.New(slog.NewTextHandler(io.Discard, nil))).CatchUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	writeLogs(t, store, logs[3:]...)
	// The suspender tops up later: its final balance differs from the
	// model's, its balance at the checkpoint does not.
	logs[1].topup("late", "3.00", end)
	writeLogs(t, store, &acctLog{t: t, id: logs[1].id, events: logs[1].events[len(logs[1].events)-3:]})

	a := audit.New(audit.Options{BalancesAt: at})
	if _, err := audit.Run(ctx, store, a, audit.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.CheckReadModel(ctx, "memory", audit.ReaderBalances(model)); err != nil {
		t.Fatal(err)
	}
	r := a.Finish()
	if r.Count(audit.CheckReadModel) != 0 || !strings.Contains(r.ReadModel, "3 balances at position "+at.String()) {
		t.Fatalf("%q %v", r.ReadModel, r.Violations)
	}
}

// An account that moved its own sandbox clock has its hours due by its own
// time; other accounts' hours are due by the shared clock, which its moves
// leave where it was.
func TestAnAccountsOwnClockMakesOnlyItsOwnHoursDue(t *testing.T) {
	ahead := newAcct(t, "ahead", "10.00")
	ahead.deploy("ahead-1", price, t0)
	ahead.do(domain.Settle{}, at(5*time.Hour+10*time.Minute)) // hours 0..5, on its own clock
	behind := newAcct(t, "behind", "10.00")
	behind.deploy("behind-1", price, t0) // hour 0; its clock is still at t0
	store := openStore(t, t.TempDir())
	ctx := context.Background()
	props, err := eventstore.Propose(eventstore.Metadata{}, domain.Event(domain.AccountClockAdvanced{AccountID: ahead.id, Seconds: 5 * 3600,
		Offset: 5 * 3600, At: at(10 * time.Minute)}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, domain.ClockStream, eventstore.Any, props); err != nil {
		t.Fatal(err)
	}
	writeLogs(t, store, ahead, behind)
	assertExactly(t, runAudit(t, store, audit.Options{}))

	// The ahead account's own hours are still checked by its own time.
	late := newAcct(t, "late", "10.00")
	late.deploy("late-1", price, t0)
	late.do(domain.Settle{}, at(2*time.Hour+10*time.Minute)) // hours 0..2 only
	store = openStore(t, t.TempDir())
	props, err = eventstore.Propose(eventstore.Metadata{}, domain.Event(domain.AccountClockAdvanced{AccountID: late.id, Seconds: 5 * 3600,
		Offset: 5 * 3600, At: at(10 * time.Minute)}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, domain.ClockStream, eventstore.Any, props); err != nil {
		t.Fatal(err)
	}
	w := writeLogs(t, store, late, behind)
	deployed := w.at(late, late.find(0, func(e domain.Event) bool { _, ok := e.(domain.ServerDeployed); return ok }))
	assertExactly(t, runAudit(t, store, audit.Options{}), expect{audit.CheckBilling, deployed})
}

// The in-memory read model built from the audit's own read of the log (as
// `cryptovps audit` builds it) is the model a projector builds from the
// log: same balances, same views.
func TestReadModelBuiltAlongside(t *testing.T) {
	ctx := context.Background()
	store, _ := generatedStore(t, 5000)
	a := audit.New(audit.Options{})
	alongside := memory.New(store)
	head, err := audit.Run(ctx, store, a, audit.RunOptions{Model: alongside, Page: 100})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CheckReadModel(ctx, "memory", audit.ReaderBalances(alongside)); err != nil {
		t.Fatal(err)
	}
	assertExactly(t, a.Finish())
	projected := memory.New(store)
	if err := projections.NewProjector(audit.Bounded(store, head), projected, slog.New(slog.NewTextHandler(io.Discard, nil))).CatchUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for id := range a.Finish().Balances {
		got, err1 := alongside.Account(ctx, id)
		want, err2 := projected.Account(ctx, id)
		if err1 != nil || err2 != nil || got.Balance.String() != want.Balance.String() || got.HourlySpend.String() != want.HourlySpend.String() {
			t.Fatalf("account %s: %+v (%v), projected %+v (%v)", id, got, err1, want, err2)
		}
		gs, _ := alongside.Servers(ctx, id)
		ws, _ := projected.Servers(ctx, id)
		if fmt.Sprint(gs) != fmt.Sprint(ws) {
			t.Fatalf("account %s servers: %v, projected %v", id, gs, ws)
		}
		gl, _ := alongside.Ledger(ctx, id, eventstore.Position{}, 1000)
		wl, _ := projected.Ledger(ctx, id, eventstore.Position{}, 1000)
		if fmt.Sprint(gl) != fmt.Sprint(wl) {
			t.Fatalf("account %s ledger differs", id)
		}
	}
	if cp, _ := alongside.Checkpoint(ctx); cp != head {
		t.Errorf("the model built alongside is at %s, the log at %s", cp, head)
	}
}

// A log the read model cannot take (an account event that does not decode)
// fails its build, as it would fail a server's start, while the audit
// still reports the event.
func TestReadModelBuildFailsOnUndecodable(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, t.TempDir())
	if _, err := history.Build(ctx, store, 200, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	bad := eventstore.Proposed{ID: uuid.New(), Type: "LedgerPosted", Data: json.RawMessage(`{"postings":"not a list"}`)}
	if _, err := store.Append(ctx, domain.AccountStream("someone"), eventstore.Any, []eventstore.Proposed{bad}); err != nil {
		t.Fatal(err)
	}
	a := audit.New(audit.Options{})
	_, err := audit.Run(ctx, store, a, audit.RunOptions{Model: memory.New(store)})
	if !errors.Is(err, audit.ErrModel) || !strings.Contains(err.Error(), bad.ID.String()) {
		t.Fatalf("Run: %v, want ErrModel naming %s", err, bad.ID)
	}
	if r := a.Finish(); r.Count(audit.CheckDecode) != 1 {
		t.Errorf("decode violations: %d, want 1", r.Count(audit.CheckDecode))
	}
}
