package app

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/cryptovps/cryptovps/domain"
)

// errHashBusy is returned when too many password hashes are already
// running: the API answers 503 rather than queue without bound.
var errHashBusy = domain.Errorf(domain.CodeBusy, "server busy, retry shortly")

// argon2id parameters: OWASP's minimum recommendation (19 MiB, 2 passes),
// about 30 ms on one core.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// Hasher hashes and checks passwords with argon2id, running at most a fixed
// number at once so a login flood cannot starve the rest of the API.
type Hasher struct {
	// MaxWait bounds how long a request queues for a hashing slot before the
	// client is told to come back (503); defaultHashWait unless set. A test
	// suite hashing in parallel under the race detector sets it higher: its
	// queue is not the overload the bound protects a server from.
	MaxWait time.Duration
	slots   chan struct{}
	dummy   string
}

// NewHasher allows concurrency hashes at once.
func NewHasher(concurrency int) *Hasher {
	h := &Hasher{slots: make(chan struct{}, max(concurrency, 1))}
	h.dummy = h.hash("dummy password for unknown accounts")
	return h
}

// defaultHashWait bounds how long a request queues for a hashing slot: past
// it the client is told to come back (503) instead of piling up goroutines.
const defaultHashWait = 3 * time.Second

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	wait := h.MaxWait
	if wait <= 0 {
		wait = defaultHashWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errHashBusy
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", errHashBusy, ctx.Err())
	}
}

func (h *Hasher) release() { <-h.slots }

func (h *Hasher) hash(password string) string {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key))
}

// Hash returns the PHC-formatted argon2id hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.hash(password), nil
}

// Verify checks password against a hash made by Hash. An empty hash (unknown
// account) is checked against a dummy so both answers take as long.
func (h *Hasher) Verify(ctx context.Context, hash, password string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	known := hash != ""
	if !known {
		hash = h.dummy
	}
	var version int
	var m, t uint32
	var p uint8
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, fmt.Errorf("stored password hash is not argon2id")
	}
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil {
		return false, fmt.Errorf("stored password hash version: %w", err)
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, fmt.Errorf("stored password hash parameters: %w", err)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("stored password salt: %w", err)
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("stored password key: %w", err)
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return known && subtle.ConstantTimeCompare(got, want) == 1, nil
}
