package domain

import (
	"errors"
	"fmt"
)

// Errors callers branch on. Each maps to one HTTP status in the API.
var (
	ErrNotFound            = errors.New("not found")
	ErrEmailTaken          = errors.New("email already registered")
	ErrAccountSuspended    = errors.New("account suspended")
	ErrServerLimit         = errors.New("server limit reached")
	ErrInsufficientFunds   = errors.New("insufficient balance")
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	ErrInvalid             = errors.New("invalid command")
)

// StateError is a command that is valid but not allowed in the current state
// of the thing it targets (for example destroying a server twice).
type StateError struct {
	What   string
	Status string
	Want   string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("%s is %s; %s", e.What, e.Status, e.Want)
}

// ReplayError says a deploy with this idempotency key was already accepted;
// the caller answers with those servers instead of deploying again.
type ReplayError struct {
	ServerIDs []string
	Bulk      bool
}

func (e *ReplayError) Error() string {
	return fmt.Sprintf("idempotent replay of %d server(s)", len(e.ServerIDs))
}
