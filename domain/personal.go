package domain

import (
	"context"
	"fmt"
	"time"
)

// Personal data (today: the email address) is never written to the log in
// plain: an event holds it sealed with a data key of its own account, kept
// outside the log in a KeyStore. Destroying that key ("forgetting" the
// account) makes the data unreadable in every copy of the log ever made,
// while the account's events, its ledger and the audit stay whole.

// ForgottenEmail is what is shown in place of the email of a forgotten
// account.
const ForgottenEmail = "forgotten"

// StoredEmail is an account's email as its events hold it: Sealed with the
// account's data key; or, for an account registered before emails were
// sealed and not migrated yet, Plain (its AccountRegistered cannot be
// rewritten, but the state moves to the sealed form once migrated).
type StoredEmail struct {
	Plain  string
	Sealed string
}

// KeyStore keeps, outside the log and deletable, what personal data needs:
// each account's data key (as the application gives it, already wrapped)
// and the login index, which maps a keyed hash of a normalised email (the
// lookup; never the email itself) to the account it names. Errors are
// ErrNotFound, ErrAccountForgotten, or a failure to reach the store.
type KeyStore interface {
	// Key returns the account's data key: ErrNotFound when it has none,
	// ErrAccountForgotten when it was destroyed.
	Key(ctx context.Context, accountID string) ([]byte, error)
	// CreateKey keeps key as the account's data key unless it has one,
	// and returns the one kept (the first writer wins, so concurrent
	// callers agree); ErrAccountForgotten when it was destroyed.
	CreateKey(ctx context.Context, accountID string, key []byte) ([]byte, error)
	// Claim points lookup at accountID unless it points at an account
	// already, and returns the account it points at.
	Claim(ctx context.Context, lookup []byte, accountID string) (string, error)
	// Lookup returns the account lookup points at, or ErrNotFound.
	Lookup(ctx context.Context, lookup []byte) (string, error)
	// Forget destroys the data keys of the accounts, keeping only that
	// they were destroyed (so no key is ever created for them again), and
	// deletes every index entry pointing at them. Forgetting twice is
	// harmless.
	Forget(ctx context.Context, accountIDs ...string) error
}

// Personal-data errors, by code.
const (
	CodeAccountForgotten  Code = "account_forgotten"
	CodeAccountHasServers Code = "account_has_servers"
	CodeAccountHasBalance Code = "account_has_balance"
)

var (
	// ErrAccountForgotten: the account was forgotten; it takes no command
	// but the ones that finish what was in flight.
	ErrAccountForgotten = Errorf(CodeAccountForgotten, "this account was forgotten")
	// ErrAccountHasServers: an account with live servers cannot be forgotten.
	ErrAccountHasServers = Errorf(CodeAccountHasServers, "the account has live servers")
	// ErrAccountHasBalance: an account with money left is forgotten only if
	// its owner gives the money up.
	ErrAccountHasBalance = Errorf(CodeAccountHasBalance, "the account has a positive balance")
	// ErrKeyStoreUnavailable: the key store cannot answer now (a database
	// down); the API answers 503.
	ErrKeyStoreUnavailable = Errorf(CodeStorageUnavailable, "key store temporarily unavailable: retry shortly")
)

// Personal-data commands on an account stream.
type (
	// SealEmail moves an account registered before emails were sealed to
	// the sealed form: its state (and so every read model) stops holding the
	// plain address. Sealed is the address sealed with the account's key.
	SealEmail struct{ Sealed string }
	// Forget records that the account is forgotten: refused while it holds
	// a live server (PROVISIONING, ACTIVE or SUSPENDED), or money unless
	// ForfeitBalance, in which case the balance is moved to
	// LedgerRevenueForfeited first. The owner cannot forget an account on an
	// abuse hold; an operator can. Destroying the data key is the
	// application's next step, after this is recorded.
	Forget struct {
		Actor          string
		Operator       bool
		ForfeitBalance bool
	}
)

func (SealEmail) accountCommand() {}
func (Forget) accountCommand()    {}

// Personal-data events on an account stream. They carry no personal data.
type (
	// AccountEmailSealed: the plain email an old AccountRegistered holds is
	// from now on held sealed; the state keeps only the sealed form.
	AccountEmailSealed struct {
		SealedEmail string    `json:"sealedEmail"`
		At          time.Time `json:"at"`
	}
	// AccountForgotten: the account is forgotten. Its data key is destroyed
	// after this is recorded, so its email can never be read again; its
	// events, ledger and audit trail remain. Forfeited is the balance its
	// owner gave up (moved by the LedgerPosted before this event).
	AccountForgotten struct {
		Actor     string    `json:"actor"`
		Forfeited Money     `json:"forfeited"`
		At        time.Time `json:"at"`
	}
)

func (AccountEmailSealed) EventType() string       { return "AccountEmailSealed" }
func (AccountForgotten) EventType() string         { return "AccountForgotten" }
func (e AccountEmailSealed) OccurredAt() time.Time { return e.At }
func (e AccountForgotten) OccurredAt() time.Time   { return e.At }

// forgottenAllows lists what a forgotten account still takes: the
// background work finishing what was in flight when it was forgotten
// (a destroy completing, a late payment being recorded: the money is real).
func forgottenAllows(cmd Command) bool {
	switch cmd.(type) {
	case Settle, CompleteDestroy, RecordInvoice, FailTopupOpen, ApplyInvoice, CreditTopup, CloseTopupReview:
		return true
	}
	return false
}

func (d *decision) sealEmail(c SealEmail, now time.Time) error {
	if d.s.Email.Plain == "" {
		return nil // already sealed: nothing to do, so running it again is harmless
	}
	if c.Sealed == "" {
		return fmt.Errorf("%w: no sealed email", ErrInvalid)
	}
	d.emit(AccountEmailSealed{SealedEmail: c.Sealed, At: now})
	return nil
}

func (d *decision) forget(c Forget, now time.Time) error {
	if !c.Operator {
		if err := d.s.CheckActive(); err != nil {
			return err
		}
	}
	if n := d.s.LiveServers(); n > 0 {
		return fmt.Errorf("%w: %d server(s) PROVISIONING, ACTIVE or SUSPENDED: destroy them first (DELETE /servers/:id)",
			ErrAccountHasServers, n)
	}
	forfeited := Zero()
	if d.s.Balance.Sign() > 0 {
		if !c.ForfeitBalance {
			return fmt.Errorf("%w of %s: forgetting it gives the money up; say so explicitly "+
				"(DELETE /auth/me?forfeitBalance=true, or --forfeit-balance for an operator) or spend it first",
				ErrAccountHasBalance, d.s.Balance.Fixed(2))
		}
		forfeited = d.s.Balance
		d.emit(transfer(TxForfeit, txID("forfeit", d.s.ID), LedgerRevenueForfeited, CustomerLedger(d.s.ID), forfeited, now))
	}
	d.emit(AccountForgotten{Actor: c.Actor, Forfeited: forfeited, At: now})
	return nil
}
