package postgres

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func logSize() int {
	if testing.Short() {
		return 2500
	}
	return 6000
}

func TestAnswersMatchTheMemoryModelThroughoutVariedLogs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		seed  uint64
		idle  time.Duration
		jumps int
	}{
		{"busy", 1, 2 * time.Minute, 1500},
		{"busy2", 2, 2 * time.Minute, 1500},
		// Weeks go by: backups expire, money runs out, servers are suspended.
		{"slow", 3, 20 * time.Minute, 300},
	} {
		seed := tc.seed
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			log := generateWith(seed, logSize(), tc.idle, tc.jumps)
			pg, mem := newModel(t), memory.New(streamsOf(log))
			rng := rand.New(rand.NewPCG(seed, 7))
			sizes := func() int { return 1 + rng.IntN(700) }
			// Compare at a few points of the log's life, not only at the end:
			// backups still pending, servers still provisioning, ...
			for _, end := range []int{len(log) / 5, len(log) / 2, len(log)} {
				start := 0
				if cp, _ := mem.Checkpoint(context.Background()); !cp.IsZero() {
					start = int(cp.Commit)
				}
				applyIn(t, pg, log[start:end], sizes)
				applyIn(t, mem, log[start:end], sizes)
				sameAnswers(t, mem, pg, universeOf(t, log[:end]))
			}
		})
	}
}

func TestPostingsSumToTheBalanceAndEachTransactionToZero(t *testing.T) {
	log := generate(4, logSize())
	pg := newModel(t)
	applyIn(t, pg, log, func() int { return 1000 })
	ctx := context.Background()
	u := universeOf(t, log)
	for _, id := range u.accounts {
		v, err := pg.Account(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		// The finance person's query, verbatim.
		var sum *string
		if err := pg.pool.QueryRow(ctx, "SELECT sum(amount)::text FROM postings WHERE account = 'customer:"+id+"'").
			Scan(&sum); err != nil {
			t.Fatal(err)
		}
		got := "0"
		if sum != nil {
			got = *sum
		}
		if got != v.Balance.String() {
			t.Errorf("account %s: postings sum to %s, balance is %s", id, got, v.Balance)
		}
	}
	var unbalanced, transactions, withoutPostings int
	if err := pg.pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM (SELECT 1 FROM postings GROUP BY log_commit, log_prepare HAVING sum(amount) <> 0) u),
			(SELECT count(*) FROM ledger_transactions),
			(SELECT count(*) FROM ledger_transactions l WHERE NOT EXISTS (SELECT 1 FROM postings p
				WHERE p.log_commit = l.log_commit AND p.log_prepare = l.log_prepare))`).
		Scan(&unbalanced, &transactions, &withoutPostings); err != nil {
		t.Fatal(err)
	}
	if unbalanced != 0 || withoutPostings != 0 || transactions == 0 {
		t.Fatalf("%d transactions, %d unbalanced, %d without postings", transactions, unbalanced, withoutPostings)
	}
}

func TestRedeliveredAndOverlappingBatchesChangeNothing(t *testing.T) {
	log := generate(5, logSize())
	clean := newModel(t)
	applyIn(t, clean, log, func() int { return 500 })
	want := dump(t, clean)

	pg := newModel(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 5))
	// Each batch starts somewhere before the end of the previous one, as a
	// subscription restarted from an older position would deliver it, and
	// is sometimes delivered twice.
	for end := 0; end < len(log); {
		start := max(0, end-rng.IntN(300))
		stop := min(len(log), end+1+rng.IntN(400))
		for range 1 + rng.IntN(2) {
			if err := pg.Apply(ctx, log[start:stop]); err != nil {
				t.Fatal(err)
			}
		}
		end = stop
	}
	// The whole log again, in one go: nothing new.
	if err := pg.Apply(ctx, log); err != nil {
		t.Fatal(err)
	}
	sameDump(t, want, dump(t, pg))
}

var errCrash = errors.New("simulated crash before commit")

func TestCrashBeforeCommitLeavesTablesAsOneCleanPass(t *testing.T) {
	log := generate(6, logSize())
	clean := newModel(t)
	applyIn(t, clean, log, func() int { return 512 })
	want := dump(t, clean)

	pg := newModel(t)
	rng := rand.New(rand.NewPCG(6, 6))
	var mu sync.Mutex
	crashes := 0
	pg.beforeCommit = func() error {
		mu.Lock()
		defer mu.Unlock()
		if rng.IntN(3) == 0 {
			crashes++
			return errCrash
		}
		return nil
	}
	// The projector's loop: read the checkpoint, apply from there, and on
	// failure start again from the checkpoint.
	ctx := context.Background()
	for {
		cp, err := pg.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := int(cp.Commit) // the generator's positions are 1, 2, 3, ...
		if i == len(log) {
			break
		}
		err = pg.Apply(ctx, log[i:min(len(log), i+1+rng.IntN(600))])
		if err != nil && !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
	}
	if crashes == 0 {
		t.Fatal("no crash was simulated")
	}
	sameDump(t, want, dump(t, pg))
}

func TestProjectorsOfSeveralProcessesApplyEachEventOnce(t *testing.T) {
	log := generate(7, logSize())
	clean := newModel(t)
	applyIn(t, clean, log, func() int { return 512 })
	want := dump(t, clean)

	// Three "processes": each its own pool and projector on one database,
	// all subscribed to the same log while it grows.
	first := newModel(t)
	url := first.pool.Config().ConnString()
	store := newMemStore(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range 3 {
		m := first
		if i > 0 {
			m = openModel(t, url)
		}
		p := projections.NewProjector(store, m, quietLog())
		wg.Go(func() { _ = p.Run(ctx) })
	}
	for i := 0; i < len(log); i += 97 {
		store.add(log[i:min(len(log), i+97)]...)
	}
	waitCheckpoint(t, first, log[len(log)-1].Position)
	cancel()
	wg.Wait()
	sameDump(t, want, dump(t, first))
}

func waitCheckpoint(t testing.TB, m projections.Model, pos eventstore.Position) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		cp, err := m.Checkpoint(context.Background())
		if err == nil && !cp.Less(pos) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint %s did not reach %s (last error %v)", cp, pos, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUndecodableEventFailsTheBatchAndChangesNothing(t *testing.T) {
	log := generate(8, 300)
	pg := newModel(t)
	applyIn(t, pg, log[:100], func() int { return 100 })
	before := dump(t, pg)
	bad := slices.Clone(log[100:200])
	bad[50].Data = []byte(`{"serverId": 42}`)
	bad[50].Type = "ServerActivated"
	bad[50].Stream = domain.AccountStream("x")
	if err := pg.Apply(context.Background(), bad); err == nil {
		t.Fatal("a batch with an undecodable event was applied")
	}
	sameDump(t, before, dump(t, pg))
}

func TestResetDropsEveryTableTheMigrationsCreateAndStartsOver(t *testing.T) {
	pg := newModel(t)
	ctx := context.Background()
	tables := func() []string {
		rows, err := pg.pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
			AND tablename NOT IN ('schema_migrations', 'schema_deferred_indexes') ORDER BY tablename`)
		if err != nil {
			t.Fatal(err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(readModelTables), keptTables...)))
	if got := tables(); !slices.Equal(got, want) {
		t.Fatalf("the migrations create %v; Reset drops %v: keep readModelTables in step", got, want)
	}
	applyIn(t, pg, generate(9, 500), func() int { return 100 })
	if err := pg.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tables(); !slices.Equal(got, want) {
		t.Fatalf("after Reset: tables %v, want %v", got, want)
	}
	cp, err := pg.Checkpoint(ctx)
	if err != nil || !cp.IsZero() {
		t.Fatalf("after Reset: checkpoint %s, %v", cp, err)
	}
	var n int
	if err := pg.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM postings)").Scan(&n); err != nil || n != 0 {
		t.Fatalf("after Reset: %d rows, %v", n, err)
	}
	// And it fills again from the start, to the same answers.
	log := generate(9, 500)
	applyIn(t, pg, log, func() int { return 100 })
	sameAnswers(t, memoryOf(t, log), pg, universeOf(t, log))
}

