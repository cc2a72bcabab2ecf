package domain

import (
	"context"
	"time"
)

// Credentials is the credential store: what proves who a customer is (the
// password hash, the API keys' hashes) kept outside the append-only log, where
// it can be replaced and erased. The log records only that a credential
// changed (PasswordChanged, APIKeyCreated, APIKeyDeleted), never a hash, so no
// copy of the log (export, snapshot, backup, KurrentDB) carries one.
//
// Adapters: a bbolt file beside the log in the embedded default
// (eventstore/bbolt/boltcreds), a PostgreSQL table shared by every API
// process in the scale-out topology (projections/postgres/pgcreds). Every
// method is safe for concurrent use; lookups of something absent fail with an
// error matching ErrNotFound.
//
// A password hash is stored under a reference of its own, drawn for each
// registration and each change, before the log names it (AccountRegistered's
// and PasswordChanged's credentialRef): the log says which hash is the
// account's, and a registration or a change cut half-way leaves at worst a
// hash nothing names, never an account without its password or two
// registrations of one email sharing one.
type Credentials interface {
	// Password is the password hash (PHC string) stored under ref.
	Password(ctx context.Context, ref string) (string, error)
	// PutPassword stores an account's password hash under a new ref.
	PutPassword(ctx context.Context, accountID, ref, hash string) error
	// DeletePassword removes the hash under ref (one a change replaced, or
	// one a refused registration left); nothing when it is gone.
	DeletePassword(ctx context.Context, ref string) error
	// AddPassword stores hash under the ref LegacyRef(accountID) only when
	// nothing is stored there and the account was never erased, and says
	// whether it did: how the hashes older builds left in the log are moved
	// here without overwriting anything.
	AddPassword(ctx context.Context, accountID, hash string) (bool, error)

	// PutAPIKey stores a new API key; false when the account already has
	// one with this id (the existing one is kept).
	PutAPIKey(ctx context.Context, k APIKeyHash) (bool, error)
	// APIKey is one of the account's keys.
	APIKey(ctx context.Context, accountID, keyID string) (APIKeyHash, error)
	// FindAPIKey is the key whose hash is hash, whatever its account.
	FindAPIKey(ctx context.Context, hash []byte) (APIKeyHash, error)
	// APIKeys lists the account's keys, in no particular order.
	APIKeys(ctx context.Context, accountID string) ([]APIKeyHash, error)
	// TouchAPIKey records when the key was last used; nothing when it is
	// gone.
	TouchAPIKey(ctx context.Context, accountID, keyID string, at time.Time) error
	// DeleteAPIKey removes the key; nothing when it is gone already.
	DeleteAPIKey(ctx context.Context, accountID, keyID string) error

	// Erase removes every credential of the account (each password hash,
	// whatever its ref, and every key) and remembers that it did, so that
	// no hash found in an old log is ever moved back.
	Erase(ctx context.Context, accountID string) error

	// Imported is how far (a log position as text, "" for nowhere) the
	// hashes older builds wrote into the log have been moved here;
	// SetImported moves it on.
	Imported(ctx context.Context) (string, error)
	SetImported(ctx context.Context, position string) error
}

// LegacyRef is where the hash an older build left in the log is kept: under
// the account's own id, as those accounts' events name no ref.
func LegacyRef(accountID string) string { return accountID }

// APIKeyHash is what the credential store keeps of an API key: never the key,
// only its SHA-256 (a key is 32 random bytes, so a fast hash is enough: there
// is nothing to guess).
type APIKeyHash struct {
	AccountID string
	KeyID     string
	// Hash is the SHA-256 of the key as the client sends it.
	Hash []byte
	// Sealed is the key itself, sealed with the secrets key (never in the
	// log), kept only until SealedUntil so that a retry of its creation
	// with the same Idempotency-Key answers the same key; empty after.
	Sealed      string
	SealedUntil time.Time
	// LastUsedAt is when it last authenticated a request, to the minute.
	LastUsedAt time.Time
}
