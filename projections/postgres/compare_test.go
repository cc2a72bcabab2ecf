package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// newModel is a Postgres model on a fresh database of its own.
func newModel(t testing.TB) *Model {
	t.Helper()
	return openModel(t, pgtest.Start(t))
}

func openModel(t testing.TB, url string) *Model {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := Open(ctx, url)
	if err != nil {
		t.Fatalf("open model: %v", err)
	}
	t.Cleanup(m.Close)
	return m
}

// applyIn applies log to model in batches of random sizes up to max.
func applyIn(t testing.TB, model projections.Model, log []eventstore.Event, sizes func() int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < len(log); {
		n := min(len(log)-i, sizes())
		if err := model.Apply(ctx, log[i:i+n]); err != nil {
			t.Fatalf("apply events %d..%d: %v", i, i+n, err)
		}
		i += n
	}
}

// universe is what a log talks about: the ids to ask both models about.
type universe struct {
	accounts []string
	servers  map[string][]string // by account
	topups   map[string][]string // by account
	apiKeys  map[string][]string // by account, deleted ones too
	backups  map[string]string   // id -> owner
	// expiries are the instants where each backup's visibility flips: the
	// exact boundary must agree, to the nanosecond.
	expiries map[string]time.Time
	first    time.Time // the earliest expiry
	end      time.Time
}

func universeOf(t testing.TB, log []eventstore.Event) universe {
	u := universe{servers: map[string][]string{}, topups: map[string][]string{}, apiKeys: map[string][]string{},
		backups: map[string]string{}, expiries: map[string]time.Time{}}
	seen := map[string]bool{}
	for _, ev := range log {
		prefix, id := domain.StreamID(ev.Stream)
		if prefix != domain.AccountStreamPrefix && prefix != domain.BackupStreamPrefix {
			continue
		}
		e, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			t.Fatal(err)
		}
		switch e := e.(type) {
		case domain.AccountRegistered:
			if !seen[id] {
				seen[id] = true
				u.accounts = append(u.accounts, id)
			}
			u.end = e.At
		case domain.ServerDeployed:
			u.servers[id] = append(u.servers[id], e.ServerID)
		case domain.TopupCreated:
			u.topups[id] = append(u.topups[id], e.TopupID)
		case domain.APIKeyCreated:
			u.apiKeys[id] = append(u.apiKeys[id], e.KeyID)
		case domain.BackupRequested:
			u.backups[id] = e.AccountID
			u.expiries[id] = e.ExpiresAt
			if u.first.IsZero() || e.ExpiresAt.Before(u.first) {
				u.first = e.ExpiresAt
			}
		}
		if ev.RecordedAt.After(u.end) {
			u.end = ev.RecordedAt
		}
	}
	return u
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func accountStr(v projections.AccountView) string {
	return fmt.Sprintf("account %s email=%+v forgotten=%v balance=%s spend=%s suspended=%v limit=%d created=%s", v.ID, v.Email,
		v.Forgotten, v.Balance, v.HourlySpend, v.Suspended, v.ServerLimit, stamp(v.CreatedAt))
}

func serverStr(v projections.ServerView) string {
	return fmt.Sprintf("server %s/%s label=%s status=%s region=%s plan=%s ipv4=%s hostkeys=%q(%v) price=%s keys=%q(%v) backup=%s created=%s",
		v.AccountID, v.ID, v.Label, v.Status, v.Region, v.Plan, v.IPv4, v.HostKeyFingerprints, v.HostKeyFingerprints == nil,
		v.HourlyPrice, v.SSHKeys, v.SSHKeys == nil, v.BackupID, stamp(v.CreatedAt))
}

func topupStr(v projections.TopupView) string {
	return fmt.Sprintf("topup %s/%s status=%s amount=%s currency=%s address=%s created=%s paid=%s", v.AccountID, v.ID,
		v.Status, v.Amount, v.Currency, v.PayAddress, stamp(v.CreatedAt), stamp(v.PaidAt))
}