func TestMigratingAgainIsHarmless(t *testing.T) {
	pg := newModel(t)
	for range 2 {
		if err := Migrate(context.Background(), pg.pool); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := pg.pool.QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	all, _ := migrations()
	if n != len(all) {
		t.Fatalf("%d migrations recorded, %d embedded", n, len(all))
	}
}

func TestMoneyKeepsItsExactDecimalText(t *testing.T) {
	pg := newModel(t)
	ctx := context.Background()
	conn, err := pg.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	amounts := []string{"0", "10.00", "0.014", "-0.014", "9.986", "-10.000", "0.00", "10000.00", "123456789012.345678", "-0.5",
		"18446744073709551615", "18446744073709551616", "123456789012345678901234.5678901", "0.0000000000000001",
		"0.00000000000000001", "-99999999.9999"}
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE amounts (i int, a numeric)"); err != nil {
		t.Fatal(err)
	}
	// The way the ledger goes in: binary COPY of copyRows.
	var rows copyRows
	for i, s := range amounts {
		rows.row(2)
		rows.int4(int32(i))
		if err := rows.numeric(domain.MustMoney(s)); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := copyIn(ctx, tx, "amounts", "i, a", &rows); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for i, s := range amounts {
		var viaCopy, viaText string
		if err := conn.QueryRow(ctx, "SELECT a::text, $2::text::numeric::text FROM amounts WHERE i = $1", i, s).
			Scan(&viaCopy, &viaText); err != nil {
			t.Fatal(err)
		}
		m, err := domain.ParseMoney(viaCopy)
		if err != nil {
			t.Fatal(err)
		}
		if viaCopy != s || viaText != s || m.String() != domain.MustMoney(s).String() {
			t.Errorf("%s came back as %s (COPY) and %s (text)", s, viaCopy, viaText)
		}
	}
}

func TestReadsOfAnEmptyModelAnswerNotFound(t *testing.T) {
	pg := newModel(t)
	ctx := context.Background()
	if _, err := pg.Account(ctx, "a"); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("Account: %v", err)
	}
	if _, err := pg.Servers(ctx, "a"); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("Servers: %v", err)
	}
	if bs, err := pg.Backups(ctx, "a", time.Now()); err != nil || bs == nil || len(bs) != 0 {
		t.Errorf("Backups: %v, %v", bs, err)
	}
	if w, err := pg.WorkAccounts(ctx); err != nil || w != nil {
		t.Errorf("WorkAccounts: %v, %v", w, err)
	}
}
