package api

import (
	"context"
	"errors"
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

func (e *Error) Error() string { return e.Message }

func apiError(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

func validation(details map[string]string) *Error {
	return answer(domain.Invalid(details), domain.Invalid(details))
}

// statuses is the HTTP status of each application error code.
var statuses = map[domain.Code]int{
	domain.CodeInvalid:            http.StatusBadRequest,
	domain.CodeNotFound:           http.StatusNotFound,
	domain.CodeEmailTaken:         http.StatusConflict,
	domain.CodeBadCredentials:     http.StatusUnauthorized,
	domain.CodeAccountSuspended:   http.StatusForbidden,
	domain.CodeServerLimit:        http.StatusForbidden,
	domain.CodeInsufficientFunds:  http.StatusPaymentRequired,
	domain.CodeIdempotencyReused:  http.StatusUnprocessableEntity,
	domain.CodeInvalidState:       http.StatusConflict,
	domain.CodeBusy:               http.StatusServiceUnavailable,
	domain.CodeUpstreamFailed:     http.StatusBadGateway,
	domain.CodeReadModelLagging:   http.StatusServiceUnavailable,
	domain.CodeStorageUnavailable: http.StatusServiceUnavailable,
	domain.CodeWrongPassword:      http.StatusBadRequest,
	domain.CodeAccountForgotten:   http.StatusConflict,
	domain.CodeAccountHasServers:  http.StatusConflict,
	domain.CodeAccountHasBalance:  http.StatusConflict,
}

// answer renders an application error: its code's status, its fields as
// details, and the whole wrapped message except for not_found, whose
// context (which id, which table) is nobody's business.
func answer(err error, de *domain.Error) *Error {
	status, ok := statuses[de.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	msg := err.Error()
	// Nor is the cause of an outage (a database's address, its error).
	if de.Code == domain.CodeNotFound || de.Code == domain.CodeStorageUnavailable || de.Code == domain.CodeInvalid && len(de.Fields) > 0 {
		msg = de.Message
	}
	return &Error{Status: status, Code: string(de.Code), Message: msg, Details: de.Fields}
}

// toAPI maps an error from the layers below to the answer the client gets.
func toAPI(err error) *Error {
	var ae *Error
	var de *domain.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &de):
		return answer(err, de)
	case errors.Is(err, eventstore.ErrUnavailable), errors.Is(err, projections.ErrUnavailable), errors.Is(err, eventstore.ErrClosed):
		return apiError(http.StatusServiceUnavailable, string(domain.CodeStorageUnavailable), "storage temporarily unavailable: retry shortly")
	case errors.Is(err, domain.ErrPaymentsUnavailable), errors.Is(err, domain.ErrPaymentsCredentials):
		// A refused key at run time is the operator's to fix; to the
		// customer it is the processor being unavailable, retry later.
		return apiError(http.StatusServiceUnavailable, "payments_unavailable", "the payment processor is unavailable: retry shortly")
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
	// A write that stands but is not visible yet says where it is, so the
	// client's next read (through any process) can wait for it.
	var nv *app.NotVisibleError
	if errors.As(err, &nv) {
		written(c, app.Written{Position: nv.Position})
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