func backupStr(v projections.BackupView) string {
	return fmt.Sprintf("backup %s/%s server=%s label=%s status=%s region=%s plan=%s created=%s expires=%s", v.AccountID,
		v.ID, v.ServerID, v.Label, v.Status, v.Region, v.Plan, stamp(v.CreatedAt), stamp(v.ExpiresAt))
}

func ledgerStr(v projections.LedgerEntry) string {
	opt := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return stamp(*t)
	}
	return fmt.Sprintf("tx %s at %s kind=%s amount=%s after=%s created=%s server=%s from=%s to=%s topup=%s", v.TxID,
		v.Position, v.Kind, v.Amount, v.BalanceAfter, stamp(v.CreatedAt), v.ServerID, opt(v.From), opt(v.To), v.TopupID)
}

func errStr(t testing.TB, err error) string {
	t.Helper()
	if errors.Is(err, projections.ErrNotFound) {
		return "not found"
	}
	t.Fatalf("unexpected read error: %v", err)
	return ""
}

func list[T any](t testing.TB, vs []T, err error, str func(T) string) string {
	t.Helper()
	if err != nil {
		return errStr(t, err)
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = str(v)
	}
	return fmt.Sprintf("%d (nil=%v): %s", len(vs), vs == nil, strings.Join(parts, "; "))
}

func one[T any](t testing.TB, v T, err error, str func(T) string) string {
	t.Helper()
	if err != nil {
		return errStr(t, err)
	}
	return str(v)
}

// answers asks a model every question of the Reader about u, and returns
// the answers as text: two models agree when the texts are equal.
func answers(t testing.TB, r projections.Model, u universe) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	add := func(q, a string) { out = append(out, q+" -> "+a) }
	cp, err := r.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	add("checkpoint", cp.String())
	nows := []time.Time{u.end, u.end.Add(30 * 24 * time.Hour), u.first, u.first.Add(-time.Nanosecond)}
	for _, id := range append(u.accounts, "00000000-0000-4000-8000-000000000000") {
		v, err := r.Account(ctx, id)
		add("account "+id, one(t, v, err, accountStr))
		ss, err := r.Servers(ctx, id)
		add("servers "+id, list(t, ss, err, serverStr))
		for _, sid := range append(u.servers[id], "no-such-server") {
			v, err := r.Server(ctx, id, sid)
			add("server "+id+"/"+sid, one(t, v, err, serverStr))
		}
		all, err := r.Ledger(ctx, id, eventstore.Position{}, 1_000_000)
		add("ledger "+id, list(t, all, err, ledgerStr))
		if len(all) > 2 {
			mid := all[len(all)/2].Position
			page, err := r.Ledger(ctx, id, mid, 3)
			add("ledger "+id+" before "+mid.String(), list(t, page, err, ledgerStr))
		}
		ts, err := r.Topups(ctx, id)
		add("topups "+id, list(t, ts, err, topupStr))
		for _, tid := range append(u.topups[id], "no-such-topup") {
			v, err := r.Topup(ctx, id, tid)
			add("topup "+id+"/"+tid, one(t, v, err, topupStr))
		}
		for _, now := range nows {
			bs, err := r.Backups(ctx, id, now)
			add("backups "+id+" at "+stamp(now), list(t, bs, err, backupStr))
		}
		for _, kid := range append(u.apiKeys[id], "", "no-such-key") {
			v, err := r.Session(ctx, id, kid)
			add("session "+id+" key "+kid, one(t, v, err, func(v projections.SessionView) string { return fmt.Sprintf("%+v", v) }))
		}
		keys, err := r.APIKeys(ctx, id)
		add("api keys "+id, list(t, keys, err, func(k domain.APIKey) string {
			return fmt.Sprintf("%s %q %s", k.ID, k.Name, stamp(k.CreatedAt))
		}))
	}
	ids := make([]string, 0, len(u.backups))
	for id := range u.backups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		owner, e := u.backups[id], u.expiries[id]
		for _, now := range []time.Time{u.end, e.Add(-time.Nanosecond), e, u.first} {
			v, err := r.Backup(ctx, owner, id, now)
			add("backup "+id+" at "+stamp(now), one(t, v, err, backupStr))
		}
		bs, err := r.Backups(ctx, owner, e.Add(-time.Nanosecond))
		add("backups "+owner+" just before "+id+" expires", list(t, bs, err, backupStr))
		v, err := r.Backup(ctx, "someone-else", id, u.end)
		add("backup "+id+" of someone else", one(t, v, err, backupStr))
	}
	work, err := r.WorkAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	add("work accounts", fmt.Sprintf("%v nil=%v", work, work == nil))
	open, err := r.OpenBackups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	add("open backups", fmt.Sprintf("%v nil=%v", open, open == nil))
	personal, err := r.PersonalData(ctx)
	if err != nil {
		t.Fatal(err)
	}
	add("personal data", fmt.Sprintf("%+v nil=%v", personal, personal == nil))
	pending, err := r.PendingLimitRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	add("pending limit requests", fmt.Sprintf("%d", len(pending)))
	return out
}

