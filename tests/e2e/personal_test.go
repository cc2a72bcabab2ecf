package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/tests/apiclient"
	"github.com/cryptovps/cryptovps/tests/binary"
)

// grepFiles fails the test if any file under root (or root itself) holds
// any of needles.
func grepFiles(t *testing.T, root string, needles ...string) {
	t.Helper()
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				t.Errorf("%s holds %q in plain", path, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestForgettingLeavesNoEmailAnywhere registers accounts on the real
// binary, copies its log, forgets two accounts (through DELETE /auth/me and
// through `cryptovps accounts forget`), and shows that no file of the data
// dir, no copy of the log and no output holds their emails, while the books
// still balance and the copy taken before the forget cannot show them
// either.
func TestForgettingLeavesNoEmailAnywhere(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--auth-rate-limit", "100000", "--rate-limit", "100000")
	keep, byAPI, byCLI := newAgent(srv, "keep-me@example.com"), newAgent(srv, "forget-api@example.com"), newAgent(srv, "a/forget-cli@example.com")
	for _, a := range []*agent{keep, byAPI, byCLI} {
		a.register(t)
	}
	emails := []string{keep.email, byAPI.email, byCLI.email}
	cli := func(args ...string) (string, error) {
		return srv.CLI(t, append(args, "--data-dir", srv.DataDir, "--server", srv.URL)...)
	}
	// The operator command takes the email as it is, slash included.
	out, err := cli("accounts", "show", byCLI.email)
	if err != nil || !strings.Contains(out, byCLI.id) || !strings.Contains(out, `"email":"`+byCLI.email+`"`) {
		t.Fatalf("accounts show %s: %v\n%s", byCLI.email, err, out)
	}
	// A copy of the log, taken before anything is forgotten.
	old := t.TempDir()
	if out, err := cli("backup", "--to", filepath.Join(old, "events.db")); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	// No email is in the data dir (log, key store, secrets), in the copy,
	// or in the server's log: the log holds them sealed, the key store
	// holds keyed hashes.
	grepFiles(t, srv.DataDir, emails...)
	grepFiles(t, old, emails...)
	for _, e := range emails {
		if strings.Contains(srv.Log(), e) {
			t.Errorf("the server's log holds %s", e)
		}
	}

	// Forget one through the API, giving its signup credit up...
	srv.do(t, apiclient.Request{Method: http.MethodDelete, Path: "/auth/me", Token: byAPI.token}).
		ExpectError(t, http.StatusConflict, "account_has_balance")
	var forgot struct {
		Forgotten bool   `json:"forgotten"`
		ID        string `json:"id"`
		Forfeited string `json:"forfeitedBalance"`
	}
	srv.do(t, apiclient.Request{Method: http.MethodDelete, Path: "/auth/me?forfeitBalance=true", Token: byAPI.token}).
		Expect(t, http.StatusOK).Decode(t, &forgot)
	if !forgot.Forgotten || forgot.ID != byAPI.id || forgot.Forfeited != "10.00" {
		t.Fatalf("DELETE /auth/me answered %+v", forgot)
	}
	// ... and one with the operator command, by its email.
	if out, err := cli("accounts", "forget", byCLI.email); err == nil || !strings.Contains(err.Error(), "account_has_balance") {
		t.Fatalf("forget without --forfeit-balance: %v\n%s", err, out)
	}
	out, err = cli("accounts", "forget", "--forfeit-balance", byCLI.email)
	if err != nil || !strings.Contains(out, `"email":"forgotten"`) || !strings.Contains(out, `"forgotten":true`) {
		t.Fatalf("accounts forget: %v\n%s", err, out)
	}

	// Their tokens and passwords no longer work; the other account's do.
	for _, a := range []*agent{byAPI, byCLI} {
		srv.do(t, apiclient.Request{Method: http.MethodGet, Path: "/auth/me", Token: a.token}).ExpectError(t, http.StatusUnauthorized, "unauthorized")
		srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/login", Body: map[string]string{"email": a.email, "password": a.password}}).
			ExpectError(t, http.StatusUnauthorized, "invalid_credentials")
		if out, err := cli("accounts", "show", a.email); err == nil {
			t.Errorf("accounts show finds a forgotten email: %s", out)
		}
		if out, err := cli("accounts", "show", a.id); err != nil || !strings.Contains(out, `"email":"forgotten"`) {
			t.Errorf("accounts show %s: %v\n%s", a.id, err, out)
		}
	}
	if u := keep.me(t); u.Email != keep.email {
		t.Fatalf("the account kept shows %q", u.Email)
	}
	// The books still balance, and the tools show the accounts forgotten
	// (keys.db is the server's: the tools ask it).
	if out, err := cli("audit"); err != nil || !strings.Contains(out, "no violations") || !strings.Contains(out, "forfeit") {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	if out, err := cli("replay", "--account", byAPI.id); err != nil || !strings.Contains(out, "("+domain.ForgottenEmail+")") {
		t.Errorf("replay of a forgotten account: %v\n%s", err, out)
	}
	if out, err := cli("replay", "--account", keep.email); err != nil || !strings.Contains(out, "("+keep.email+")") {
		t.Errorf("replay of an account kept: %v\n%s", err, out)
	}
	if out, err := cli("ledger", "export", "--account", byCLI.id); err != nil || !strings.Contains(out, "forfeit") {
		t.Errorf("ledger export of a forgotten account: %v\n%s", err, out)
	}

	srv.Stop(t)
	grepFiles(t, srv.DataDir, emails...)
	// The copy taken before the forget, beside today's key store: the
	// emails of the forgotten accounts cannot be read from it, and they no
	// longer find an account; the one kept still opens.
	copyFile(t, filepath.Join(srv.DataDir, "keys.db"), filepath.Join(old, "keys.db"))
	copyFile(t, filepath.Join(srv.DataDir, "secrets-key"), filepath.Join(old, "secrets-key"))
	tool := func(args ...string) (string, error) { return srv.CLI(t, append(args, "--data-dir", old)...) }
	for _, a := range []*agent{byAPI, byCLI} {
		out, err := tool("replay", "--account", a.id)
		if err != nil || !strings.Contains(out, "("+domain.ForgottenEmail+")") || strings.Contains(out, a.email) {
			t.Errorf("replay of the old copy for %s: %v\n%s", a.id, err, out)
		}
		if out, err := tool("replay", "--account", a.email); err == nil {
			t.Errorf("the old copy still finds %s: %s", a.email, out)
		}
	}
	if out, err := tool("replay", "--account", keep.email); err != nil || !strings.Contains(out, "("+keep.email+")") {
		t.Errorf("replay of the old copy for the account kept: %v\n%s", err, out)
	}
	if out, err := tool("audit"); err != nil || !strings.Contains(out, "no violations") {
		t.Errorf("audit of the old copy: %v\n%s", err, out)
	}

	// The email is free again: a new account, with a new id.
	srv.Restart(t)
	again := newAgent(srv, byAPI.email)
	again.register(t)
	if again.id == byAPI.id {
		t.Fatalf("registering a forgotten email again reopened the account %s", again.id)
	}
}

// TestAnOldLogKeepsWorking starts the binary on a log written before
// emails were sealed (the account id derived from the email, the email and
// hash in plain in AccountRegistered): the account still logs in, is found
// by the operator, is sealed and indexed at start, and can be forgotten.
func TestAnOldLogKeepsWorking(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	email, password := "old-timer@example.com", "correct horse battery"
	id := app.LegacyAccountID(email)
	hash, err := app.NewHasher(1).Hash(ctx, password)
	if err != nil {
		t.Fatal(err)
	}
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	events, err := domain.Decide(domain.NewAccount(id), domain.Register{AccountID: id, SealedEmail: "-",
		ServerLimit: 10, SignupCredit: domain.MustMoney("10.00")}, time.Now().UTC().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// As the oldest builds wrote it: the email in plain, and the password
	// hash in the log (moved to the credential store at start).
	reg := events[0].(domain.AccountRegistered)
	reg.Email, reg.SealedEmail, reg.PasswordHash = email, "", hash
	events[0] = reg
	var props []eventstore.Proposed
	for _, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		props = append(props, eventstore.Proposed{ID: uuid.New(), Type: e.EventType(), Data: data})
	}
	if _, err := store.Append(ctx, domain.AccountStream(id), eventstore.NoStream, props); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	srv := &server{Process: binary.Start(t, binary.Options{DataDir: dir})}
	a := newAgent(srv, email)
	a.password = password
	if u := a.login(t); u.ID != id || u.Email != email || u.Balance != "10.00" {
		t.Fatalf("the old account logs in as %+v", u)
	}
	srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/register", Body: map[string]string{"email": "Old-Timer@Example.com", "password": password}}).
		ExpectError(t, http.StatusConflict, "email_taken")
	cli := func(args ...string) (string, error) {
		return srv.CLI(t, append(args, "--data-dir", srv.DataDir, "--server", srv.URL)...)
	}
	if out, err := cli("accounts", "show", email); err != nil || !strings.Contains(out, id) {
		t.Fatalf("accounts show: %v\n%s", err, out)
	}
	// The key store holds a keyed hash of the email, never the email.
	grepFiles(t, filepath.Join(srv.DataDir, "keys.db"), email)
	srv.do(t, apiclient.Request{Method: http.MethodDelete, Path: "/auth/me?forfeitBalance=true", Token: a.token}).Expect(t, http.StatusOK)
	srv.do(t, apiclient.Request{Method: http.MethodPost, Path: "/auth/login", Body: map[string]string{"email": email, "password": password}}).
		ExpectError(t, http.StatusUnauthorized, "invalid_credentials")
	if out, err := cli("accounts", "show", id); err != nil || !strings.Contains(out, `"email":"forgotten"`) {
		t.Fatalf("accounts show %s: %v\n%s", id, err, out)
	}
	fresh := newAgent(srv, email)
	if u := fresh.register(t); u.ID == id {
		t.Fatalf("registering the email of a forgotten old account reopened it")
	}
	srv.Stop(t)
	// Its old AccountRegistered cannot be rewritten (the README says so),
	// but the tools show the account forgotten, and the books balance.
	tool := func(args ...string) (string, error) { return srv.CLI(t, append(args, "--data-dir", srv.DataDir)...) }
	if out, err := tool("replay", "--account", id); err != nil || !strings.Contains(out, "("+domain.ForgottenEmail+")") {
		t.Errorf("replay: %v\n%s", err, out)
	}
	if out, err := tool("audit"); err != nil || !strings.Contains(out, "no violations") {
		t.Errorf("audit: %v\n%s", err, out)
	}
}
