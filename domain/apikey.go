package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// An account's credentials as the log sees them: that a password changed
// (which ends every token issued before: TokenVersion), and which API keys
// exist. The hashes themselves are in the credential store (Credentials).

// MaxAPIKeys bounds an account's API keys.
const MaxAPIKeys = 10

// APIKey is an API key of the account as the log knows it: a name and when it
// was made. The key and its hash are never in the log.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	// IdempotencyKey and RequestHash are the Idempotency-Key it was created
	// with and the request's hash ("" for none): a retry replays it.
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	RequestHash    string `json:"requestHash,omitempty"`
}

// Public is the key as its owner sees it: without the request it was
// created by.
func (k APIKey) Public() APIKey {
	k.IdempotencyKey, k.RequestHash = "", ""
	return k
}

// Credential events, on the account's stream.
type (
	// PasswordChanged: the account's password was replaced (the hash is in
	// the credential store, under CredentialRef); every token issued before
	// is void.
	PasswordChanged struct {
		CredentialRef string    `json:"credentialRef"`
		At            time.Time `json:"at"`
	}
	// APIKeyCreated: a named API key exists (its hash is in the credential
	// store). IdempotencyKey and RequestHash remember the request, so that
	// a retry answers this key again.
	APIKeyCreated struct {
		KeyID          string    `json:"keyId"`
		Name           string    `json:"name"`
		IdempotencyKey string    `json:"idempotencyKey,omitempty"`
		RequestHash    string    `json:"requestHash,omitempty"`
		At             time.Time `json:"at"`
	}
	// APIKeyDeleted: the key no longer authenticates anything.
	APIKeyDeleted struct {
		KeyID string    `json:"keyId"`
		At    time.Time `json:"at"`
	}
)

func (PasswordChanged) EventType() string       { return "PasswordChanged" }
func (APIKeyCreated) EventType() string         { return "APIKeyCreated" }
func (APIKeyDeleted) EventType() string         { return "APIKeyDeleted" }
func (e PasswordChanged) OccurredAt() time.Time { return e.At }
func (e APIKeyCreated) OccurredAt() time.Time   { return e.At }
func (e APIKeyDeleted) OccurredAt() time.Time   { return e.At }
func (ChangePassword) accountCommand()          {}
func (CreateAPIKey) accountCommand()            {}
func (DeleteAPIKey) accountCommand()            {}
func (e APIKeyCreated) key() APIKey {
	return APIKey{e.KeyID, e.Name, e.At, e.IdempotencyKey, e.RequestHash}
}
func (e APIKeyCreated) idempotency() IdempotencyKeyUsed {
	return IdempotencyKeyUsed{Key: e.IdempotencyKey, RequestHash: e.RequestHash, At: e.At}
}

// Credential commands.
type (
	// ChangePassword records that the password was replaced: the caller has
	// checked the current one at FromVersion and stored the new hash under
	// CredentialRef. Of two changes made at once from the same version, one
	// is refused.
	ChangePassword struct {
		FromVersion   int
		CredentialRef string
	}
	// CreateAPIKey records a new API key under a name, once per
	// Idempotency-Key.
	CreateAPIKey struct {
		KeyID, Name                 string
		IdempotencyKey, RequestHash string
	}
	// DeleteAPIKey ends a key.
	DeleteAPIKey struct{ KeyID string }
)

// APIKeyReplayError says an API key was already created with this
// Idempotency-Key and request: the caller answers with it again. Control
// flow between the domain and the application, never shown.
type APIKeyReplayError struct{ KeyID string }

func (e *APIKeyReplayError) Error() string { return "idempotent replay of API key " + e.KeyID }

// A password change and a key's deletion are allowed on an abuse hold: they
// take access away. A new key is a change like any other and is not.
func (d *decision) changePassword(c ChangePassword, now time.Time) error {
	if c.FromVersion != d.s.TokenVersion {
		return stateError("the password", "changed meanwhile", "log in with the new one")
	}
	if c.CredentialRef == "" {
		return fmt.Errorf("%w: a password change without its credential", ErrInvalid)
	}
	d.emit(PasswordChanged{CredentialRef: c.CredentialRef, At: now})
	return nil
}

func (d *decision) createAPIKey(c CreateAPIKey, now time.Time) error {
	if c.IdempotencyKey != "" {
		if used, ok := d.s.Idempotency[c.IdempotencyKey]; ok && now.Sub(used.At) < IdempotencyWindow {
			if used.RequestHash != c.RequestHash {
				return ErrIdempotencyMismatch
			}
			for _, id := range d.s.APIKeyOrder {
				if k := d.s.APIKeys[id]; k.IdempotencyKey == c.IdempotencyKey {
					return &APIKeyReplayError{KeyID: id}
				}
			}
			return stateError("the API key created with this Idempotency-Key", "deleted", "create another with a new Idempotency-Key")
		}
	}
	if err := d.s.CheckActive(); err != nil {
		return err
	}
	if err := CheckAPIKeyName(c.Name); err != nil {
		return err
	}
	if _, used := d.s.APIKeys[c.KeyID]; used || c.KeyID == "" {
		return fmt.Errorf("%w: API key id %q", ErrInvalid, c.KeyID)
	}
	if len(d.s.APIKeyOrder) >= MaxAPIKeys {
		return InvalidField("name", fmt.Sprintf("at most %d API keys per account: delete one first (DELETE /auth/api-keys/:id)", MaxAPIKeys))
	}
	d.emit(APIKeyCreated{KeyID: c.KeyID, Name: c.Name, IdempotencyKey: c.IdempotencyKey, RequestHash: c.RequestHash, At: now})
	return nil
}

// CheckAPIKeyName is the rule for a key's name: 1 to 64 characters, not
// only spaces, no control characters.
func CheckAPIKeyName(name string) error {
	if strings.TrimSpace(name) == "" || utf8.RuneCountInString(name) > 64 || !utf8.ValidString(name) ||
		strings.ContainsFunc(name, isControl) {
		return InvalidField("name", "1 to 64 characters, not only spaces, no control characters")
	}
	return nil
}

func (d *decision) deleteAPIKey(c DeleteAPIKey, now time.Time) error {
	if _, ok := d.s.APIKeys[c.KeyID]; !ok {
		return fmt.Errorf("API key %s: %w", c.KeyID, ErrNotFound)
	}
	d.emit(APIKeyDeleted{KeyID: c.KeyID, At: now})
	return nil
}

func evolveCredentials(a Account, e Event) Account {
	switch e := e.(type) {
	case PasswordChanged:
		a.TokenVersion++
		a.CredentialRef = e.CredentialRef
	case APIKeyCreated:
		a.APIKeys[e.KeyID] = e.key()
		a.APIKeyOrder = append(a.APIKeyOrder, e.KeyID)
		// One Idempotency-Key space per account: a key a deploy used cannot
		// create an API key, nor the other way round.
		if e.IdempotencyKey != "" {
			a.Idempotency[e.IdempotencyKey] = e.idempotency()
		}
	case APIKeyDeleted:
		delete(a.APIKeys, e.KeyID)
		a.APIKeyOrder = slices.DeleteFunc(a.APIKeyOrder, func(id string) bool { return id == e.KeyID })
	}
	return a
}