// sameAnswers fails unless the two models answer every question alike.
func sameAnswers(t testing.TB, want, got projections.Model, u universe) {
	t.Helper()
	w, g := answers(t, want, u), answers(t, got, u)
	if len(w) != len(g) {
		t.Fatalf("asked %d questions of one model and %d of the other", len(w), len(g))
	}
	bad := 0
	for i := range w {
		if w[i] != g[i] {
			t.Errorf("answers differ:\nmemory:   %s\npostgres: %s", w[i], g[i])
			if bad++; bad == 10 {
				t.Fatal("too many differences")
			}
		}
	}
}

// streams is a log in memory read by stream, what the in-memory model
// reads the ledger from (memory.Log).
type streams map[string][]eventstore.Event

func streamsOf(log []eventstore.Event) streams {
	s := streams{}
	for _, ev := range log {
		s[ev.Stream] = append(s[ev.Stream], ev)
	}
	return s
}

func (s streams) ReadStreamPage(_ context.Context, stream string, from uint64, limit int) ([]eventstore.Event, error) {
	evs := s[stream]
	i := sort.Search(len(evs), func(i int) bool { return evs[i].Version >= from })
	return evs[i:min(len(evs), i+limit)], nil
}

// memoryOf is the in-memory model of log: the reference answers.
func memoryOf(t testing.TB, log []eventstore.Event) *memory.Model {
	t.Helper()
	m := memory.New(streamsOf(log))
	if err := m.Apply(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	return m
}

// dump is every row of every read-model table as text, in key order: two
// databases hold the same read models when their dumps are equal. The
// checkpoint's updated_at is left out (it is when, not what).
func dump(t testing.TB, m *Model) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, q := range []string{
		"SELECT a::text FROM accounts a ORDER BY id",
		"SELECT s::text FROM servers s ORDER BY account_id, id",
		"SELECT t::text FROM topups t ORDER BY account_id, id",
		"SELECT b::text FROM backups b ORDER BY id",
		"SELECT l::text FROM ledger_transactions l ORDER BY log_commit, log_prepare",
		"SELECT p::text FROM postings p ORDER BY log_commit, log_prepare, n",
		"SELECT name || ' ' || log_commit || ' ' || log_prepare FROM projection_checkpoints ORDER BY name",
	} {
		rows, err := m.pool.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %d rows\n%s\n", q, len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

func sameDump(t testing.TB, want, got string) {
	t.Helper()
	if want == got {
		return
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < min(len(w), len(g)); i++ {
		if w[i] != g[i] {
			t.Fatalf("tables differ from a clean pass at line %d:\nclean: %s\ngot:   %s", i, w[i], g[i])
		}
	}
	t.Fatalf("tables differ from a clean pass: %d lines, want %d", len(g), len(w))
}
