package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/projections/postgres"
	"github.com/cryptovps/cryptovps/tests/history"
	"github.com/cryptovps/cryptovps/tests/pgtest"
)

// dataDirWithLog is a data dir whose embedded store holds a generated log,
// and the in-memory model of that log.
func dataDirWithLog(t *testing.T, events int) (string, *memory.Model) {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := history.Generate(ctx, store, events, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	mem := memory.New(store)
	if err := projections.NewProjector(store, mem, nil).CatchUp(ctx, nil); err != nil {
		t.Fatal(err)
	}
	return dir, mem
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(args, &out, &errOut)
	return out.String() + errOut.String(), err
}

func TestProjectionsCommands(t *testing.T) {
	cluster := pgtest.StartCluster(t)

	t.Run("RebuildRefillsPostgresFromTheLogAndStatusShowsNoLag", func(t *testing.T) {
		dir, mem := dataDirWithLog(t, 3000)
		// The cluster trusts local connections: the password is only there
		// to check that no output shows it.
		url := strings.Replace(cluster.NewDatabase(t), "postgres@", "postgres:hunter2@", 1)
		ctx := context.Background()
		// A database that already holds something else: the rebuild starts over.
		stale, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		stale.Close()

		out, err := runCmd(t, "projections", "rebuild", "--data-dir", dir, "--database-url", url)
		if err != nil {
			t.Fatalf("rebuild: %v\n%s", err, out)
		}
		// Not a terminal: progress comes as lines, and the total at the end.
		if !strings.Contains(out, "rebuild: 100%") || !strings.Contains(out, "Rebuilt ") || strings.Contains(out, "hunter2") {
			t.Fatalf("rebuild output lacks progress or summary:\n%s", out)
		}
		m, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		want, _ := mem.Checkpoint(ctx)
		if cp, err := m.Checkpoint(ctx); err != nil || cp != want {
			t.Fatalf("checkpoint %s (%v), want %s", cp, err, want)
		}
		ids, _ := mem.WorkAccounts(ctx)
		if got, _ := m.WorkAccounts(ctx); strings.Join(got, ",") != strings.Join(ids, ",") || len(ids) == 0 {
			t.Fatalf("work accounts %v, want %v", got, ids)
		}
		for _, id := range ids {
			a, _ := mem.Account(ctx, id)
			b, err := m.Account(ctx, id)
			if err != nil || a.Balance.String() != b.Balance.String() {
				t.Fatalf("account %s: balance %s (%v), want %s", id, b.Balance, err, a.Balance)
			}
		}

		out, err = runCmd(t, "projections", "status", "--data-dir", dir, "--database-url", url)
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		if !strings.Contains(out, postgres.Projection) || !strings.Contains(out, "0 (up to date)") ||
			!strings.Contains(out, want.String()) {
			t.Fatalf("status output:\n%s", out)
		}
		if strings.Contains(out, "hunter2") {
			t.Fatalf("status printed the database password:\n%s", out)
		}
	})

	t.Run("StatusShowsTheLagOfAModelBehindTheLog", func(t *testing.T) {
		dir, _ := dataDirWithLog(t, 500)
		url := cluster.NewDatabase(t)
		out, err := runCmd(t, "projections", "status", "--data-dir", dir, "--database-url", url)
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		if !strings.Contains(out, " events") || strings.Contains(out, "up to date") {
			t.Fatalf("an empty model should lag the whole log:\n%s", out)
		}
	})

	t.Run("RebuildRefusesWhileARunningServerHoldsTheStore", func(t *testing.T) {
		dir, _ := dataDirWithLog(t, 100)
		held, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		url := cluster.NewDatabase(t)
		out, err := runCmd(t, "projections", "rebuild", "--data-dir", dir, "--database-url", url)
		if err == nil || !strings.Contains(err.Error(), "locked by a running cryptovps server") ||
			!strings.Contains(err.Error(), "stop it") {
			t.Fatalf("rebuild with the store held: %v\n%s", err, out)
		}
		out, err = runCmd(t, "projections", "status", "--data-dir", dir, "--database-url", url)
		if err != nil || !strings.Contains(out, "unknown") || !strings.Contains(out, "locked") {
			t.Fatalf("status with the store held: %v\n%s", err, out)
		}
	})

	t.Run("RebuildOfTheMemoryModelExplainsThereIsNothingToDo", func(t *testing.T) {
		dir, _ := dataDirWithLog(t, 100)
		out, err := runCmd(t, "projections", "rebuild", "--data-dir", dir)
		if err != nil || !strings.Contains(out, "in memory") || !strings.Contains(out, "every start") {
			t.Fatalf("rebuild without a database: %v\n%s", err, out)
		}
	})

	t.Run("RebuildRefusesADataDirWithoutAStore", func(t *testing.T) {
		url := cluster.NewDatabase(t)
		dir := t.TempDir()
		_, err := runCmd(t, "projections", "rebuild", "--data-dir", dir, "--database-url", url)
		if err == nil || !strings.Contains(err.Error(), "no event store") {
			t.Fatalf("rebuild of an empty data dir: %v", err)
		}
	})
}
