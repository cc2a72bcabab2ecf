package api

import (
	"errors"
	"maps"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
)

type apiKeyJSON struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	CreatedAt  string  `json:"createdAt"`
	LastUsedAt *string `json:"lastUsedAt"`
}

func apiKeyOf(k domain.APIKey, lastUsed time.Time) apiKeyJSON {
	out := apiKeyJSON{ID: k.ID, Name: k.Name, CreatedAt: stamp(k.CreatedAt)}
	if !lastUsed.IsZero() {
		at := stamp(lastUsed)
		out.LastUsedAt = &at
	}
	return out
}

type newAPIKey struct {
	Name string `json:"name"`
}

// createAPIKey makes a key and shows it, this once (and to a retry with the
// same Idempotency-Key, as every create does). Its answer is not kept in the
// log like other keyed answers: it shows a credential, which the credential
// store keeps (sealed, for the replay window) instead.
func (s *Server) createAPIKey(c echo.Context) error {
	var req newAPIKey
	bad, err := bindAll(c, &req)
	if err != nil {
		return err
	}
	// Every problem of the request in one answer: the body's, the name's
	// and the Idempotency-Key's.
	details := map[string]string{}
	var de *domain.Error
	if _, wrong := bad["name"]; !wrong {
		if err := domain.CheckAPIKeyName(req.Name); errors.As(err, &de) {
			maps.Copy(details, de.Fields)
		}
	}
	checkIdemKey(c, details)
	if merge(details, bad); len(details) > 0 {
		return validation(details)
	}
	return s.once(c, req, func(idem app.Idempotency) (reply, error) {
		k, err := s.app.CreateAPIKey(c.Request().Context(), accountOf(c), req.Name, idem, meta(c))
		if err != nil {
			return reply{}, err
		}
		return reply{status: http.StatusCreated, body: map[string]any{"apiKey": apiKeyOf(k.Key, time.Time{}), "key": k.Secret},
			written: k.Written, replayed: k.Replayed, secret: true, credential: true}, nil
	})
}

// apiKeys lists the account's keys with when each was last used (the log
// says which exist; the credential store when they were used).
func (s *Server) apiKeys(c echo.Context) error {
	ctx := c.Request().Context()
	keys, err := s.read.APIKeys(ctx, accountOf(c))
	if err != nil {
		return err
	}
	used, err := s.app.APIKeyUses(ctx, accountOf(c))
	if err != nil {
		return err
	}
	out := make([]apiKeyJSON, len(keys))
	for i, k := range keys {
		out[i] = apiKeyOf(k, used[k.ID])
	}
	return c.JSON(http.StatusOK, map[string]any{"apiKeys": out})
}

// deleteAPIKey ends a key at once.
func (s *Server) deleteAPIKey(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	w, err := s.app.DeleteAPIKey(c.Request().Context(), accountOf(c), id, meta(c))
	if err != nil {
		return err
	}
	written(c, w)
	return c.JSON(http.StatusOK, map[string]bool{"ok": true})
}
