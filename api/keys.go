package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

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
	if err := bind(c, &req); err != nil {
		return err
	}
	details := map[string]string{}
	if req.Name == "" {
		details["name"] = "required"
	}
	if req.PublicKey == "" {
		details["publicKey"] = "required: an OpenSSH public key line"
	}
	if len(details) > 0 {
		return validation(details)
	}
	k, w, err := s.app.AddSSHKey(c.Request().Context(), accountOf(c), req.Name, req.PublicKey, meta(c))
	if err != nil {
		return err
	}
	written(c, w)
	return c.JSON(http.StatusCreated, map[string]any{"sshKey": sshKeyOf(k)})
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
