package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/app"
)

type advanceRequest struct {
	Seconds int64 `json:"seconds"`
}

// clockJSON is an account's sandbox time: its clock, how far the account
// moved it, and how far the operator moved every account's.
type clockJSON struct {
	Now                 string `json:"now"`
	OffsetSeconds       int64  `json:"offsetSeconds"`
	SharedOffsetSeconds int64  `json:"sharedOffsetSeconds"`
}

func clockOf(v app.ClockView) clockJSON {
	return clockJSON{Now: stamp(v.Now), OffsetSeconds: int64(v.Offset / time.Second),
		SharedOffsetSeconds: int64(v.SharedOffset / time.Second)}
}

func (s *Server) clock(c echo.Context) error {
	v, err := s.sandbox.Clock(accountOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, clockOf(v))
}

// advance moves the caller's own clock: no other account sees the move.
func (s *Server) advance(c echo.Context) error {
	var req advanceRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if err := s.app.CheckActive(c.Request().Context(), accountOf(c)); err != nil {
		return err
	}
	v, err := s.sandbox.AdvanceAccountClock(c.Request().Context(), accountOf(c), req.Seconds, meta(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, clockOf(v))
}

// adminAdvance moves the clock every account shares (tests, operators).
func (s *Server) adminAdvance(c echo.Context) error {
	var req advanceRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	now, err := s.sandbox.AdvanceClock(c.Request().Context(), req.Seconds, operatorMeta(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"now": stamp(now)})
}
