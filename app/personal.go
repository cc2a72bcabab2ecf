package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
)

// Personal keeps personal data out of the log: each account's email is
// sealed (AES-256-GCM, Sealer) with a data key of its own, kept in the key
// store, never in the log; destroying the key forgets the email in every
// copy of the log. The login index maps an HMAC-SHA256 of the normalised
// email to the account, so the key store never holds an email either.
//
// Both the wrapping of the data keys at rest and the index's HMAC key are
// derived from the deployment's secrets key (--secrets-key, which also seals
// root passwords): a copy of the key store alone opens nothing, and every
// process on one log needs the same secrets key.
type Personal struct {
	keys   domain.KeyStore
	wrap   *Sealer
	lookup []byte
}

// NewPersonal keeps personal data in keys, under the 32-byte secret.
func NewPersonal(keys domain.KeyStore, secret []byte) (*Personal, error) {
	if len(secret) != 32 {
		return nil, fmt.Errorf("secrets key: %d bytes, want 32", len(secret))
	}
	wrap, err := NewSealer(derive(secret, "cryptovps data-key wrapping v1"))
	if err != nil {
		return nil, err
	}
	return &Personal{keys: keys, wrap: wrap, lookup: derive(secret, "cryptovps email index v1")}, nil
}

// derive is a key for one purpose from the secret (HMAC-SHA256 as a PRF,
// labelled by purpose), so no two purposes ever share a key.
func derive(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Lookup is the login index's key of a normalised email.
func (p *Personal) Lookup(email string) []byte {
	m := hmac.New(sha256.New, p.lookup)
	m.Write([]byte(email))
	return m.Sum(nil)
}

// sealer is the account's data key, created when create is set and it has
// none. A destroyed key is domain.ErrAccountForgotten.
func (p *Personal) sealer(ctx context.Context, accountID string, create bool) (*Sealer, error) {
	binding := "data-key:" + accountID
	var wrapped []byte
	var err error
	if create {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		w, err := p.wrap.SealFor(string(raw), binding)
		if err != nil {
			return nil, err
		}
		wrapped, err = p.keys.CreateKey(ctx, accountID, []byte(w))
		if err != nil {
			return nil, err
		}
	} else if wrapped, err = p.keys.Key(ctx, accountID); err != nil {
		return nil, err
	}
	raw, err := p.wrap.OpenFor(string(wrapped), binding)
	if err != nil {
		return nil, fmt.Errorf("the data key of %s does not open with this secrets key (is --secrets-key the one it was made with?): %w", accountID, err)
	}
	return NewSealer([]byte(raw))
}

// SealEmail seals email with the account's data key, creating the key.
func (p *Personal) SealEmail(ctx context.Context, accountID, email string) (string, error) {
	s, err := p.sealer(ctx, accountID, true)
	if err != nil {
		return "", fmt.Errorf("seal the email of %s: %w", accountID, err)
	}
	return s.SealFor(email, "email:"+accountID)
}

// Email is the account's email to show: domain.ForgottenEmail once it was
// forgotten (or its key destroyed), the plain address of an account not
// migrated yet, else the sealed one opened with the account's key.
func (p *Personal) Email(ctx context.Context, accountID string, e domain.StoredEmail, forgotten bool) (string, error) {
	switch {
	case forgotten:
		return domain.ForgottenEmail, nil
	case e.Plain != "":
		return e.Plain, nil
	case e.Sealed == "":
		return "", nil
	}
	s, err := p.sealer(ctx, accountID, false)
	if errors.Is(err, domain.ErrAccountForgotten) {
		return domain.ForgottenEmail, nil
	}
	if err != nil {
		return "", fmt.Errorf("open the email of %s: %w", accountID, err)
	}
	email, err := s.OpenFor(e.Sealed, "email:"+accountID)
	if err != nil {
		return "", fmt.Errorf("open the email of %s: %w", accountID, err)
	}
	return email, nil
}

// Claim points the login index entry of email at accountID unless it
// points at an account already, and returns the account it points at.
func (p *Personal) Claim(ctx context.Context, email, accountID string) (string, error) {
	return p.keys.Claim(ctx, p.Lookup(email), accountID)
}

// Loader reads an account's state (from the event store).
type Loader func(ctx context.Context, accountID string) (domain.Account, error)

// Resolve finds the account a normalised email names: through the login
// index, or, for an account registered before the index existed and not
// migrated yet (another process of an older version may still write
// those), by the id that was derived from its email, when that account
// holds exactly this email in plain. domain.ErrNotFound otherwise.
func (p *Personal) Resolve(ctx context.Context, email string, load Loader) (string, error) {
	id, err := p.keys.Lookup(ctx, p.Lookup(email))
	if err == nil || !errors.Is(err, domain.ErrNotFound) {
		return id, err
	}
	legacy := LegacyAccountID(email)
	a, err := load(ctx, legacy)
	if err != nil {
		return "", err
	}
	if a.Registered && !a.Forgotten && a.Email.Plain == email {
		return legacy, nil
	}
	return "", fmt.Errorf("no account with this email: %w", domain.ErrNotFound)
}

// Forget destroys the accounts' data keys and login index entries.
func (p *Personal) Forget(ctx context.Context, accountIDs ...string) error {
	return p.keys.Forget(ctx, accountIDs...)
}

// legacyNamespace derived account ids from emails before ids were random:
// accounts registered then keep those ids.
var legacyNamespace = uuid.MustParse("9d3c8f5e-2a41-4b7f-8e0d-6c1a5b2f9e47")

// LegacyAccountID is the id an account registered with email got before
// account ids were random (and so no longer derivable from the email).
func LegacyAccountID(email string) string {
	return uuid.NewSHA1(legacyNamespace, []byte(email)).String()
}
