package api

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

func (s *Server) backups(c echo.Context) error {
	// Backups are streams of their own, not on the account's: wait for the
	// whole log as it is now, so one just requested through another process
	// is listed.
	if err := s.svc.AwaitLog(c.Request().Context()); err != nil {
		return err
	}
	list, err := s.svc.Reader().Backups(c.Request().Context(), accountOf(c), s.svc.Now())
	if err != nil {
		return err
	}
	out := make([]backupJSON, len(list))
	for i, b := range list {
		out[i] = backupOf(b)
	}
	return c.JSON(http.StatusOK, map[string]any{"backups": out})
}

type backupRequest struct {
	ServerID string `json:"serverId"`
}

func (s *Server) createBackup(c echo.Context) error {
	var req backupRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.ServerID == "" {
		return validation(map[string]string{"serverId": "required"})
	}
	if _, err := uuid.Parse(req.ServerID); err != nil {
		return validation(map[string]string{"serverId": "must be a server id"})
	}
	id, err := s.svc.RequestBackup(c.Request().Context(), accountOf(c), req.ServerID, meta(c))
	if err != nil {
		return err
	}
	b, err := s.svc.Reader().Backup(c.Request().Context(), accountOf(c), id, s.svc.Now())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"backup": backupOf(b)})
}

func (s *Server) restore(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := bind(c, &struct{}{}); err != nil {
		return err
	}
	idem, err := idempotency(c, struct{}{})
	if err != nil {
		return err
	}
	res, err := s.svc.RestoreBackup(c.Request().Context(), accountOf(c), id, idem, meta(c))
	if err != nil {
		return err
	}
	out, err := s.accepted(c, res)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"server": out[0]})
}

func (s *Server) deleteBackup(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	if err := s.svc.DeleteBackup(c.Request().Context(), accountOf(c), id, meta(c)); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]bool{"ok": true})
}
