package domain

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Idempotency-Key: every request that creates or moves something may carry
// one. The account remembers each key with the request it came with (a
// hash) and what that request created, and, once the first answer is
// written, that answer itself; a retry with the same key and request gets
// the first answer back instead of doing the work again, another request
// with the key is refused. The key is claimed in the same append as the
// work it guards (or, for work on another stream, before it, naming what
// it will create), so the work happens at most once whatever the timing.

// IdempotencyWindow is how long a key is remembered: 24 hours of real time
// (Idem.Wall), never sandbox time, which an advance moves by days at once.
const IdempotencyWindow = 24 * time.Hour

// MaxIdempotencyKeys bounds the keys an account remembers at once: past it
// the oldest is forgotten first, so the state of an account that sends a
// key with every request stays small.
const MaxIdempotencyKeys = 1000

// MaxIdempotencyKeyBytes bounds a key's length in bytes (a key of ASCII is
// as many characters).
const MaxIdempotencyKeyBytes = 255

// CheckIdempotencyKey is the rule for a key: 1 to MaxIdempotencyKeyBytes
// bytes of UTF-8 text without control characters or surrounding spaces.
// The key is kept in the log as JSON, which would turn bytes that are not
// UTF-8 into U+FFFD: such a key would no longer match its retry after a
// restart, so it is refused.
func CheckIdempotencyKey(key string) error {
	if key == "" || len(key) > MaxIdempotencyKeyBytes || strings.TrimSpace(key) != key || !utf8.ValidString(key) ||
		strings.ContainsFunc(key, unicode.IsControl) {
		return InvalidField("Idempotency-Key", fmt.Sprintf("1 to %d bytes of UTF-8 text, no control characters, no surrounding spaces", MaxIdempotencyKeyBytes))
	}
	return nil
}

// Idem is a request's Idempotency-Key as a command carries it; the zero
// value is a request without one.
type Idem struct {
	Key string
	// RequestHash fingerprints the request (method, path and body).
	RequestHash string
	// Wall is the real time of the request: what ages the key.
	Wall time.Time
}

func (i Idem) check() error {
	if i.Key == "" {
		return nil
	}
	if err := CheckIdempotencyKey(i.Key); err != nil {
		return err
	}
	if i.RequestHash == "" || i.Wall.IsZero() {
		return fmt.Errorf("%w: an Idempotency-Key without its request hash or time", ErrInvalid)
	}
	return nil
}

// IdemAnswer is the first answer to a keyed request, kept so that a retry
// gets it byte for byte.
type IdemAnswer struct {
	Status int `json:"status"`
	// Body is the answer's JSON body; sealed (an opaque string only the
	// application can open) when Sealed, for answers that show a secret.
	Body   string `json:"body"`
	Sealed bool   `json:"sealed,omitempty"`
	// Location and RetryAfter (seconds) are the answer's headers of
	// those names, when it had them.
	Location   string `json:"location,omitempty"`
	RetryAfter int    `json:"retryAfter,omitempty"`
	// Secret marks an answer opened from its sealed form, in memory only.
	Secret bool `json:"-"`
}

// IdempotencyRecord is what an account remembers of one keyed request.
type IdempotencyRecord struct {
	Key         string
	RequestHash string
	// WallAt is the real time the key was used: it expires
	// IdempotencyWindow later.
	WallAt time.Time
	// ServerIDs and Bulk are what a deploy accepted; Ref the id of what
	// another request created or moved (a top-up, a backup, a key).
	ServerIDs []string
	Bulk      bool
	Ref       string
	// Answer is the first answer, once it is recorded.
	Answer *IdemAnswer
}

// Live reports whether the record still holds at the real time wall.
func (r IdempotencyRecord) Live(wall time.Time) bool { return wall.Sub(r.WallAt) < IdempotencyWindow }

// Idempotency events, on the account stream.
type (
	// IdempotencyKeyUsed claims a key for a request: it is appended with
	// the work (a deploy's servers), or before work on another stream,
	// naming what that work creates (Ref).
	IdempotencyKeyUsed struct {
		Key         string   `json:"key"`
		RequestHash string   `json:"requestHash"`
		ServerIDs   []string `json:"serverIds"`
		Bulk        bool     `json:"bulk"`
		Ref         string   `json:"ref,omitempty"`
		// WallAt is the real time of the request (zero in logs written
		// before it was recorded: At then stands for it).
		WallAt time.Time `json:"wallAt,omitzero"`
		At     time.Time `json:"at"`
	}
	// IdempotencyAnswerRecorded keeps the first answer to a keyed request.
	IdempotencyAnswerRecorded struct {
		Key         string     `json:"key"`
		RequestHash string     `json:"requestHash"`
		Answer      IdemAnswer `json:"answer"`
		At          time.Time  `json:"at"`
	}
)

func (IdempotencyAnswerRecorded) EventType() string       { return "IdempotencyAnswerRecorded" }
func (e IdempotencyAnswerRecorded) OccurredAt() time.Time { return e.At }

// Idempotency commands.
type (
	// ClaimIdempotencyKey claims a key for work done outside the account's
	// stream (a backup) or checked against its state first (a payment),
	// naming what the work is about (Ref). A retry finds the claim
	// (*ReplayError) and completes or answers the same work.
	ClaimIdempotencyKey struct {
		Idem Idem
		Ref  string
	}
	// RecordIdempotentAnswer keeps the first answer to a keyed request; an
	// answer already kept, or a key no longer remembered, records nothing.
	RecordIdempotentAnswer struct {
		Idem   Idem
		Answer IdemAnswer
	}
)

