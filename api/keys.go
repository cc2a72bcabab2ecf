package api

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
)

type sshKeyJSON struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
	CreatedAt   string `json:"createdAt"`
}

func sshKeyOf(k domain.StoredKey) sshKeyJSON {
	return sshKeyJSON{ID: k.ID, Name: k.Name, Fingerprint: k.Key.Fingerprint, CreatedAt: stamp(k.CreatedAt)}
}

type newSSHKey struct {
	Name      string `json:"name"`
	PublicKey string `json:"publicKey"`
}

func (s *Server) createSSHKey(c echo.Context) error {
	var req newSSHKey
	bad, err := bindAll(c, &req)
	if err != nil {
		return err
	}
	details := map[string]string{}
	if n := strings.TrimSpace(req.Name); n == "" {
		details["name"] = "required"
	} else if err := domain.CheckKeyName(req.Name); err != nil {
		details["name"] = err.(*domain.Error).Fields["name"]
	}
	var key domain.SSHKey
	if req.PublicKey == "" {
		details["publicKey"] = "required: an OpenSSH public key line"
	} else if k, err := domain.ParseSSHKey(req.PublicKey); err != nil {
		details["publicKey"] = strings.TrimPrefix(err.Error(), domain.ErrInvalid.Error()+": ")
	} else {
		key = k
	}
	checkIdemKey(c, details)
	if merge(details, bad); len(details) > 0 {
		return validation(details)
	}
	return s.once(c, req, func(idem app.Idempotency) (reply, error) {
		k, replayed, w, err := s.app.AddSSHKey(c.Request().Context(), accountOf(c), req.Name, key, idem, meta(c))
		if err != nil {
			return reply{}, err
		}
		return reply{status: http.StatusCreated, body: map[string]any{"sshKey": sshKeyOf(k)}, written: w, replayed: replayed}, nil
	})
}

func (s *Server) sshKeys(c echo.Context) error {
	return renderList(c, "sshKeys", s.read.SSHKeys, sshKeyOf)
}

func (s *Server) deleteSSHKey(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	w, err := s.app.RemoveSSHKey(c.Request().Context(), accountOf(c), id, meta(c))
	if err != nil {
		return err
	}
	written(c, w)
	return c.JSON(http.StatusOK, map[string]bool{"ok": true})
}
