package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
)

type limitRequestJSON struct {
	ID          string  `json:"id"`
	ServerLimit int     `json:"serverLimit"`
	Reason      string  `json:"reason"`
	Status      string  `json:"status"`
	Note        *string `json:"note"`
	CreatedAt   string  `json:"createdAt"`
	DecidedAt   *string `json:"decidedAt"`
}

func limitRequestOf(r domain.LimitRequest) limitRequestJSON {
	out := limitRequestJSON{ID: r.ID, ServerLimit: r.ServerLimit, Reason: r.Reason, Status: r.Status, CreatedAt: stamp(r.CreatedAt)}
	if r.Note != "" {
		n := r.Note
		out.Note = &n
	}
	if !r.DecidedAt.IsZero() {
		d := stamp(r.DecidedAt)
		out.DecidedAt = &d
	}
	return out
}

type newLimitRequest struct {
	ServerLimit *int   `json:"serverLimit"`
	Reason      string `json:"reason"`
}

func (s *Server) createLimitRequest(c echo.Context) error {
	var req newLimitRequest
	bad, err := bindAll(c, &req)
	if err != nil {
		return err
	}
	details := map[string]string{}
	limit := 0
	if req.ServerLimit == nil {
		details["serverLimit"] = "required: the limit you need"
	} else {
		limit = *req.ServerLimit
	}
	checkIdemKey(c, details)
	if merge(details, bad); len(details) > 0 {
		// The account's rules (the limit it has, the reason) are asked
		// too: one 400 names everything. A request with these problems
		// can be no retry of an accepted one.
		s.app.Problems(c.Request().Context(), accountOf(c), details, func(a domain.Account) error {
			return a.CheckLimitRequest(limit, req.Reason)
		})
		return validation(details)
	}
	return s.once(c, req, func(idem app.Idempotency) (reply, error) {
		r, replayed, w, err := s.app.RequestLimit(c.Request().Context(), accountOf(c), *req.ServerLimit, req.Reason, idem, meta(c))
		if err != nil {
			return reply{}, err
		}
		return reply{status: http.StatusCreated, body: map[string]any{"limitRequest": limitRequestOf(r)}, written: w, replayed: replayed}, nil
	})
}

func (s *Server) limitRequests(c echo.Context) error {
	return renderList(c, "limitRequests", s.read.LimitRequests, limitRequestOf)
}

// Operators decide requests through the admin API.

type decisionRequest struct {
	Note string `json:"note"`
}

func (s *Server) adminDecideLimit(approve bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req decisionRequest
		if err := bind(c, &req); err != nil {
			return err
		}
		if len(req.Note) > 500 {
			return validation(map[string]string{"note": "at most 500 characters"})
		}
		id, err := pathID(c)
		if err != nil {
			return err
		}
		st, err := s.app.AdminCommand(c.Request().Context(), who(c),
			domain.DecideLimitRequest{RequestID: id, Approve: approve, Note: req.Note, Actor: "operator"}, operatorMeta(c))
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"limitRequest": limitRequestOf(st.LimitRequests[id]), "serverLimit": st.ServerLimit})
	}
}

func (s *Server) adminPendingLimits(c echo.Context) error {
	list, err := s.read.PendingLimitRequests(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]map[string]any, len(list))
	for i, p := range list {
		email, err := s.app.EmailOf(c.Request().Context(), p.AccountID, p.Email, false)
		if err != nil {
			return err
		}
		out[i] = map[string]any{"accountId": p.AccountID, "email": email, "serverLimit": p.Current,
			"limitRequest": limitRequestOf(p.Request)}
	}
	return c.JSON(http.StatusOK, map[string]any{"pending": out})
}

//go:embed custom-requests.html
var customRequestsPage []byte

// customRequestsCSP lets the page use its own inline style, nothing else.
var customRequestsCSP = "default-src 'none'; style-src " + inlineHashes(string(customRequestsPage), "<style>", "</style>") +
	"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// customRequests is the page the server-limit 403 sends agents to.
func (s *Server) customRequests(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", customRequestsCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	return c.HTMLBlob(http.StatusOK, customRequestsPage)
}
