package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/domain"
)

// Operator commands on top-ups that were not credited automatically
// (`cryptovps topups review|credit|dismiss`).

type creditRequest struct {
	Reason string `json:"reason"`
	// Amount is what to credit in USD; empty credits the top-up's amount.
	Amount string `json:"amount"`
}

func (s *Server) adminReviewTopups(c echo.Context) error {
	ts, err := s.read.ReviewTopups(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]reviewTopupJSON, len(ts))
	for i, t := range ts {
		out[i] = reviewTopupOf(t)
	}
	return c.JSON(http.StatusOK, map[string]any{"topups": out})
}

func (s *Server) adminCreditTopup(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var req creditRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Reason == "" || len(req.Reason) > 500 {
		return validation(map[string]string{"reason": "required, at most 500 characters"})
	}
	amount := domain.Zero()
	if req.Amount != "" {
		if amount, err = domain.ParseMoney(req.Amount); err != nil || amount.Sign() <= 0 {
			return validation(map[string]string{"amount": "a positive decimal string, like \"25.00\""})
		}
	}
	t, err := s.read.FindTopup(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if _, err := s.app.AdminCreditTopup(c.Request().Context(), t.AccountID, id, amount, req.Reason, operatorMeta(c)); err != nil {
		return err
	}
	return s.adminTopup(c, t.AccountID, id)
}

func (s *Server) adminDismissTopup(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	reason, err := s.adminReason(c)
	if err != nil {
		return err
	}
	t, err := s.read.FindTopup(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if _, err := s.app.AdminCloseTopupReview(c.Request().Context(), t.AccountID, id, reason, operatorMeta(c)); err != nil {
		return err
	}
	return s.adminTopup(c, t.AccountID, id)
}

func (s *Server) adminTopup(c echo.Context, accountID, id string) error {
	t, err := s.read.Topup(c.Request().Context(), accountID, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"topup": reviewTopupOf(t)})
}
