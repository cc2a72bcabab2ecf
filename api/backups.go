package api

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/projections"
)

func (s *Server) backups(c echo.Context) error {
	// Whether a backup is still visible depends on the account's clock.
	return renderList(c, "backups", func(ctx context.Context, acct string) ([]projections.BackupView, error) {
		return s.read.Backups(ctx, acct, s.app.Now(acct))
	}, backupOf)
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
	id, w, err := s.app.RequestBackup(c.Request().Context(), accountOf(c), req.ServerID, meta(c))
	if err != nil {
		return err
	}
	written(c, w)
	accepted202(c, "/backups/"+id, s.cfg.Expected.Backup)
	return renderOne(c, http.StatusAccepted, "backup", id, func(ctx context.Context, acct, id string) (projections.BackupView, error) {
		return s.read.Backup(ctx, acct, id, s.app.Now(acct))
	}, backupOf)
}

func (s *Server) backup(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	want, timeout, err := waitQuery(c, backupStatuses)
	if err != nil {
		return err
	}
	b, err := longPoll(c.Request().Context(), s, want, timeout,
		func(ctx context.Context) (projections.BackupView, error) {
			return s.read.Backup(ctx, accountOf(c), id, s.app.Now(accountOf(c)))
		},
		func(b projections.BackupView) string { return string(b.Status) })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"backup": backupOf(b)})
}

func (s *Server) restore(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	var req keysRequest
	if err := bind(c, &req); err != nil {
		return err
	}
	details := map[string]string{}
	keys := parseKeys(details, req.SSHKeys)
	checkKeyIDs(details, req.SSHKeyIDs)
	if len(details) > 0 {
		return validation(details)
	}
	idem, err := idempotency(c, req)
	if err != nil {
		return err
	}
	res, err := s.app.RestoreBackup(c.Request().Context(), accountOf(c), id, app.ServerRequest{SSHKeys: keys, SSHKeyIDs: req.SSHKeyIDs}, idem, meta(c))
	if err != nil {
		return err
	}
	out := accepted(c, res)
	accepted202(c, "/servers/"+out[0].ID, s.cfg.Expected.Provision)
	return c.JSON(http.StatusAccepted, map[string]any{"server": out[0]})
}

func (s *Server) deleteBackup(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	w, err := s.app.DeleteBackup(c.Request().Context(), accountOf(c), id, meta(c))
	if err != nil {
		return err
	}
	written(c, w)
	return c.JSON(http.StatusAccepted, map[string]bool{"ok": true})
}
