package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// backupTo runs cryptovps backup and checks the copy is private.
func backupTo(t *testing.T, to string, args ...string) (string, string) {
	t.Helper()
	out, errOut, err := toolRun(t, append([]string{"backup", "--to", to}, args...)...)
	if err != nil {
		t.Fatalf("backup: %v\n%s\n%s", err, out, errOut)
	}
	fi, err := os.Stat(to)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file mode %v, want 0600", fi.Mode().Perm())
	}
	return out, errOut
}

func TestBackupOfAStoppedDataDirPassesRestoreCheck(t *testing.T) {
	dir := toolDataDir(t, false)
	before, err := os.ReadFile(filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(t.TempDir(), "cryptovps.db")
	out, _ := backupTo(t, to, "--data-dir", dir)
	if !strings.Contains(out, "the log up to position 18") {
		t.Errorf("backup said: %s", out)
	}
	after, err := os.ReadFile(filepath.Join(dir, "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the backup wrote to the data dir's store")
	}
	// Again over the first copy: replaced whole, no temporary file left.
	backupTo(t, to, "--data-dir", dir)
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(to), ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	copyBefore, _ := os.ReadFile(to)
	out, errOut, err := toolRun(t, "restore-check", "--progress", "0", to)
	if err != nil {
		t.Fatalf("restore-check of a good copy: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "structure is sound") || !strings.Contains(out, "no violations") || !strings.Contains(out, "accounts 2") {
		t.Errorf("restore-check said:\n%s\n%s", errOut, out)
	}
	if copyAfter, _ := os.ReadFile(to); !bytes.Equal(copyBefore, copyAfter) {
		t.Error("restore-check wrote to the copy")
	}

	if _, _, err := toolRun(t, "backup", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "--to") {
		t.Errorf("without --to: %v", err)
	}
	if _, _, err := toolRun(t, "backup", "--data-dir", filepath.Join(dir, "nope"), "--to", to); err == nil || !strings.Contains(err.Error(), "no event store") {
		t.Errorf("missing data dir: %v", err)
	}
	if _, _, err := toolRun(t, "backup", "--eventstore-url", "esdb://localhost:2113", "--to", to); err == nil || !strings.Contains(err.Error(), "KurrentDB") {
		t.Errorf("KurrentDB: %v", err)
	}
}

func TestBackupOfARunningServer(t *testing.T) {
	dir, store, hs := runningServer(t)

	to := filepath.Join(t.TempDir(), "online.db")
	if _, _, err := toolRun(t, "backup", "--data-dir", dir, "--server", hs.URL, "--admin-token", "wrong", "--to", to); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
	if _, err := os.Stat(to); !os.IsNotExist(err) {
		t.Errorf("a failed backup left %s: %v", to, err)
	}
	out, errOut := backupTo(t, to, "--data-dir", dir, "--server", hs.URL, "--admin-token", serverToken)
	if !strings.Contains(errOut, "locked by a running server") || !strings.Contains(out, "backup of "+hs.URL) {
		t.Errorf("backup said:\n%s\n%s", errOut, out)
	}
	head, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "position "+head.String()+",") {
		t.Errorf("the copy is not of the head %s: %s", head, out)
	}
	out, errOut, err = toolRun(t, "restore-check", "--progress", "0", to)
	if err != nil || !strings.Contains(out, "no violations") {
		t.Fatalf("restore-check of an online copy: %v\n%s\n%s", err, out, errOut)
	}
}

func TestRestoreCheckFailsOnADamagedCopy(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	backupTo(t, good, "--data-dir", toolDataDir(t, false))
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	write := func(name string, b []byte) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	zeroed := bytes.Clone(raw)
	clear(zeroed[2*page : len(zeroed)-page]) // every page but the metas and the last
	for _, tc := range []struct {
		name, file, want string
	}{
		{"truncated", write("truncated.db", raw[:len(raw)/2]), "truncated"},
		{"zeroed pages", write("zeroed.db", zeroed), "damaged"},
		{"not a store", write("text.db", bytes.Repeat([]byte("not a store "), 2000)), "does not open"},
		{"missing", filepath.Join(t.TempDir(), "nope.db"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := toolRun(t, "restore-check", "--progress", "0", tc.file)
			t.Logf("%v", err)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("restore-check: %v, want an error saying %q\n%s\n%s", err, tc.want, out, errOut)
			}
		})
	}

	// A copy whose log breaks the billing rules (an hour charged twice) is
	// whole as a file, and fails the audit.
	bad := filepath.Join(t.TempDir(), "doubled.db")
	backupTo(t, bad, "--data-dir", toolDataDir(t, true))
	out, _, err := toolRun(t, "restore-check", "--progress", "0", bad)
	if !errors.Is(err, errViolations) || !strings.Contains(out, "charged twice") {
		t.Errorf("restore-check of a copy with a violation: %v\n%s", err, out)
	}
}
