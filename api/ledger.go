package api

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

type ledgerJSON struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"`
	Amount       string  `json:"amount"`
	BalanceAfter string  `json:"balanceAfter"`
	CreatedAt    string  `json:"createdAt"`
	ServerID     string  `json:"serverId,omitempty"`
	From         *string `json:"from,omitempty"`
	To           *string `json:"to,omitempty"`
	TopupID      string  `json:"topupId,omitempty"`
}

func ledgerOf(e projections.LedgerEntry) ledgerJSON {
	out := ledgerJSON{ID: e.TxID, Type: string(e.Kind), Amount: money(e.Amount), BalanceAfter: money(e.BalanceAfter),
		CreatedAt: stamp(e.CreatedAt), ServerID: e.ServerID, TopupID: e.TopupID}
	if e.From != nil && e.To != nil {
		from, to := stamp(*e.From), stamp(*e.To)
		out.From, out.To = &from, &to
	}
	return out
}

// Cursors are opaque to clients: the log position of the last transaction
// of a page, so pages stay stable while new transactions arrive.
func encodeCursor(p eventstore.Position) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%d", p.Commit, p.Prepare))
}

func decodeCursor(s string) (eventstore.Position, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return eventstore.Position{}, false
	}
	c, p, ok := strings.Cut(string(b), ".")
	if !ok {
		return eventstore.Position{}, false
	}
	commit, err1 := strconv.ParseUint(c, 10, 64)
	prepare, err2 := strconv.ParseUint(p, 10, 64)
	if err1 != nil || err2 != nil || (commit == 0 && prepare == 0) {
		return eventstore.Position{}, false
	}
	return eventstore.Position{Commit: commit, Prepare: prepare}, true
}

func (s *Server) ledger(c echo.Context) error {
	details := map[string]string{}
	limit := 50
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			details["limit"] = "an integer from 1 to 100"
		}
		limit = n
	}
	var before eventstore.Position
	if v := c.QueryParam("cursor"); v != "" {
		p, ok := decodeCursor(v)
		if !ok {
			details["cursor"] = "not a cursor this API returned"
		}
		before = p
	}
	if len(details) > 0 {
		return validation(details)
	}
	// One more than asked tells whether there is a next page.
	entries, err := s.read.Ledger(c.Request().Context(), accountOf(c), before, limit+1)
	if err != nil {
		return err
	}
	var next *string
	if len(entries) > limit {
		entries = entries[:limit]
		cur := encodeCursor(entries[limit-1].Position)
		next = &cur
	}
	out := make([]ledgerJSON, len(entries))
	for i, e := range entries {
		out[i] = ledgerOf(e)
	}
	return c.JSON(http.StatusOK, map[string]any{"transactions": out, "nextCursor": next})
}
