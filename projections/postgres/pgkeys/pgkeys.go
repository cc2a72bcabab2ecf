// Package pgkeys is the key store of the scale-out topology: the data keys
// sealing each account's personal data in the log, and the login index, in
// PostgreSQL (tables data_keys and email_index, created by the read models'
// migrations but kept by a rebuild), one source of truth shared by every
// API process.
//
// Forgetting deletes the key (the row stays, with no key, so none is ever
// created again) and the index entries. PostgreSQL keeps a deleted row's
// old version in the table file until vacuum reuses the space, and in its
// WAL and backups until they expire: the keys are stored wrapped with a key
// derived from --secrets-key (see app.Personal), and the README says how
// long those copies live.
package pgkeys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/projections/postgres"
)

// Store is a domain.KeyStore in PostgreSQL, safe for concurrent use, and by
// several processes on the same database.
type Store struct {
	pool  *pgxpool.Pool
	close bool
}

var _ domain.KeyStore = (*Store)(nil)

// Open connects to the database at url and brings its schema up to date.
// Close releases the connections.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	cfg.MaxConns = 4 // a key read per login and per email shown: little traffic
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("key store: %w", err)
	}
	return &Store{pool: pool, close: true}, nil
}

// New returns a store on pool, whose schema must be up to date
// (postgres.Migrate); Close leaves the pool open.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Close closes the pool Open made.
func (s *Store) Close() {
	if s.close {
		s.pool.Close()
	}
}

// unavailable wraps a database error: the API answers 503 without showing
// it, and the cause stays in the chain for the log.
func unavailable(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("key store: %s: %w", op, ctx.Err())
	}
	return fmt.Errorf("key store: %s: %w: %w", op, domain.ErrKeyStoreUnavailable, err)
}

// Key returns the account's data key.
func (s *Store) Key(ctx context.Context, accountID string) ([]byte, error) {
	var wrapped []byte
	err := s.pool.QueryRow(ctx, "SELECT wrapped FROM data_keys WHERE account_id = $1", accountID).Scan(&wrapped)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("data key of %s: %w", accountID, domain.ErrNotFound)
	case err != nil:
		return nil, unavailable(ctx, "read a data key", err)
	case wrapped == nil:
		return nil, fmt.Errorf("data key of %s: %w", accountID, domain.ErrAccountForgotten)
	}
	return wrapped, nil
}

// CreateKey keeps key unless the account has one. The insert and the read
// of a key another process inserted first are two statements: a statement
// that lost the race does not see the winner's row in its own snapshot.
func (s *Store) CreateKey(ctx context.Context, accountID string, key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, fmt.Errorf("%w: empty data key", domain.ErrInvalid)
	}
	var kept []byte
	err := s.pool.QueryRow(ctx, `INSERT INTO data_keys (account_id, wrapped) VALUES ($1, $2)
		ON CONFLICT (account_id) DO NOTHING RETURNING wrapped`, accountID, key).Scan(&kept)
	if err == nil {
		return bytes.Clone(kept), nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, unavailable(ctx, "create a data key", err)
	}
	return s.Key(ctx, accountID)
}

// Claim points lookup at accountID unless it points somewhere already.
func (s *Store) Claim(ctx context.Context, lookup []byte, accountID string) (string, error) {
	var holder string
	err := s.pool.QueryRow(ctx, `INSERT INTO email_index (lookup, account_id) VALUES ($1, $2)
		ON CONFLICT (lookup) DO NOTHING RETURNING account_id`, lookup, accountID).Scan(&holder)
	if err == nil {
		return holder, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", unavailable(ctx, "claim a login index entry", err)
	}
	holder, err = s.Lookup(ctx, lookup)
	if errors.Is(err, domain.ErrNotFound) {
		// Deleted between the two statements (its account was forgotten):
		// try again, once more is enough for any real interleaving.
		return s.Claim(ctx, lookup, accountID)
	}
	return holder, err
}

// Lookup returns the account lookup points at.
func (s *Store) Lookup(ctx context.Context, lookup []byte) (string, error) {
	var id string
	err := s.pool.QueryRow(ctx, "SELECT account_id FROM email_index WHERE lookup = $1", lookup).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("login index: %w", domain.ErrNotFound)
	}
	if err != nil {
		return "", unavailable(ctx, "read the login index", err)
	}
	return id, nil
}

// Forget destroys the accounts' keys and index entries, in one transaction.
func (s *Store) Forget(ctx context.Context, accountIDs ...string) error {
	if len(accountIDs) == 0 {
		return nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return unavailable(ctx, "forget", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `INSERT INTO data_keys (account_id, wrapped, forgotten_at)
		SELECT id, NULL, now() FROM unnest($1::text[]) AS t(id)
		ON CONFLICT (account_id) DO UPDATE SET wrapped = NULL,
			forgotten_at = coalesce(data_keys.forgotten_at, excluded.forgotten_at)`, accountIDs); err != nil {
		return unavailable(ctx, "destroy data keys", err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM email_index WHERE account_id = ANY($1::text[])", accountIDs); err != nil {
		return unavailable(ctx, "delete login index entries", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return unavailable(ctx, "forget", err)
	}
	return nil
}
