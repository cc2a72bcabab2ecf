// Package pgcreds is the credential store of the scale-out topology
// (domain.Credentials): password hashes and API-key hashes in PostgreSQL
// tables (credential_*, see migrations/), the one copy every API process of
// a deployment shares.
//
// It lives beside the read models because it uses the same database, but it
// is not one: it is a source of truth that nothing in the event log can
// rebuild, so it has migrations of its own (recorded in
// credential_schema_migrations) and `cryptovps projections rebuild` never
// touches it.
package pgcreds

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/postgres"
)

// Store is a domain.Credentials in PostgreSQL, safe for concurrent use, and
// by several processes on one database.
type Store struct {
	pool *pgxpool.Pool
}

var _ domain.Credentials = (*Store)(nil)

// Open connects to the database at url and brings the credential tables up
// to date. Close releases the connections.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("credential store: database URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("credential store: connect to PostgreSQL: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("credential store: PostgreSQL %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port,
			cfg.ConnConfig.Database, err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

//go:embed migrations/*.sql
var migrationFiles embed.FS

var migrationName = regexp.MustCompile(`^(\d+)_([a-z0-9_]+)\.sql$`)

// schemaLock serialises schema changes when processes start together.
const schemaLock = 0x63767063 // "cvpc"

// Migrate applies the credential migrations the database does not have, in
// one transaction. A migration is never edited once released.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	type migration struct {
		version int
		name    string
	}
	var all []migration
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return fmt.Errorf("migration %s: name must be NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		all = append(all, migration{v, e.Name()})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].version < all[j].version })
	tx, err := pool.Begin(ctx)
	if err != nil {
		return classify(ctx, "begin", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLock)); err != nil {
		return classify(ctx, "lock the schema", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS credential_schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return classify(ctx, "create credential_schema_migrations", err)
	}
	rows, err := tx.Query(ctx, "SELECT version FROM credential_schema_migrations")
	if err != nil {
		return classify(ctx, "read credential_schema_migrations", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return classify(ctx, "read credential_schema_migrations", err)
	}
	done := map[int]bool{}
	for _, v := range applied {
		done[int(v)] = true
	}
	for _, m := range all {
		if done[m.version] {
			continue
		}
		sql, err := migrationFiles.ReadFile(path.Join("migrations", m.name))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, classify(ctx, "apply", err))
		}
		if _, err := tx.Exec(ctx, "INSERT INTO credential_schema_migrations (version, name) VALUES ($1, $2)",
			m.version, m.name); err != nil {
			return classify(ctx, "record migration", err)
		}
	}
	return classify(ctx, "commit", tx.Commit(ctx))
}

// classify wraps an outage so the API answers 503, as the read models do.
func classify(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("credential store: %s: %w", op, domain.ErrNotFound)
	}
	if postgres.IsOutage(err) {
		return fmt.Errorf("credential store: %s: %w: %w", op, projections.ErrUnavailable, err)
	}
	return fmt.Errorf("credential store: %s: %w", op, err)
}

// Password is the password hash stored under ref.
func (s *Store) Password(ctx context.Context, ref string) (string, error) {
	var hash string
	err := s.pool.QueryRow(ctx, "SELECT hash FROM credential_passwords WHERE ref = $1", ref).Scan(&hash)
	return hash, classify(ctx, "read password", err)
}

// PutPassword stores an account's password hash under ref.
func (s *Store) PutPassword(ctx context.Context, accountID, ref, hash string) error {
	if accountID == "" || ref == "" {
		return fmt.Errorf("%w: a password without account or ref", domain.ErrInvalid)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO credential_passwords (ref, account_id, hash) VALUES ($1, $2, $3)
		ON CONFLICT (ref) DO UPDATE SET account_id = excluded.account_id, hash = excluded.hash`, ref, accountID, hash)
	return classify(ctx, "store password", err)
}

// DeletePassword removes the hash under ref.
func (s *Store) DeletePassword(ctx context.Context, ref string) error {
	_, err := s.pool.Exec(ctx, "DELETE FROM credential_passwords WHERE ref = $1", ref)
	return classify(ctx, "delete password", err)
}

// AddPassword stores hash under the account's legacy ref when nothing is
// there and the account was never erased.
func (s *Store) AddPassword(ctx context.Context, accountID, hash string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO credential_passwords (ref, account_id, hash)
		SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM credential_erased WHERE account_id = $2)
		ON CONFLICT (ref) DO NOTHING`, domain.LegacyRef(accountID), accountID, hash)
	if err != nil {
		return false, classify(ctx, "add password", err)
	}
	return tag.RowsAffected() == 1, nil
}

