package stack_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltcreds"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// oldRegistration appends, as a build before the credential store did, an
// AccountRegistered carrying the password hash.
func oldRegistration(t *testing.T, store eventstore.Store, email, hash string) string {
	t.Helper()
	id := app.AccountID(email)
	events, err := eventstore.Propose(eventstore.Metadata{Actor: "account:" + id},
		domain.Event(domain.AccountRegistered{AccountID: id, Email: email, PasswordHash: hash, ServerLimit: 10,
			At: time.Now().UTC().Truncate(time.Millisecond)}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(context.Background(), domain.AccountStream(id), eventstore.NoStream, events); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestHashesInAnOldLogMoveToTheCredentialStoreAndAreIgnoredThen: a log written
// before the credential store keeps its logins; at start the hashes move to
// the store (once: the import remembers where it stopped); from then on the
// log's copy counts for nothing: a changed or erased password stays so
// across restarts.
func TestHashesInAnOldLogMoveToTheCredentialStoreAndAreIgnoredThen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	hasher := app.NewHasher(2)
	store, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	oldHash, err := hasher.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	early := oldRegistration(t, store, "early@example.com", oldHash)
	late := oldRegistration(t, store, "late@example.com", oldHash)
	erased := oldRegistration(t, store, "erased@example.com", oldHash)

	start := func() (*stack.Stack, *boltcreds.Store, client, func()) {
		creds, err := boltcreds.Open(filepath.Join(dir, "credentials.db"))
		if err != nil {
			t.Fatal(err)
		}
		st, err := stack.New(ctx, stack.Config{Store: store, Model: memory.New(), Credentials: creds, Hasher: hasher,
			SandboxCloud: filepath.Join(dir, "cloud.json"), SandboxCloudOptions: sandbox.CloudOptions{ProvisionDelay: time.Minute},
			ManualWork: true, App: app.Config{SignupCredit: domain.MustMoney("10.00"), ServerLimit: 10},
			API: api.Config{JWTSecret: []byte("0123456789abcdef0123456789abcdef")}})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(st.API)
		return st, creds, client{t: t, url: hs.URL}, func() { hs.Close(); _ = st.Close(); _ = creds.Close() }
	}
	login := func(c client, email, password string) int {
		code, _ := c.do("POST", "/auth/login", "", map[string]string{"email": email, "password": password})
		return code
	}

	st, creds, c, stop := start()
	// Before the background import runs, a login moves its own account's
	// hash.
	if code := login(c, "early@example.com", "correct horse battery"); code != 200 {
		t.Fatalf("login with a password from the old log: %d", code)
	}
	if got, err := creds.Password(ctx, early); err != nil || got != oldHash {
		t.Fatalf("the login did not move the hash: %q, %v", got, err)
	}
	if err := creds.Erase(ctx, erased); err != nil {
		t.Fatal(err)
	}
	stopRun := st.Start()
	<-st.CredentialsImported()
	if got, err := creds.Password(ctx, late); err != nil || got != oldHash {
		t.Fatalf("the import did not move the hash: %q, %v", got, err)
	}
	if _, err := creds.Password(ctx, erased); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("the import brought back an erased account's hash: %v", err)
	}
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := creds.Imported(ctx); err != nil || p != head.String() {
		t.Fatalf("import position %q, %v; want the head %s", p, err, head)
	}
	if code := login(c, "erased@example.com", "correct horse battery"); code != 401 {
		t.Fatalf("login of an erased account: %d", code)
	}
	// The store's password is the one: replaced, the log's copy no longer
	// logs in, and a restart does not bring it back.
	newHash, err := hasher.Hash(ctx, "a brand new passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if err := creds.SetPassword(ctx, late, newHash); err != nil {
		t.Fatal(err)
	}
	stopRun()
	stop()

	// A fresh import position would read the whole log again: it must not
	// undo anything either.
	st, creds, c, stop = start()
	defer stop()
	if err := creds.SetImported(ctx, ""); err != nil {
		t.Fatal(err)
	}
	stopRun = st.Start()
	defer stopRun()
	<-st.CredentialsImported()
	if code := login(c, "late@example.com", "correct horse battery"); code != 401 {
		t.Fatalf("the log's old password still logs in after a change: %d", code)
	}
	if code := login(c, "late@example.com", "a brand new passphrase"); code != 200 {
		t.Fatalf("the new password: %d", code)
	}
	if code := login(c, "erased@example.com", "correct horse battery"); code != 401 {
		t.Fatalf("login of an erased account after a restart: %d", code)
	}
	if code := login(c, "early@example.com", "correct horse battery"); code != 200 {
		t.Fatalf("login after a restart: %d", code)
	}
}
