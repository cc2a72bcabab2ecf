package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// Error is the body of every error answer.
type Error struct {
	Status  int               `json:"-"`
	Message string            `json:"error"`
	Code    string            `json:"code"`
	Details map[string]string `json:"details,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func apiError(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

func validation(details map[string]string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "validation_failed", Message: "request validation failed", Details: details}
}

// toAPI maps an error from the layers below to the answer the client gets.
func toAPI(err error) *Error {
	var ae *Error
	var se *domain.StateError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, domain.ErrNotFound), errors.Is(err, projections.ErrNotFound):
		return apiError(http.StatusNotFound, "not_found", "not found")
	case errors.Is(err, domain.ErrEmailTaken):
		return apiError(http.StatusConflict, "email_taken", "an account with this email already exists")
	case errors.Is(err, domain.ErrAccountSuspended):
		return apiError(http.StatusForbidden, "account_suspended", "account suspended: contact support")
	case errors.Is(err, domain.ErrServerLimit):
		return apiError(http.StatusForbidden, "server_limit", err.Error()+": destroy a server first or ask for a raise via /docs/custom-requests")
	case errors.Is(err, domain.ErrInsufficientFunds):
		return apiError(http.StatusPaymentRequired, "insufficient_balance", err.Error()+": top up first")
	case errors.Is(err, domain.ErrIdempotencyMismatch):
		return apiError(http.StatusUnprocessableEntity, "idempotency_key_reused", "this Idempotency-Key was used with a different request")
	case errors.As(err, &se):
		return apiError(http.StatusConflict, "invalid_state", se.Error())
	case errors.Is(err, app.ErrBadCredentials):
		return apiError(http.StatusUnauthorized, "invalid_credentials", "invalid email or password")
	case errors.Is(err, app.ErrInvalidEmail):
		return validation(map[string]string{"email": "must be a valid email address"})
	case errors.Is(err, app.ErrWeakPassword):
		return validation(map[string]string{"password": "must be 8 to 256 characters"})
	case errors.Is(err, app.ErrUnknownPlan):
		return validation(map[string]string{"planId": "unknown plan: see GET /plans"})
	case errors.Is(err, app.ErrUnknownRegion):
		return validation(map[string]string{"regionId": "unknown region: see GET /regions"})
	case errors.Is(err, app.ErrBadAdvance):
		return validation(map[string]string{"seconds": app.ErrBadAdvance.Error()})
	case errors.Is(err, domain.ErrInvalid):
		return apiError(http.StatusBadRequest, "validation_failed", err.Error())
	case errors.Is(err, app.ErrBusy), errors.Is(err, app.ErrContention):
		return apiError(http.StatusServiceUnavailable, "busy", err.Error())
	case errors.Is(err, projections.ErrLagging):
		return apiError(http.StatusServiceUnavailable, "read_model_lagging", "the write succeeded but is not visible yet: retry the read")
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, projections.ErrUnavailable), errors.Is(err, eventstore.ErrClosed):
		return apiError(http.StatusServiceUnavailable, "unavailable", "storage temporarily unavailable: retry shortly")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return apiError(http.StatusServiceUnavailable, "timeout", "request timed out: retry")
	}
	return nil
}

// errorHandler writes every error, ours or Echo's, in the one error shape.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := toAPI(err)
	if ae == nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			ae = fromEcho(he)
		} else {
			s.log.Error("unhandled error", "err", err, "request_id", requestID(c), "path", c.Path())
			ae = apiError(http.StatusInternalServerError, "internal", "internal error")
		}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	_ = c.JSON(ae.Status, ae)
}

func fromEcho(he *echo.HTTPError) *Error {
	switch he.Code {
	case http.StatusNotFound:
		return apiError(he.Code, "not_found", "not found")
	case http.StatusMethodNotAllowed:
		return apiError(he.Code, "method_not_allowed", "method not allowed")
	case http.StatusRequestEntityTooLarge:
		return apiError(he.Code, "body_too_large", "request body over 64 KiB")
	case http.StatusUnauthorized:
		return apiError(he.Code, "unauthorized", "missing or invalid access token")
	case http.StatusTooManyRequests:
		return apiError(he.Code, "rate_limited", "rate limited")
	}
	if he.Code >= 400 && he.Code < 500 {
		return apiError(he.Code, "bad_request", http.StatusText(he.Code))
	}
	return apiError(http.StatusInternalServerError, "internal", "internal error")
}