func timestamp(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// PutAPIKey stores a new key; false when the account has one with its id.
func (s *Store) PutAPIKey(ctx context.Context, k domain.APIKeyHash) (bool, error) {
	if k.AccountID == "" || k.KeyID == "" || len(k.Hash) == 0 {
		return false, fmt.Errorf("%w: API key without account, id or hash", domain.ErrInvalid)
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO credential_api_keys (account_id, key_id, key_hash, sealed, sealed_until)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, key_id) DO NOTHING`,
		k.AccountID, k.KeyID, k.Hash, k.Sealed, timestamp(k.SealedUntil))
	if err != nil {
		return false, classify(ctx, "store API key", err)
	}
	return tag.RowsAffected() == 1, nil
}

const keyColumns = "account_id, key_id, key_hash, sealed, sealed_until, last_used_at"

func scanKey(row pgx.Row) (domain.APIKeyHash, error) {
	var k domain.APIKeyHash
	var until, used pgtype.Timestamptz
	if err := row.Scan(&k.AccountID, &k.KeyID, &k.Hash, &k.Sealed, &until, &used); err != nil {
		return domain.APIKeyHash{}, err
	}
	if until.Valid {
		k.SealedUntil = until.Time.UTC()
	}
	if used.Valid {
		k.LastUsedAt = used.Time.UTC()
	}
	return k, nil
}

// APIKey is one of the account's keys.
func (s *Store) APIKey(ctx context.Context, accountID, keyID string) (domain.APIKeyHash, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, "SELECT "+keyColumns+" FROM credential_api_keys WHERE account_id = $1 AND key_id = $2",
		accountID, keyID))
	return k, classify(ctx, "read API key", err)
}

// FindAPIKey is the key whose hash is hash.
func (s *Store) FindAPIKey(ctx context.Context, hash []byte) (domain.APIKeyHash, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, "SELECT "+keyColumns+" FROM credential_api_keys WHERE key_hash = $1", hash))
	return k, classify(ctx, "find API key", err)
}

// APIKeys lists the account's keys.
func (s *Store) APIKeys(ctx context.Context, accountID string) ([]domain.APIKeyHash, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+keyColumns+" FROM credential_api_keys WHERE account_id = $1", accountID)
	if err != nil {
		return nil, classify(ctx, "list API keys", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.APIKeyHash, error) { return scanKey(r) })
	if err != nil {
		return nil, classify(ctx, "list API keys", err)
	}
	if out == nil {
		out = []domain.APIKeyHash{}
	}
	return out, nil
}

// TouchAPIKey records the key's last use, and drops its sealed copy once it
// is past keeping.
func (s *Store) TouchAPIKey(ctx context.Context, accountID, keyID string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE credential_api_keys SET last_used_at = $3,
			sealed = CASE WHEN sealed_until IS NULL OR $3 >= sealed_until THEN '' ELSE sealed END,
			sealed_until = CASE WHEN sealed_until IS NULL OR $3 >= sealed_until THEN NULL ELSE sealed_until END
		WHERE account_id = $1 AND key_id = $2`, accountID, keyID, at)
	return classify(ctx, "touch API key", err)
}

// DeleteAPIKey removes the key.
func (s *Store) DeleteAPIKey(ctx context.Context, accountID, keyID string) error {
	_, err := s.pool.Exec(ctx, "DELETE FROM credential_api_keys WHERE account_id = $1 AND key_id = $2", accountID, keyID)
	return classify(ctx, "delete API key", err)
}

// Erase removes every credential of the account and remembers it.
func (s *Store) Erase(ctx context.Context, accountID string) error {
	return classify(ctx, "erase credentials", pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, q := range []string{
			"DELETE FROM credential_passwords WHERE account_id = $1",
			"DELETE FROM credential_api_keys WHERE account_id = $1",
			"INSERT INTO credential_erased (account_id) VALUES ($1) ON CONFLICT DO NOTHING",
		} {
			if _, err := tx.Exec(ctx, q, accountID); err != nil {
				return err
			}
		}
		return nil
	}))
}

// Imported is how far old events' hashes have been moved here.
func (s *Store) Imported(ctx context.Context) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, "SELECT value FROM credential_meta WHERE name = 'imported'").Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return v, classify(ctx, "read import position", err)
}

// SetImported moves the import position on.
func (s *Store) SetImported(ctx context.Context, position string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO credential_meta (name, value) VALUES ('imported', $1)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, position)
	return classify(ctx, "store import position", err)
}
