package app

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Sealer encrypts the secrets that must be recorded in the event log without
// the log revealing them (a server's root password): AES-256-GCM under a key
// kept outside the log, so an exported, copied or leaked log holds only
// ciphertext. Every process sharing a log must share the key.
type Sealer struct {
	aead cipher.AEAD
}

// sealPrefix versions the sealed form, so the cipher or key can change
// without old entries becoming unreadable.
const sealPrefix = "v1:"

// NewSealer seals with a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("sealing key: %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain with a fresh nonce.
func (s *Sealer) Seal(plain string) (string, error) { return s.SealFor(plain, "") }

// SealFor is Seal bound to what it is for (say "email:<account id>"): it
// opens only with the same binding, so a sealed value copied onto another
// record does not open there.
func (s *Sealer) SealFor(plain, binding string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := s.aead.Seal(nonce, nonce, []byte(plain), []byte(sealPrefix+binding))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(ct), nil
}

var errSealed = errors.New("sealed secret is not readable with this key")

// Open decrypts what Seal made with the same key.
func (s *Sealer) Open(sealed string) (string, error) { return s.OpenFor(sealed, "") }

// OpenFor decrypts what SealFor made with the same key and binding.
func (s *Sealer) OpenFor(sealed, binding string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, sealPrefix)
	if !ok {
		return "", errSealed
	}
	b, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(b) < s.aead.NonceSize() {
		return "", errSealed
	}
	plain, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], []byte(sealPrefix+binding))
	if err != nil {
		return "", errSealed
	}
	return string(plain), nil
}