func (ClaimIdempotencyKey) accountCommand()    {}
func (RecordIdempotentAnswer) accountCommand() {}

// ReplayError says the key was already used for the same request: the
// caller answers with what the record names (or its recorded answer)
// instead of doing the work again. It is control flow between the domain
// and the application, never shown.
type ReplayError struct {
	IdempotencyRecord
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("idempotent replay of key %q", e.Key)
}

// CheckIdempotency says what a keyed request is: new (nil; also a request
// without a key), a retry (*ReplayError with the record), or another
// request reusing a key (ErrIdempotencyMismatch).
func (a Account) CheckIdempotency(idem Idem) error {
	if idem.Key == "" {
		return nil
	}
	r, ok := a.Idempotency[idem.Key]
	if !ok || !r.Live(idem.Wall) {
		return nil
	}
	if r.RequestHash != idem.RequestHash {
		return ErrIdempotencyMismatch
	}
	return &ReplayError{IdempotencyRecord: r}
}

// keyed checks a keyed command: its key's shape, then whether it is a
// retry or a mismatch.
func (d *decision) keyed(idem Idem) error {
	if err := idem.check(); err != nil {
		return err
	}
	return d.s.CheckIdempotency(idem)
}

// claim records the key of a request whose work this decision did (or
// names, with ref); a request without a key records nothing.
func (d *decision) claim(idem Idem, used IdempotencyKeyUsed, now time.Time) {
	if idem.Key == "" {
		return
	}
	used.Key, used.RequestHash, used.WallAt, used.At = idem.Key, idem.RequestHash, idem.Wall, now
	d.emit(used)
}

func (d *decision) claimKey(c ClaimIdempotencyKey, now time.Time) error {
	if c.Idem.Key == "" || c.Ref == "" {
		return fmt.Errorf("%w: a claim needs a key and what it is for", ErrInvalid)
	}
	if err := d.keyed(c.Idem); err != nil {
		return err
	}
	d.claim(c.Idem, IdempotencyKeyUsed{Ref: c.Ref}, now)
	return nil
}

func (d *decision) recordAnswer(c RecordIdempotentAnswer, now time.Time) error {
	r, ok := d.s.Idempotency[c.Idem.Key]
	if !ok || r.RequestHash != c.Idem.RequestHash || r.Answer != nil {
		return nil
	}
	if c.Answer.Status < 200 || c.Answer.Status > 299 {
		return fmt.Errorf("%w: only a success is kept as an answer, not %d", ErrInvalid, c.Answer.Status)
	}
	d.emit(IdempotencyAnswerRecorded{Key: r.Key, RequestHash: r.RequestHash, Answer: c.Answer, At: now})
	return nil
}

// evolveIdempotency folds the idempotency events (and the keys of older
// logs, kept on TopupRequested) into the account.
func evolveIdempotency(a Account, e Event) Account {
	switch e := e.(type) {
	case IdempotencyKeyUsed:
		wall := e.WallAt
		if wall.IsZero() {
			wall = e.At
		}
		a = remember(a, IdempotencyRecord{Key: e.Key, RequestHash: e.RequestHash, WallAt: wall,
			ServerIDs: e.ServerIDs, Bulk: e.Bulk, Ref: e.Ref})
	case IdempotencyAnswerRecorded:
		if r, ok := a.Idempotency[e.Key]; ok && r.RequestHash == e.RequestHash {
			answer := e.Answer
			r.Answer = &answer
			a.Idempotency[e.Key] = r
		}
	case TopupRequested:
		if e.IdempotencyKey != "" {
			a = remember(a, IdempotencyRecord{Key: e.IdempotencyKey, RequestHash: e.RequestHash, WallAt: e.At, Ref: e.TopupID})
		}
	case TopupOpenFailed:
		// A top-up whose invoice could not be opened was refused (a 400):
		// its key is free again, as if the request had never been made.
		for k, r := range a.Idempotency {
			if r.Ref == e.TopupID {
				delete(a.Idempotency, k)
				a.IdempotencyOrder = slices.DeleteFunc(a.IdempotencyOrder, func(x string) bool { return x == k })
			}
		}
	}
	return a
}

// remember keeps a record, forgetting first the records that expired by its
// time and then, past MaxIdempotencyKeys, the oldest: what the account
// remembers is a function of its events alone, the same after a restart.
func remember(a Account, r IdempotencyRecord) Account {
	if _, ok := a.Idempotency[r.Key]; ok {
		a.IdempotencyOrder = slices.DeleteFunc(a.IdempotencyOrder, func(x string) bool { return x == r.Key })
	}
	a.Idempotency[r.Key] = r
	a.IdempotencyOrder = append(a.IdempotencyOrder, r.Key)
	keep := a.IdempotencyOrder[:0]
	for _, k := range a.IdempotencyOrder {
		if !a.Idempotency[k].Live(r.WallAt) {
			delete(a.Idempotency, k)
			continue
		}
		keep = append(keep, k)
	}
	for len(keep) > MaxIdempotencyKeys {
		delete(a.Idempotency, keep[0])
		keep = keep[1:]
	}
	a.IdempotencyOrder = keep
	return a
}
