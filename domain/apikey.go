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
	// store). A request with an Idempotency-Key claims it in the same
	// append (IdempotencyKeyUsed naming the key), so a retry answers this
	// key again.
	APIKeyCreated struct {
		KeyID string    `json:"keyId"`
		Name  string    `json:"name"`
		At    time.Time `json:"at"`
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
		KeyID, Name string
		Idem        Idem
	}
	// DeleteAPIKey ends a key.
	DeleteAPIKey struct{ KeyID string }
)

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
	// A retry is answered whatever happened since (a *ReplayError naming
	// the key it made); the same Idempotency-Key with another request is
	// refused.
	if err := d.keyed(c.Idem); err != nil {
		return err
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
	d.emit(APIKeyCreated{KeyID: c.KeyID, Name: c.Name, At: now})
	d.claim(c.Idem, IdempotencyKeyUsed{Ref: c.KeyID}, now)
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
		a.APIKeys[e.KeyID] = APIKey{ID: e.KeyID, Name: e.Name, CreatedAt: e.At}
		a.APIKeyOrder = append(a.APIKeyOrder, e.KeyID)
	case APIKeyDeleted:
		delete(a.APIKeys, e.KeyID)
		a.APIKeyOrder = slices.DeleteFunc(a.APIKeyOrder, func(id string) bool { return id == e.KeyID })
	}
	return a
}
