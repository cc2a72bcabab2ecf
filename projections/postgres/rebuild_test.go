package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

func indexNames(t *testing.T, m *Model) []string {
	t.Helper()
	rows, err := m.pool.Query(context.Background(),
		"SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() ORDER BY indexname")
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestRebuildRefillsEveryTableFromTheLogWithItsIndexes(t *testing.T) {
	log := generate(12, 3000)
	clean := newModel(t)
	applyIn(t, clean, log, func() int { return 512 })
	want, wantIndexes := dump(t, clean), indexNames(t, clean)

	m := newModel(t)
	m.rebuildBatch = 700 // several batches of a small log
	// Whatever the tables held before (here: another log) is dropped.
	applyIn(t, m, generate(13, 1000), func() int { return 300 })
	var progress []eventstore.Position
	if err := m.Rebuild(context.Background(), newMemStore(log), func(p eventstore.Position) {
		progress = append(progress, p)
	}); err != nil {
		t.Fatal(err)
	}
	sameDump(t, want, dump(t, m))
	if got := indexNames(t, m); !slices.Equal(got, wantIndexes) {
		t.Fatalf("indexes after a rebuild: %v, want %v", got, wantIndexes)
	}
	if len(progress) < 3 || progress[len(progress)-1] != log[len(log)-1].Position {
		t.Fatalf("progress reported %v", progress)
	}
	sameAnswers(t, memoryOf(t, log), m, universeOf(t, log))
}

func TestInterruptedRebuildIsPutRightByTheNextStart(t *testing.T) {
	log := generate(14, 3000)
	clean := newModel(t)
	applyIn(t, clean, log, func() int { return 512 })
	want, wantIndexes := dump(t, clean), indexNames(t, clean)

	m := newModel(t)
	m.rebuildBatch = 700
	url := m.pool.Config().ConnString()
	batches := 0
	m.beforeCommit = func() error {
		if batches++; batches == 2 {
			return errCrash
		}
		return nil
	}
	if err := m.Rebuild(context.Background(), newMemStore(log), nil); !errors.Is(err, errCrash) {
		t.Fatalf("rebuild: %v, want the simulated crash", err)
	}
	// The next start opens the database (which puts the indexes back) and
	// its projector carries on from the checkpoint.
	next := openModel(t, url)
	if got := indexNames(t, next); !slices.Equal(got, wantIndexes) {
		t.Fatalf("indexes after the next start: %v, want %v", got, wantIndexes)
	}
	cp, err := next.Checkpoint(context.Background())
	if err != nil || cp.Commit != 700 {
		t.Fatalf("checkpoint after the interrupted rebuild: %s, %v; want the first batch", cp, err)
	}
	if err := projections.NewProjector(newMemStore(log), next, quietLog()).CatchUp(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	sameDump(t, want, dump(t, next))
}

// A rebuild folds from memory, so it must be the only writer: a checkpoint
// moved by anything else between its batches stops it with an error
// rather than leaving tables that disagree with the log.
func TestRebuildStopsWhenAnotherWriterMovesTheCheckpoint(t *testing.T) {
	log := generate(15, 3000)
	m := newModel(t)
	m.rebuildBatch = 700
	batches := 0
	err := m.Rebuild(context.Background(), newMemStore(log), func(p eventstore.Position) {
		if batches++; batches == 2 {
			if _, err := m.pool.Exec(context.Background(), "UPDATE projection_checkpoints SET log_commit = log_commit + 1"); err != nil {
				t.Error(err)
			}
		}
	})
	if err == nil || !strings.Contains(err.Error(), "another process writes the read model") {
		t.Fatalf("rebuild: %v, want the other writer found", err)
	}
	if batches != 2 {
		t.Fatalf("%d batches applied, want the rebuild stopped after the second", batches)
	}
}

// Amounts go to numeric columns by coefficient and exponent: the value
// PostgreSQL keeps is the amount's own text.
func TestNumericIsTheAmount(t *testing.T) {
	for _, s := range []string{"0.014", "-0.014", "10000.00", "-10000.00", "0", "0.000", "-0.00", "5", "123456789012345678901234.5678901"} {
		n := numeric(domain.MustMoney(s))
		v, err := n.Value()
		if err != nil {
			t.Fatal(err)
		}
		want := strings.TrimPrefix(domain.MustMoney(s).String(), "-")
		if got := strings.TrimPrefix(v.(string), "-"); got != want || (v.(string)[0] == '-') != (domain.MustMoney(s).Sign() < 0) {
			t.Errorf("numeric(%s) = %v, want %s", s, v, domain.MustMoney(s).String())
		}
	}
}
