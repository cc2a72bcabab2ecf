package api

import (
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
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
	bad, err := bindAll(c, &req)
	if err != nil {
		return err
	}
	details := map[string]string{}
	if req.ServerID == "" {
		details["serverId"] = "required"
	} else if _, err := uuid.Parse(req.ServerID); err != nil {
		details["serverId"] = "must be a server id"
	}
	checkIdemKey(c, details)
	if merge(details, bad); len(details) > 0 {
		return validation(details)
	}
	return s.once(c, req, func(idem app.Idempotency) (reply, error) {
		ctx := c.Request().Context()
		res, err := s.app.RequestBackup(ctx, accountOf(c), req.ServerID, idem, meta(c))
		if err != nil {
			return reply{}, err
		}
		b, err := s.read.Backup(ctx, accountOf(c), res.ID, s.app.Now(accountOf(c)))
		if err != nil {
			return reply{}, err
		}
		return reply{status: http.StatusAccepted, body: map[string]any{"backup": backupOf(b)}, location: "/backups/" + res.ID,
			retryAfter: s.cfg.Expected.Backup, written: res.Written, replayed: res.Replayed}, nil
	})
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
	bad, err := bindAll(c, &req)
	if err != nil {
		return err
	}
	details := map[string]string{}
	keys := parseKeys(details, req.SSHKeys)
	checkKeyIDs(details, req.SSHKeyIDs)
	checkIdemKey(c, details)
	if merge(details, bad); len(details) > 0 {
		s.app.Problems(c.Request().Context(), accountOf(c), details, func(a domain.Account) error {
			_, err := a.DeployKeys(nil, req.SSHKeyIDs)
			return err
		})
		return validation(details)
	}
	return s.once(c, req, func(idem app.Idempotency) (reply, error) {
		res, err := s.app.RestoreBackup(c.Request().Context(), accountOf(c), id, app.ServerRequest{SSHKeys: keys, SSHKeyIDs: req.SSHKeyIDs}, idem, meta(c))
		if err != nil {
			return reply{}, err
		}
		return s.acceptedReply(res, false), nil
	})
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
