package api

import (
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

type reasonRequest struct {
	Reason string `json:"reason"`
}

type limitRequest struct {
	Limit *int `json:"limit"`
}

// who is the account an operator route names (:who, an email or an id).
// An email may hold a "/" (a/b@example.com), which clients send escaped as
// %2F; Echo then routes on the raw path and leaves the parameter escaped,
// so it is unescaped here, once (an unescaped path is already decoded). A
// malformed escape names no account: it is passed on as it is and found by
// nobody.
func who(c echo.Context) string {
	w := c.Param("who")
	if c.Request().URL.RawPath == "" {
		return w
	}
	if u, err := url.PathUnescape(w); err == nil {
		return u
	}
	return w
}

func operatorMeta(c echo.Context) eventstore.Metadata {
	return eventstore.Metadata{RequestID: requestID(c), Actor: "operator"}
}

func (s *Server) adminAnswer(c echo.Context, st domain.Account) error {
	email, err := s.app.EmailOf(c.Request().Context(), st.ID, st.Email, st.Forgotten)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"account": map[string]any{
		"id": st.ID, "email": email, "forgotten": st.Forgotten, "suspended": st.Suspended, "suspendReason": st.SuspendReason,
		"serverLimit": st.ServerLimit, "balance": money(st.Balance), "liveServers": st.LiveServers(),
	}})
}

type forgetRequest struct {
	ForfeitBalance bool `json:"forfeitBalance"`
}

// adminForget forgets an account for an operator (an erasure request), by
// the rules of DELETE /auth/me, an abuse hold aside; forgetting it again
// finishes what a failed attempt left.
func (s *Server) adminForget(c echo.Context) error {
	var req forgetRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	f, err := s.app.AdminForget(ctx, who(c), req.ForfeitBalance, operatorMeta(c))
	if err != nil {
		return err
	}
	written(c, f.Written)
	st, err := s.app.AdminAccount(ctx, f.AccountID)
	if err != nil {
		return err
	}
	return s.adminAnswer(c, st)
}

func (s *Server) adminReason(c echo.Context) (string, error) {
	var req reasonRequest
	if err := bind(c, &req); err != nil {
		return "", err
	}
	if req.Reason == "" || len(req.Reason) > 500 {
		return "", validation(map[string]string{"reason": "required, at most 500 characters"})
	}
	return req.Reason, nil
}

func (s *Server) adminSuspend(c echo.Context) error {
	reason, err := s.adminReason(c)
	if err != nil {
		return err
	}
	st, err := s.app.AdminCommand(c.Request().Context(), who(c), domain.Suspend{Reason: reason, Actor: "operator"}, operatorMeta(c))
	if err != nil {
		return err
	}
	return s.adminAnswer(c, st)
}

func (s *Server) adminUnsuspend(c echo.Context) error {
	reason, err := s.adminReason(c)
	if err != nil {
		return err
	}
	st, err := s.app.AdminCommand(c.Request().Context(), who(c), domain.Unsuspend{Reason: reason, Actor: "operator"}, operatorMeta(c))
	if err != nil {
		return err
	}
	return s.adminAnswer(c, st)
}

func (s *Server) adminSetLimit(c echo.Context) error {
	var req limitRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Limit == nil || *req.Limit < 0 || *req.Limit > 10000 {
		return validation(map[string]string{"limit": "required, 0 to 10000"})
	}
	st, err := s.app.AdminCommand(c.Request().Context(), who(c), domain.SetLimit{Limit: *req.Limit, Actor: "operator"}, operatorMeta(c))
	if err != nil {
		return err
	}
	return s.adminAnswer(c, st)
}

func (s *Server) adminAccount(c echo.Context) error {
	st, err := s.app.AdminAccount(c.Request().Context(), who(c))
	if err != nil {
		return err
	}
	return s.adminAnswer(c, st)
}
