package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/eventstore/bbolt/boltkeys"
	"github.com/cryptovps/cryptovps/projections/postgres/pgkeys"
)

// keysFile is the embedded key store, beside the log in the data dir.
const keysFile = "keys.db"

// openKeyStore is serve's key store: PostgreSQL when --database-url is set
// (one source of truth for every API process), else keys.db in the data
// dir.
func openKeyStore(ctx context.Context, cfg config) (domain.KeyStore, func(), error) {
	if cfg.DatabaseURL != "" {
		ks, err := pgkeys.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, nil, fmt.Errorf("key store: %w", err)
		}
		return ks, ks.Close, nil
	}
	ks, err := boltkeys.Open(filepath.Join(cfg.DataDir, keysFile), boltkeys.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("key store: %w", err)
	}
	return ks, func() { _ = ks.Close() }, nil
}

// secretsKey is --secrets-key, or the one kept in the data dir beside the
// JWT secret (generated on first use by serve): it seals root passwords in
// the log, wraps the data keys of personal data and keys the login index.
func (c *config) secretsKey() ([]byte, error) {
	v, err := secret(c.DataDir, "secrets-key", c.SecretsKey)
	if err != nil {
		return nil, err
	}
	return parseSecretsKey(v)
}

func parseSecretsKey(v string) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(v))
	if err != nil || len(key) != 32 {
		return nil, errors.New("--secrets-key: want 64 hex digits (32 bytes)")
	}
	return key, nil
}

// directory is how an operator tool finds an account by email and shows
// its email, reading the key store the way serve does: PostgreSQL, or
// keys.db on a stopped data dir, or, while a running server holds keys.db,
// that server's admin API (which opens the email for it).
type directory struct {
	personal *app.Personal // nil: through the server, or no key store at all
	viaAPI   bool
	tf       *toolFlags
	load     app.Loader
	close    func()
}

// openDirectory opens the tool's way to the key store, for the accounts of
// log.
func openDirectory(ctx context.Context, tf *toolFlags, log eventstore.Store, stderr io.Writer) (*directory, error) {
	accounts := app.NewAccounts(log, app.WallClock{})
	d := &directory{tf: tf, close: func() {}, load: func(ctx context.Context, id string) (domain.Account, error) {
		cur, err := accounts.Load(ctx, id)
		return cur.State, err
	}}
	cfg := tf.cfg
	var ks domain.KeyStore
	switch path := filepath.Join(cfg.DataDir, keysFile); {
	case cfg.DatabaseURL != "":
		pk, err := pgkeys.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("key store: %w", err)
		}
		ks, d.close = pk, pk.Close
	default:
		if _, err := os.Stat(path); err != nil {
			// A data dir no server of this version ran on: its accounts are
			// found by the ids once derived from their emails.
			return d, nil
		}
		bk, err := boltkeys.Open(path, boltkeys.Options{ReadOnly: true, LockTimeout: 500 * time.Millisecond})
		if errors.Is(err, boltkeys.ErrLocked) {
			fmt.Fprintf(stderr, "%s is locked by a running server: asking %s for emails\n", path, tf.server)
			d.viaAPI = true
			return d, nil
		}
		if err != nil {
			return nil, err
		}
		ks, d.close = bk, func() { _ = bk.Close() }
	}
	key, err := toolSecretsKey(cfg)
	if err != nil {
		d.close()
		return nil, err
	}
	if d.personal, err = app.NewPersonal(ks, key); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// toolSecretsKey is --secrets-key or the one serve keeps in the data dir;
// unlike serve, a tool never generates one.
func toolSecretsKey(cfg config) ([]byte, error) {
	if cfg.SecretsKey != "" {
		return parseSecretsKey(cfg.SecretsKey)
	}
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, "secrets-key"))
	if err != nil {
		return nil, fmt.Errorf("the key store needs the secrets key: no --secrets-key and none in the data dir: %w", err)
	}
	return parseSecretsKey(string(b))
}

// resolve takes an account id or an email, the way the admin API does.
func (d *directory) resolve(ctx context.Context, who string) (string, error) {
	if who == "" {
		return "", errors.New("--account EMAIL|ID is required")
	}
	if _, err := uuid.Parse(who); err == nil {
		return who, nil
	}
	email, err := domain.NormalizeEmail(who)
	if err != nil {
		return "", fmt.Errorf("--account %q: neither an account id nor an email address", who)
	}
	var id string
	switch {
	case d.viaAPI:
		id, _, err = d.askServer(ctx, email)
	case d.personal != nil:
		id, err = d.personal.Resolve(ctx, email, d.load)
	default:
		id = app.LegacyAccountID(email)
		var a domain.Account
		if a, err = d.load(ctx, id); err == nil && (!a.Registered || a.Email.Plain != email || a.Forgotten) {
			err = domain.ErrNotFound
		}
	}
	if errors.Is(err, domain.ErrNotFound) {
		return "", fmt.Errorf("--account %q: no account has this email (a forgotten account is found by its id only)", who)
	}
	return id, err
}

// email is the account's email to show: "forgotten" once it is.
func (d *directory) email(ctx context.Context, a domain.Account) (string, error) {
	switch {
	case a.Forgotten:
		return domain.ForgottenEmail, nil
	case a.Email.Plain != "":
		return a.Email.Plain, nil
	case d.viaAPI:
		_, email, err := d.askServer(ctx, a.ID)
		return email, err
	case d.personal == nil:
		return "(sealed; no key store in the data dir)", nil
	}
	return d.personal.Email(ctx, a.ID, a.Email, a.Forgotten)
}

// askServer asks the running server's admin API about an account (by email
// or id): its id and its email as the server shows it.
func (d *directory) askServer(ctx context.Context, who string) (id, email string, err error) {
	token, err := toolAdminToken(d.tf.cfg)
	if err != nil {
		return "", "", fmt.Errorf("keys.db is locked and the server's admin API needs the operator token: %w", err)
	}
	u := strings.TrimRight(d.tf.server, "/") + "/admin/accounts/" + url.PathEscape(who)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return "", "", fmt.Errorf("ask %s: %w", d.tf.server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return "", "", domain.ErrNotFound
	}
	var body struct {
		Account struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"account"`
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return "", "", fmt.Errorf("ask %s about an account: %s %s", d.tf.server, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return "", "", fmt.Errorf("ask %s about an account: %w", d.tf.server, err)
	}
	return body.Account.ID, body.Account.Email, nil
}
