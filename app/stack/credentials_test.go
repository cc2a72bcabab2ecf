package stack_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/api"
	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/app/stack"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltcreds"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltkeys"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

// oldRegistration appends, as a build before the credential store did, an
// AccountRegistered carrying the password hash.
func oldRegistration(t *testing.T, store eventstore.Store, email, hash string) string {
	t.Helper()
	id := app.LegacyAccountID(email)
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
	late := oldRegistration(t, store, "late@example.com", oldHash)
	erased := oldRegistration(t, store, "erased@example.com", oldHash)

	start := func() (*stack.Stack, *boltcreds.Store, client, func()) {
		creds, err := boltcreds.Open(filepath.Join(dir, "credentials.db"))
		if err != nil {
			t.Fatal(err)
		}
		keys, err := boltkeys.Open(filepath.Join(dir, "keys.db"), boltkeys.Options{})
		if err != nil {
			t.Fatal(err)
		}
		personal, err := app.NewPersonal(keys, make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		st, err := stack.New(ctx, stack.Config{Store: store, Model: memory.New(store), Credentials: creds, Personal: personal,
			Hasher: hasher, SandboxCloud: filepath.Join(dir, "cloud.json"), ManualWork: true,
			SandboxCloudOptions: sandbox.CloudOptions{ProvisionDelay: time.Minute}, API: api.Config{JWTSecret: []byte("0123456789abcdef0123456789abcdef")},
			App: app.Config{SignupCredit: domain.MustMoney("10.00"), ServerLimit: 10}})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(st.API)
		return st, creds, client{t: t, url: hs.URL}, func() { hs.Close(); _ = st.Close(); _ = creds.Close(); _ = keys.Close() }
	}
	login := func(c client, email, password string) int {
		code, _ := c.do("POST", "/auth/login", "", map[string]string{"email": email, "password": password})
		return code
	}

	st, creds, c, stop := start()
	if err := creds.Erase(ctx, erased); err != nil {
		t.Fatal(err)
	}
	stopRun := st.Start()
	<-st.CredentialsImported()
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := creds.Imported(ctx); err != nil || p != head.String() {
		t.Fatalf("import position %q, %v; want the head %s", p, err, head)
	}
	// An account an older process registers after the import (a rolling
	// upgrade): a login moves its own hash.
	early := oldRegistration(t, store, "early@example.com", oldHash)
	if code := login(c, "early@example.com", "correct horse battery"); code != 200 {
		t.Fatalf("login with a password from the old log, after the import: %d", code)
	}
	if got, err := creds.Password(ctx, early); err != nil || got != oldHash {
		t.Fatalf("the login did not move the hash: %q, %v", got, err)
	}
	if got, err := creds.Password(ctx, late); err != nil || got != oldHash {
		t.Fatalf("the import did not move the hash: %q, %v", got, err)
	}
	if _, err := creds.Password(ctx, erased); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("the import brought back an erased account's hash: %v", err)
	}
	if code := login(c, "erased@example.com", "correct horse battery"); code != 401 {
		t.Fatalf("login of an erased account: %d", code)
	}
	// The store's password is the one: changed, the log's copy no longer
	// logs in, the store keeps no copy of it, and a restart does not bring
	// it back.
	_, body := c.do("POST", "/auth/login", "", map[string]string{"email": "late@example.com", "password": "correct horse battery"})
	if code, body := c.do("POST", "/auth/password", field(t, body, "accessToken"), map[string]string{
		"currentPassword": "correct horse battery", "newPassword": "a brand new passphrase"}); code != 200 {
		t.Fatalf("change the password: %d %s", code, body)
	}
	if _, err := creds.Password(ctx, domain.LegacyRef(late)); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("the replaced hash is still stored: %v", err)
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
	if _, err := creds.Password(ctx, domain.LegacyRef(late)); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("importing the log again stored the replaced hash again: %v", err)
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

// failingAppends fails the appends it is told to, as a store that died
// after the credential store was written and before the log was.
type failingAppends struct {
	eventstore.Store
	fail atomic.Int64
}

func (s *failingAppends) Append(ctx context.Context, stream string, expected int64, events []eventstore.Proposed) (eventstore.AppendResult, error) {
	if s.fail.Add(-1) >= 0 {
		return eventstore.AppendResult{}, fmt.Errorf("the disk is gone: %w", eventstore.ErrUnavailable)
	}
	return s.Store.Append(ctx, stream, expected, events)
}

// TestARegistrationOrAChangeCutBeforeTheLogLeavesEverythingAsBefore: the hash
// is stored first, under a ref the log names only once the event is written,
// so a failure in between changes nothing a client can see: the same
// registration, or change, succeeds when retried, the old password keeps
// working until then, and no unnamed hash is left behind.
func TestARegistrationOrAChangeCutBeforeTheLogLeavesEverythingAsBefore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw, err := bbolt.Open(filepath.Join(dir, "events.db"), bbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	store := &failingAppends{Store: raw}
	creds, err := boltcreds.Open(filepath.Join(dir, "credentials.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer creds.Close()
	st, err := stack.New(ctx, stack.Config{Store: store, Model: memory.New(store), Credentials: creds, Hasher: app.NewHasher(2),
		SandboxCloud: filepath.Join(dir, "cloud.json"), ManualWork: true,
		App: app.Config{SignupCredit: domain.MustMoney("10.00"), ServerLimit: 10},
		API: api.Config{JWTSecret: []byte("0123456789abcdef0123456789abcdef")}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stop := st.Start()
	defer stop()
	hs := httptest.NewServer(st.API)
	defer hs.Close()
	c := client{t: t, url: hs.URL}
	stored := func() int {
		n, err := creds.PasswordCount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	store.fail.Store(1)
	creds1 := map[string]string{"email": "cut@example.com", "password": "correct horse battery"}
	if code, body := c.do("POST", "/auth/register", "", creds1); code != 503 {
		t.Fatalf("a registration the log refused: %d %s", code, body)
	}
	if n := stored(); n != 0 {
		t.Fatalf("%d hashes left by a refused registration", n)
	}
	code, body := c.do("POST", "/auth/register", "", creds1)
	if code != 201 {
		t.Fatalf("the retry: %d %s", code, body)
	}
	token := field(t, body, "accessToken")

	store.fail.Store(1)
	change := map[string]string{"currentPassword": "correct horse battery", "newPassword": "the next passphrase"}
	if code, body := c.do("POST", "/auth/password", token, change); code != 503 {
		t.Fatalf("a change the log refused: %d %s", code, body)
	}
	if code, _ := c.do("GET", "/auth/me", token, nil); code != 200 {
		t.Fatalf("a refused change ended the token: %d", code)
	}
	if code, _ := c.do("POST", "/auth/login", "", creds1); code != 200 {
		t.Fatalf("a refused change changed the password: %d", code)
	}
	if n := stored(); n != 1 {
		t.Fatalf("%d hashes stored, want the account's one", n)
	}
	if code, body := c.do("POST", "/auth/password", token, change); code != 200 {
		t.Fatalf("the retried change: %d %s", code, body)
	}
	if n := stored(); n != 1 {
		t.Fatalf("%d hashes stored after the change, want the new one only", n)
	}
}
