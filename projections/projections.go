// Package projections builds the read models the API answers from, only by
// consuming the global event log, and tracks how far each has got. The read
// models themselves live in subpackages named for where they are kept
// (memory for the embedded default).
package projections

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// ErrNotFound is returned for a row the read model does not have, or one that
// belongs to another account.
// It is the application's not_found.
var ErrNotFound = fmt.Errorf("%w in read model", domain.ErrNotFound)

// ErrUnavailable wraps a read model that cannot answer now (a database down):
// the API answers 503.
var ErrUnavailable = errors.New("read model unavailable")

// AccountView is what the API shows of an account.
type AccountView struct {
	ID string
	// Email is the email as the log holds it, sealed (or plain in an
	// account not migrated yet): the application opens it with the
	// account's data key to show it.
	Email domain.StoredEmail
	// Forgotten: the account was forgotten; it shows no email and its
	// tokens no longer work.
	Forgotten   bool
	Balance     domain.Money
	HourlySpend domain.Money
	Suspended   bool
	ServerLimit int
	CreatedAt   time.Time
}

// ServerView is what the API shows of a server.
type ServerView struct {
	ID        string
	AccountID string
	Label     string
	Status    domain.ServerStatus
	Region    string
	Plan      string
	IPv4      string
	// HostKeyFingerprints are the SSH host key fingerprints, while the
	// server runs, when the provider told them.
	HostKeyFingerprints []string
	HourlyPrice         domain.Money
	SSHKeys             []string
	BackupID            string
	CreatedAt           time.Time
	// Error is why the deploy failed (ERROR only).
	Error string
	// RootPasswordUntil is until when the owner can be shown the root
	// password the provider set, once (zero: none to show).
	RootPasswordUntil time.Time
}

// BillingView is what GET /billing shows: the balance, the spend, and the
// servers being billed with when each is charged next (the runway).
type BillingView struct {
	Balance     domain.Money
	HourlySpend domain.Money
	Billed      []domain.Billed
}

// PendingLimit is a limit request waiting for an operator, with its account.
type PendingLimit struct {
	AccountID string
	Email     domain.StoredEmail
	Current   int
	Request   domain.LimitRequest
}

// TopupView is what the API shows of a top-up.
type TopupView struct {
	ID         string
	AccountID  string
	Status     string
	Amount     domain.Money
	Currency   string
	PayAddress string
	CreatedAt  time.Time
	PaidAt     time.Time
	// Method is the payment method asked for ("" for any); InvoiceRef,
	// CheckoutLink, ExpiresAt and Methods the processor's invoice.
	Method       string
	InvoiceRef   string
	CheckoutLink string
	ExpiresAt    time.Time
	Methods      []domain.InvoiceMethod
	// Review says why an operator must look at the top-up; ReviewOpen
	// that nobody has yet.
	Review     string
	ReviewOpen bool
}

