package app

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// API keys let a long-running agent stay logged in without keeping its
// password: a key works as a bearer token until it is deleted. A key is
// APIKeyPrefix followed by 32 random bytes in base64url; the credential
// store keeps its SHA-256 only (nothing to guess in 256 random bits, so a
// slow hash would only slow every request down), the log only that it
// exists.

// APIKeyPrefix starts every API key: it tells a key from an access token at
// a glance, and lets secret scanners recognise a leaked one.
const APIKeyPrefix = "cvps_"

// apiKeyLen is the length of a key: the prefix and 32 bytes in base64url.
var apiKeyLen = len(APIKeyPrefix) + base64.RawURLEncoding.EncodedLen(32)

// LooksLikeAPIKey says whether a bearer credential has the shape of an API
// key (not whether it is one).
func LooksLikeAPIKey(s string) bool {
	if len(s) != apiKeyLen || !strings.HasPrefix(s, APIKeyPrefix) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s[len(APIKeyPrefix):])
	return err == nil
}

// HashAPIKey is what the credential store keeps of a key.
func HashAPIKey(key string) []byte {
	sum := sha256.Sum256([]byte(key))
	return sum[:]
}

func newAPIKey() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return APIKeyPrefix + base64.RawURLEncoding.EncodeToString(raw), nil
}

// NewAPIKey is a created key: the one time its secret is shown.
type NewAPIKey struct {
	Key    domain.APIKey
	Secret string
	// Replayed is set when an Idempotency-Key matched an earlier creation.
	Replayed bool
	Written
}

// CreateAPIKey makes a named API key for the account. With an
// Idempotency-Key it is made once, and a retry with the same request (for
// domain.IdempotencyWindow) answers the same key: to that end, and for that
// long only, the key is kept sealed with the secrets key beside its hash in
// the credential store (never in the log, where the idempotency record
// names the key's id only).
func (s *Service) CreateAPIKey(ctx context.Context, accountID, name string, idem Idempotency, meta eventstore.Metadata) (NewAPIKey, error) {
	id := uuid.NewString()
	d, err := s.Accounts.Run(ctx, accountID, domain.CreateAPIKey{KeyID: id, Name: name, Idem: s.idem(idem)}, meta)
	var replay *domain.ReplayError
	if errors.As(err, &replay) {
		return s.replayAPIKey(ctx, accountID, replay.Ref)
	}
	if err != nil {
		return NewAPIKey{}, err
	}
	key := d.State.APIKeys[id]
	// The event first, then the hash: cut in between, the key is listed but
	// never worked (delete it, or retry with the Idempotency-Key, which
	// completes it); the other way round a key could work that the log
	// never heard of.
	secret, err := s.storeAPIKey(ctx, accountID, key, idem.Key != "")
	if err != nil {
		return NewAPIKey{}, err
	}
	return NewAPIKey{Key: key, Secret: secret, Written: Written{d.Position}}, s.WaitFor(ctx, d.Position)
}

// storeAPIKey draws a key's secret and stores its hash (and, when a retry
// may ask for it again, its sealed copy); when another request stored one
// for the key first, that one is answered.
func (s *Service) storeAPIKey(ctx context.Context, accountID string, key domain.APIKey, replayable bool) (string, error) {
	secret, err := newAPIKey()
	if err != nil {
		return "", err
	}
	rec := domain.APIKeyHash{AccountID: accountID, KeyID: key.ID, Hash: HashAPIKey(secret)}
	if replayable && s.Sealer != nil {
		if rec.Sealed, err = s.Sealer.Seal(secret); err != nil {
			return "", err
		}
		rec.SealedUntil = key.CreatedAt.Add(domain.IdempotencyWindow)
	}
	put, err := s.Credentials.PutAPIKey(ctx, rec)
	if err != nil {
		return "", fmt.Errorf("store API key %s: %w", key.ID, err)
	}
	if put {
		return secret, nil
	}
	return s.sealedAPIKey(ctx, accountID, key.ID)
}

// errKeyGone is a replay of a creation whose key can no longer be shown.
var errKeyGone = domain.Errorf(domain.CodeInvalidState,
	"the API key created with this Idempotency-Key can no longer be shown (it was deleted): create another with a new Idempotency-Key")

func (s *Service) sealedAPIKey(ctx context.Context, accountID, keyID string) (string, error) {
	rec, err := s.Credentials.APIKey(ctx, accountID, keyID)
	if err != nil {
		return "", err
	}
	if rec.Sealed == "" || s.Sealer == nil || !s.Now(accountID).Before(rec.SealedUntil) {
		return "", errKeyGone
	}
	secret, err := s.Sealer.Open(rec.Sealed)
	if err != nil {
		s.Log.Error("cannot open a sealed API key: is --secrets-key the same on every process?", "key", keyID, "err", err)
		return "", errKeyGone
	}
	return secret, nil
}

// replayAPIKey answers a retried creation with the key it made; one whose
// hash never reached the credential store (the first request was cut) is
// completed now.
func (s *Service) replayAPIKey(ctx context.Context, accountID, keyID string) (NewAPIKey, error) {
	cur, err := s.Accounts.Load(ctx, accountID)
	if err != nil {
		return NewAPIKey{}, err
	}
	key, ok := cur.State.APIKeys[keyID]
	if !ok {
		return NewAPIKey{}, errKeyGone
	}
	secret, err := s.sealedAPIKey(ctx, accountID, keyID)
	if errors.Is(err, domain.ErrNotFound) {
		secret, err = s.storeAPIKey(ctx, accountID, key, true)
	}
	if err != nil {
		return NewAPIKey{}, err
	}
	return NewAPIKey{Key: key, Secret: secret, Replayed: true, Written: Written{cur.Position}},
		s.WaitFor(ctx, cur.Position)
}

// DeleteAPIKey ends a key: it stops working at once (the credential store
// first), then the log records it.
func (s *Service) DeleteAPIKey(ctx context.Context, accountID, keyID string, meta eventstore.Metadata) (Written, error) {
	if err := s.Credentials.DeleteAPIKey(ctx, accountID, keyID); err != nil {
		return Written{}, err
	}
	d, err := s.Accounts.Run(ctx, accountID, domain.DeleteAPIKey{KeyID: keyID}, meta)
	if err != nil {
		return Written{}, err
	}
	return Written{d.Position}, s.WaitFor(ctx, d.Position)
}

// KeyUse is an API key's last use, from the credential store.
type KeyUse map[string]time.Time

// APIKeyUses says when each of the account's keys was last used.
func (s *Service) APIKeyUses(ctx context.Context, accountID string) (KeyUse, error) {
	recs, err := s.Credentials.APIKeys(ctx, accountID)
	if err != nil {
		return nil, err
	}
	out := make(KeyUse, len(recs))
	for _, r := range recs {
		out[r.KeyID] = r.LastUsedAt
	}
	return out, nil
}

// FindAPIKey is the account and key id an API key authenticates (an error
// matching domain.ErrNotFound for none).
func (s *Service) FindAPIKey(ctx context.Context, key string) (accountID, keyID string, err error) {
	rec, err := s.Credentials.FindAPIKey(ctx, HashAPIKey(key))
	if err != nil {
		return "", "", err
	}
	return rec.AccountID, rec.KeyID, nil
}

// TouchAPIKey records that a key was used at.
func (s *Service) TouchAPIKey(ctx context.Context, accountID, keyID string, at time.Time) error {
	return s.Credentials.TouchAPIKey(ctx, accountID, keyID, at)
}
