package domain

import (
	"errors"
	"fmt"
	"maps"
)

// Code is the machine-readable kind of an Error: what a client branches on.
// Codes are part of the API contract, so they never change meaning.
type Code string

// Error codes. The API maps each to one HTTP status, in one table.
const (
	CodeInvalid            Code = "validation_failed"
	CodeNotFound           Code = "not_found"
	CodeEmailTaken         Code = "email_taken"
	CodeBadCredentials     Code = "invalid_credentials"
	CodeAccountSuspended   Code = "account_suspended"
	CodeServerLimit        Code = "server_limit"
	CodeInsufficientFunds  Code = "insufficient_balance"
	CodeIdempotencyReused  Code = "idempotency_key_reused"
	CodeInvalidState       Code = "invalid_state"
	CodeBusy               Code = "busy"
	CodeUpstreamFailed     Code = "upstream_failed"
	CodeReadModelLagging   Code = "read_model_lagging"
	CodeStorageUnavailable Code = "unavailable"
	CodeWrongPassword      Code = "wrong_password"
)

// Error is the one application error: a code, a message for people, and for
// invalid input the fields at fault with what is wrong with each. It is
// raised where the knowledge lives (the domain for its rules, the API for
// the shape of a request) and travels up wrapped with context.
type Error struct {
	Code    Code
	Message string
	// Fields names each bad input field and what is wrong with it.
	Fields map[string]string
}

func (e *Error) Error() string { return e.Message }

// Is matches any Error of the same code, so callers branch on the kind
// (errors.Is(err, ErrNotFound)) whatever the message says.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Errorf is an Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid is a validation failure naming the fields at fault.
func Invalid(fields map[string]string) *Error {
	return &Error{Code: CodeInvalid, Message: "request validation failed", Fields: maps.Clone(fields)}
}

// InvalidField is a validation failure of one field.
func InvalidField(field, problem string) *Error {
	return Invalid(map[string]string{field: problem})
}

// Errors callers branch on, by code.
var (
	ErrNotFound            = Errorf(CodeNotFound, "not found")
	ErrEmailTaken          = Errorf(CodeEmailTaken, "an account with this email already exists")
	ErrBadCredentials      = Errorf(CodeBadCredentials, "invalid email or password")
	ErrAccountSuspended    = Errorf(CodeAccountSuspended, "account suspended: contact support")
	ErrServerLimit         = Errorf(CodeServerLimit, "server limit reached")
	ErrInsufficientFunds   = Errorf(CodeInsufficientFunds, "insufficient balance")
	ErrIdempotencyMismatch = Errorf(CodeIdempotencyReused, "this Idempotency-Key was used with a different request: use a new key for a new request")
	ErrInvalid             = Errorf(CodeInvalid, "invalid command")
	ErrInvalidState        = Errorf(CodeInvalidState, "not allowed in the current state")
	ErrBusy                = Errorf(CodeBusy, "too busy, retry")
	// ErrWrongPassword is a password change whose current password is not
	// the account's: the token is fine, the request is not.
	ErrWrongPassword = &Error{Code: CodeWrongPassword, Message: "currentPassword is not the account's password",
		Fields: map[string]string{"currentPassword": "does not match the account's password"}}
)

// stateError is a command that is valid but not allowed in the current state
// of the thing it targets (for example destroying a server twice).
func stateError(what, status, want string) *Error {
	return Errorf(CodeInvalidState, "%s is %s; %s", what, status, want)
}