// BackupView is what the API shows of a backup.
type BackupView struct {
	ID        string
	AccountID string
	ServerID  string
	Label     string
	Status    domain.BackupStatus
	Region    string
	Plan      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// LedgerEntry is one ledger transaction as the customer sees it: what it
// moved on their balance, and what it is for.
type LedgerEntry struct {
	// Position is where the transaction is in the global log; it orders the
	// ledger and makes the pagination cursor.
	Position eventstore.Position
	TxID     string
	Kind     domain.TxKind
	// Amount is signed: credits positive, charges negative.
	Amount       domain.Money
	BalanceAfter domain.Money
	CreatedAt    time.Time
	ServerID     string
	From, To     *time.Time
	TopupID      string
}

// SessionView is what authenticating a request needs of an account.
type SessionView struct {
	// TokenVersion is the account's current token version: an access token
	// issued at another is void (a password change moved it on).
	TokenVersion int
	// KeyLive says whether the API key asked about still exists.
	KeyLive bool
	// Forgotten: the account was forgotten; nothing authenticates for it.
	Forgotten bool
}

// PersonalRecord is an account the key store must be reconciled with:
// one whose email the log holds in plain (registered before emails were
// sealed, not migrated yet), or one that was forgotten.
type PersonalRecord struct {
	AccountID string
	Plain     string
	Forgotten bool
}

// Reader is the query side the API and the background work use.
type Reader interface {
	Account(ctx context.Context, id string) (AccountView, error)
	// Session is what authenticating a request needs of the account (not
	// found when it does not exist), and whether its API key apiKeyID
	// ("" for none) is live: one look into memory, or one row.
	Session(ctx context.Context, accountID, apiKeyID string) (SessionView, error)
	// APIKeys lists the account's API keys, oldest first (no secret: the
	// log has none).
	APIKeys(ctx context.Context, accountID string) ([]domain.APIKey, error)
	// PersonalData lists the accounts whose email is still plain, and the
	// forgotten ones, for the key store's reconciliation at start.
	PersonalData(ctx context.Context) ([]PersonalRecord, error)
	// SSHKeys lists the keys stored on the account, oldest first.
	SSHKeys(ctx context.Context, accountID string) ([]domain.StoredKey, error)
	// LimitRequests lists the account's requests for a higher limit,
	// oldest first.
	LimitRequests(ctx context.Context, accountID string) ([]domain.LimitRequest, error)
	// PendingLimitRequests lists every account's requests waiting for an
	// operator, oldest account first.
	PendingLimitRequests(ctx context.Context) ([]PendingLimit, error)
	// Billing is the account's balance and what is billed, for its runway.
	Billing(ctx context.Context, accountID string) (BillingView, error)
	// Servers lists the account's servers that are not DESTROYED, oldest first.
	Servers(ctx context.Context, accountID string) ([]ServerView, error)
	// Server finds one of the account's servers, DESTROYED included.
	Server(ctx context.Context, accountID, id string) (ServerView, error)
	Topups(ctx context.Context, accountID string) ([]TopupView, error)
	Topup(ctx context.Context, accountID, id string) (TopupView, error)
	// Backups lists the account's backups as shown at now (domain.Shown:
	// EXPIRED for a week once deleted or expired, then not at all), oldest
	// first; Backup is one of them.
	Backups(ctx context.Context, accountID string, now time.Time) ([]BackupView, error)
	Backup(ctx context.Context, accountID, id string, now time.Time) (BackupView, error)
	// Ledger lists the account's ledger transactions newest first: those
	// strictly before the position before (the zero position means from the
	// newest), at most limit.
	Ledger(ctx context.Context, accountID string, before eventstore.Position, limit int) ([]LedgerEntry, error)
	// WorkAccounts lists accounts with a server that may need background
	// work: provisioning, billing, destroying.
	WorkAccounts(ctx context.Context) ([]string, error)
	// OpenBackups lists backups still to complete, expire or clean up.
	OpenBackups(ctx context.Context) ([]string, error)
	// TopupAccounts lists accounts with a top-up whose invoice may still
	// change: OPENING, PENDING or PROCESSING, or EXPIRED at or after
	// lateSince (a late payment can still come).
	TopupAccounts(ctx context.Context, lateSince time.Time) ([]string, error)
	// ReviewTopups lists, oldest first, the top-ups an operator must look
	// at (every account's).
	ReviewTopups(ctx context.Context) ([]TopupView, error)
	// FindTopup finds a visible top-up by id, whatever its account.
	FindTopup(ctx context.Context, id string) (TopupView, error)
}

// Model is a read model the Projector keeps up to date.
type Model interface {
	Reader
	// Apply folds a batch of events, in log order, and moves the checkpoint
	// to the last one, atomically: a batch is applied entirely or not at
	// all. Events at or before the checkpoint are ignored, so a redelivery
	// changes nothing.
	Apply(ctx context.Context, batch []eventstore.Event) error
	// Checkpoint is the position of the last applied event.
	Checkpoint(ctx context.Context) (eventstore.Position, error)
	// Reset empties the model for a rebuild.
	Reset(ctx context.Context) error
}

// DecodedApplier is a Model that takes batches already decoded: the
// projector has a catch-up decoded on every core (Decode, any goroutine)
// and applied in order (ApplyDecoded). Its batches may come from a lazy
// read (eventstore.Store.ReadAllLazy): Data may be nil.
type DecodedApplier interface {
	// Decode decodes what ApplyDecoded needs of batch's events (see the
	// package's Decode); it is safe to call from several goroutines.
	Decode(batch []eventstore.Event) ([]domain.Event, error)
	// ApplyDecoded is Apply for a batch decoded by Decode.
	ApplyDecoded(ctx context.Context, batch []eventstore.Event, decoded []domain.Event) error
}

// Folded reports whether the read models fold the events of stream: the
// account and backup streams (not, say, the sandbox clock's).
func Folded(stream string) bool {
	prefix, _ := domain.StreamID(stream)
	return prefix == domain.AccountStreamPrefix || prefix == domain.BackupStreamPrefix
}

// DecodeEvent decodes one stored event into its domain shape: from the
// store's own encoding when the event carries it (a lazy read), else from
// its JSON. Every reader of the log decodes through it.
func DecodeEvent(ev *eventstore.Event) (domain.Event, error) {
	if ev.Data != nil {
		return domain.DecodeEvent(ev.Type, ev.Data)
	}
	e, err := domain.DecodeEventWith(ev.Type, ev.Decode)
	if err != nil {
		// An event that does not decode is reported the way its JSON
		// reads, so that the message is the same however it was read.
		if js, jerr := ev.JSON(); jerr == nil {
			return domain.DecodeEvent(ev.Type, js)
		}
	}
	return e, err
}

// Decode decodes the events of a batch that the read models fold, nil for
// the others (DecodeEvent). An undecodable event is an error naming it.
func Decode(batch []eventstore.Event) ([]domain.Event, error) {
	decoded := make([]domain.Event, len(batch))
	for i := range batch {
		ev := &batch[i]
		if !Folded(ev.Stream) {
			continue
		}
		e, err := DecodeEvent(ev)
		if err != nil {
			return nil, fmt.Errorf("event %s at %s: %w", ev.ID, ev.Position, err)
		}
		decoded[i] = e
	}
	return decoded, nil
}
