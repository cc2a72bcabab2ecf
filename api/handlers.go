package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	gojson "github.com/goccy/go-json"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/projections"
)

var labelPattern = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

const maxLabel = 64

func checkLabel(details map[string]string, field, label string) {
	switch {
	case label == "":
		details[field] = "required"
	case len(label) > maxLabel:
		details[field] = fmt.Sprintf("at most %d characters", maxLabel)
	case !labelPattern.MatchString(label):
		details[field] = "must match ^[a-zA-Z0-9._-]+$"
	}
}

func (s *Server) health(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "sandbox": s.sandbox != nil, "now": stamp(s.app.Clock.Now())})
}

func (s *Server) plans(c echo.Context) error {
	type planJSON struct {
		ID           string `json:"id"`
		Name         string `json:"name"`
		VCPUs        int    `json:"vcpus"`
		RAMGB        int    `json:"ramGb"`
		DiskGB       int    `json:"diskGb"`
		MonthlyPrice string `json:"monthlyPrice"`
		HourlyPrice  string `json:"hourlyPrice"`
		// AvailableIn lists the regions the plan can be deployed in now.
		AvailableIn []string `json:"availableIn"`
	}
	avail, err := s.app.Availability(c.Request().Context())
	if err != nil {
		return err
	}
	var out []planJSON
	for _, p := range s.app.Catalog.Plans {
		in := []string{}
		for _, r := range s.app.Catalog.Regions {
			if slices.Contains(avail[r.ID], p.ID) {
				in = append(in, r.ID)
			}
		}
		out = append(out, planJSON{p.ID, p.Name, p.VCPUs, p.RAMGB, p.DiskGB, money(p.MonthlyPrice), money(p.HourlyPrice), in})
	}
	return c.JSON(http.StatusOK, map[string]any{"plans": out})
}

type regionJSON struct {
	domain.Region
	// AvailablePlans can be deployed in the region now.
	AvailablePlans []string `json:"availablePlans"`
}

func (s *Server) regions(c echo.Context) error {
	avail, err := s.app.Availability(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]regionJSON, len(s.app.Catalog.Regions))
	for i, r := range s.app.Catalog.Regions {
		out[i] = regionJSON{Region: r, AvailablePlans: avail[r.ID]}
		if out[i].AvailablePlans == nil {
			out[i].AvailablePlans = []string{}
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"regions": out})
}

type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *Server) authAnswer(c echo.Context, status int, who app.Authenticated) error {
	tok, err := s.tokens.issue(who.AccountID, who.TokenVersion)
	if err != nil {
		return err
	}
	acct, err := s.read.Account(c.Request().Context(), who.AccountID)
	if err != nil {
		return err
	}
	u, err := s.user(c.Request().Context(), acct)
	if err != nil {
		return err
	}
	return c.JSON(status, map[string]any{
		"accessToken": tok, "tokenType": "Bearer", "expiresIn": int(s.cfg.TokenTTL.Seconds()), "user": u,
	})
}

func (s *Server) register(c echo.Context) error {
	var req credentials
	if err := bind(c, &req); err != nil {
		return err
	}
	details := map[string]string{}
	if req.Email == "" {
		details["email"] = "required"
	}
	if req.Password == "" {
		details["password"] = "required"
	}
	if len(details) > 0 {
		return validation(details)
	}
	id, w, err := s.app.Register(c.Request().Context(), req.Email, req.Password, meta(c))
	if err != nil {
		return err
	}
	written(c, w)
	return s.authAnswer(c, http.StatusCreated, app.Authenticated{AccountID: id})
}

func (s *Server) login(c echo.Context) error {
	var req credentials
	if err := bind(c, &req); err != nil {
		return err
	}
	who, err := s.app.Login(c.Request().Context(), req.Email, req.Password)
	if err != nil {
		return err
	}
	return s.authAnswer(c, http.StatusOK, who)
}

type passwordChange struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// changePassword replaces the password and answers like a login, with a
// token at the new version: every token issued before is void.
func (s *Server) changePassword(c echo.Context) error {
	var req passwordChange
	if err := bind(c, &req); err != nil {
		return err
	}
	who, w, err := s.app.ChangePassword(c.Request().Context(), accountOf(c), req.CurrentPassword, req.NewPassword, meta(c))
	if err != nil {
		return err
	}
	written(c, w)
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return s.authAnswer(c, http.StatusOK, who)
}

func (s *Server) me(c echo.Context) error {
	acct, err := s.read.Account(c.Request().Context(), accountOf(c))
	if err != nil {
		return err
	}
	u, err := s.user(c.Request().Context(), acct)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"user": u})
}

// forgetMe forgets the caller's account (DELETE /auth/me): only with no
// live server, and no money left unless ?forfeitBalance=true gives it up.
// The answer is the last one its tokens get.
func (s *Server) forgetMe(c echo.Context) error {
	forfeit := false
	if v, ok := c.QueryParams()["forfeitBalance"]; ok {
		if len(v) != 1 || (v[0] != "true" && v[0] != "false") {
			return validation(map[string]string{"forfeitBalance": "true or false"})
		}
		forfeit = v[0] == "true"
	}
	f, err := s.app.Forget(c.Request().Context(), accountOf(c), forfeit, meta(c))
	if err != nil {
		return err
	}
	written(c, f.Written)
	return c.JSON(http.StatusOK, map[string]any{"forgotten": true, "id": f.AccountID, "forfeitedBalance": money(f.Forfeited)})
}

func (s *Server) billing(c echo.Context) error {
	b, err := s.read.Billing(c.Request().Context(), accountOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, billingOf(b))
}

// pathID is the :id parameter if it is a well-formed id; anything else
// cannot name a resource, so it is a 404 like any unknown id.
func pathID(c echo.Context) (string, error) {
	id := c.Param("id")
	if !canonicalUUID(id) {
		return "", apiError(http.StatusNotFound, "not_found", "not found")
	}
	return id, nil
}

// canonicalUUID says whether s is a UUID in its canonical form (lower-case
// hex, 8-4-4-4-12), the only form our ids take; checked in place, as every
// request with an id in its path does.
func canonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			return false
		}
	}
	return true
}

func (s *Server) servers(c echo.Context) error {
	return renderList(c, "servers", s.read.Servers, serverOf)
}

func (s *Server) server(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	want, timeout, err := waitQuery(c, serverStatuses)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var v projections.ServerView
	if len(want) == 0 {
		v, err = s.read.Server(ctx, accountOf(c), id)
	} else {
		v, err = longPoll(ctx, s, want, timeout,
			func(ctx context.Context) (projections.ServerView, error) { return s.read.Server(ctx, accountOf(c), id) },
			func(v projections.ServerView) string { return string(v.Status) })
	}
	if err != nil {
		return err
	}
	out := serverDetailJSON{serverJSON: serverOf(v)}
	// The read model says whether a password waits to be shown; only then
	// is the log consulted, to show it once.
	if !v.RootPasswordUntil.IsZero() && s.app.Now(accountOf(c)).Before(v.RootPasswordUntil) {
		pw, ok, err := s.app.RevealRootPassword(ctx, accountOf(c), id, meta(c))
		if err != nil {
			return err
		}
		if ok {
			out.RootPassword = &pw
			c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
		}
	}
	return writeJSON(c, http.StatusOK, struct {
		Server serverDetailJSON `json:"server"`
	}{out})
}

// writeJSON answers v, encoded at once: the reads every agent repeats use
// it (Echo's c.JSON looks for ?pretty and streams through an encoder).
func writeJSON(c echo.Context, status int, v any) error {
	b, err := gojson.Marshal(v)
	if err != nil {
		return err
	}
	return c.JSONBlob(status, b)
}

// renderList answers with the account's list of one kind, each rendered.
func renderList[V, J any](c echo.Context, key string, list func(context.Context, string) ([]V, error), render func(V) J) error {
	vs, err := list(c.Request().Context(), accountOf(c))
	if err != nil {
		return err
	}
	out := make([]J, len(vs))
	for i, v := range vs {
		out[i] = render(v)
	}
	return c.JSON(http.StatusOK, map[string]any{key: out})
}

type deployRequest struct {
	Label     string   `json:"label"`
	PlanID    string   `json:"planId"`
	RegionID  string   `json:"regionId"`
	SSHKeys   []string `json:"sshKeys,omitempty"`
	SSHKeyIDs []string `json:"sshKeyIds,omitempty"`
}

type bulkRequest struct {
	Label     string   `json:"label"`
	Count     int      `json:"count"`
	PlanID    string   `json:"planId"`
	RegionID  string   `json:"regionId"`
	SSHKeys   []string `json:"sshKeys,omitempty"`
	SSHKeyIDs []string `json:"sshKeyIds,omitempty"`
}

// keysRequest is how a deploy or a restore names the keys to install.
type keysRequest struct {
	SSHKeys   []string `json:"sshKeys,omitempty"`
	SSHKeyIDs []string `json:"sshKeyIds,omitempty"`
}

// checkKeyIDs checks the shape of stored key ids; whether they exist is the
// account's to say.
func checkKeyIDs(details map[string]string, ids []string) {
	if len(ids) > maxSSHKeys {
		details["sshKeyIds"] = fmt.Sprintf("at most %d keys", maxSSHKeys)
		return
	}
	for i, id := range ids {
		if _, err := uuid.Parse(id); err != nil {
			details[fmt.Sprintf("sshKeyIds[%d]", i)] = "a key id from GET /ssh-keys"
		}
	}
}

const maxSSHKeys = 10

// checkServer checks the shape of the fields a deploy and a bulk deploy
// share. Whether the plan and region exist is the catalog's rule (domain):
// it is asked here too, so that one 400 names every bad field at once.
func (s *Server) checkServer(details map[string]string, plan, region string, keys []string) []domain.SSHKey {
	if plan == "" {
		details["planId"] = "required"
	}
	if region == "" {
		details["regionId"] = "required"
	}
	var de *domain.Error
	if _, err := s.app.Catalog.Spec(plan, region); len(details) > 0 && errors.As(err, &de) {
		for field, problem := range de.Fields {
			if _, known := details[field]; !known {
				details[field] = problem
			}
		}
	}
	return parseKeys(details, keys)
}

// invalidServer is the 400 of a deploy with problems of shape: it names
// too what only the account and the cloud can say (stored key ids that do
// not exist, a plan sold out in the region), so one 400 names everything.
// A request with problems of shape can be no retry of an accepted one.
func (s *Server) invalidServer(c echo.Context, details map[string]string, plan, region string, keyIDs []string) error {
	ctx := c.Request().Context()
	s.app.Problems(ctx, accountOf(c), details, func(a domain.Account) error {
		_, err := a.DeployKeys(nil, keyIDs)
		return err
	})
	_, badPlan := details["planId"]
	_, badRegion := details["regionId"]
	if !badPlan && !badRegion {
		_, err := s.app.Catalog.Spec(plan, region)
		if err == nil {
			err = s.app.CheckAvailable(ctx, plan, region)
		}
		var de *domain.Error
		if errors.As(err, &de) {
			for f, p := range de.Fields {
				details[f] = p
			}
		}
	}
	return validation(details)
}

// parseKeys checks inline public keys, one detail per bad key, and drops
// repeats.
func parseKeys(details map[string]string, keys []string) []domain.SSHKey {
	if len(keys) > maxSSHKeys {
		details["sshKeys"] = fmt.Sprintf("at most %d keys", maxSSHKeys)
		return nil
	}
	var parsed []domain.SSHKey
	for i, k := range keys {
		key, err := domain.ParseSSHKey(k)
		if err != nil {
			details[fmt.Sprintf("sshKeys[%d]", i)] = strings.TrimPrefix(err.Error(), domain.ErrInvalid.Error()+": ")
			continue
		}
		if !slices.ContainsFunc(parsed, func(p domain.SSHKey) bool { return p.Fingerprint == key.Fingerprint }) {
			parsed = append(parsed, key)
		}
	}
	return parsed
}

func (s *Server) deploy(c echo.Context) error {
	var req deployRequest
	bad, err := bindAll(c, &req)
	if err != nil {
		return err
	}
	details := map[string]string{}
	checkLabel(details, "label", req.Label)
	keys := s.checkServer(details, req.PlanID, req.RegionID, req.SSHKeys)
	checkKeyIDs(details, req.SSHKeyIDs)
	checkIdemKey(c, details)
	if merge(details, bad); len(details) > 0 {
		return s.invalidServer(c, details, req.PlanID, req.RegionID, req.SSHKeyIDs)
	}
	return s.once(c, req, func(idem app.Idempotency) (reply, error) {
		res, err := s.app.Deploy(c.Request().Context(), accountOf(c),
			[]app.ServerRequest{{Label: req.Label, Plan: req.PlanID, Region: req.RegionID, SSHKeys: keys, SSHKeyIDs: req.SSHKeyIDs}}, false, idem, meta(c))
		if err != nil {
			return reply{}, err
		}
		return s.acceptedReply(res, false), nil
	})
}

func (s *Server) deployBulk(c echo.Context) error {
	var req bulkRequest
	bad, err := bindAll(c, &req)
	if err != nil {
		return err
	}
	details := map[string]string{}
	if req.Count < 1 || req.Count > 10 {
		details["count"] = "must be between 1 and 10"
	}
	checkLabel(details, "label", req.Label)
	if _, bad := details["label"]; !bad && req.Count >= 1 && req.Count <= 10 {
		checkLabel(details, "label", fmt.Sprintf("%s-%d", req.Label, req.Count))
		if _, bad := details["label"]; bad {
			details["label"] = fmt.Sprintf("with the -%d suffix the label must be at most %d characters", req.Count, maxLabel)
		}
	}
	keys := s.checkServer(details, req.PlanID, req.RegionID, req.SSHKeys)
	checkKeyIDs(details, req.SSHKeyIDs)
	checkIdemKey(c, details)
	if merge(details, bad); len(details) > 0 {
		return s.invalidServer(c, details, req.PlanID, req.RegionID, req.SSHKeyIDs)
	}
	return s.once(c, req, func(idem app.Idempotency) (reply, error) {
		reqs := make([]app.ServerRequest, req.Count)
		for i := range reqs {
			reqs[i] = app.ServerRequest{Label: fmt.Sprintf("%s-%d", req.Label, i+1), Plan: req.PlanID, Region: req.RegionID,
				SSHKeys: keys, SSHKeyIDs: req.SSHKeyIDs}
		}
		res, err := s.app.Deploy(c.Request().Context(), accountOf(c), reqs, true, idem, meta(c))
		if err != nil {
			return reply{}, err
		}
		return s.acceptedReply(res, true), nil
	})
}

// acceptedReply is the 202 of a deploy (bulk: of several): its servers as
// the deploy decided them, and where to look at the first.
func (s *Server) acceptedReply(res app.Deployed, bulk bool) reply {
	out := make([]serverJSON, len(res.Servers))
	for i, srv := range res.Servers {
		out[i] = acceptedServer(srv)
	}
	r := reply{status: http.StatusAccepted, location: "/servers/" + out[0].ID, retryAfter: s.cfg.Expected.Provision,
		written: res.Written, replayed: res.Replayed}
	if bulk {
		r.body = map[string]any{"servers": out}
	} else {
		r.body = map[string]any{"server": out[0]}
	}
	return r
}

func (s *Server) destroy(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	w, err := s.app.Destroy(c.Request().Context(), accountOf(c), id, meta(c))
	if err != nil {
		return err
	}
	written(c, w)
	accepted202(c, "/servers/"+id, s.cfg.Expected.Destroy)
	return c.JSON(http.StatusAccepted, map[string]bool{"ok": true})
}

type topupRequest struct {
	Amount   string `json:"amount"`
	Currency string `json:"currency"`
}

func (s *Server) createTopup(c echo.Context) error {
	var req topupRequest
	bad, err := bindAll(c, &req)
	if err != nil {
		return err
	}
	details := map[string]string{}
	amount, err := domain.ParseMoney(req.Amount)
	if err != nil {
		details["amount"] = fmt.Sprintf("a decimal string from %s to %s with at most 2 decimals, like \"25.00\"", money(domain.MinTopup), money(domain.MaxTopup))
		amount = domain.MinTopup // only to ask the other rules
	}
	if err := domain.CheckCurrencySpelling(req.Currency); err != nil {
		details["currency"] = err.(*domain.Error).Fields["currency"]
	}
	checkIdemKey(c, details)
	if merge(details, bad); len(details) > 0 {
		s.app.Problems(c.Request().Context(), accountOf(c), details, func(a domain.Account) error {
			return a.CheckTopupRequest(amount, domain.PaymentMethodID(req.Currency))
		})
		return validation(details)
	}
	return s.once(c, req, func(idem app.Idempotency) (reply, error) {
		ctx := c.Request().Context()
		res, err := s.app.CreateTopup(ctx, accountOf(c), amount, req.Currency, idem, meta(c))
		if err != nil {
			return reply{}, err
		}
		t, err := s.read.Topup(ctx, accountOf(c), res.Topup.ID)
		if err != nil {
			return reply{}, err
		}
		return reply{status: http.StatusCreated, body: map[string]any{"topup": topupOf(t)},
			written: res.Written, replayed: res.Replayed}, nil
	})
}

func (s *Server) topups(c echo.Context) error {
	return renderList(c, "topups", s.read.Topups, topupOf)
}

func (s *Server) topup(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	// A top-up waits for a payment: a long-poll instead of a poll.
	want, timeout, err := waitQuery(c, topupStatuses)
	if err != nil {
		return err
	}
	t, err := longPoll(c.Request().Context(), s, want, timeout,
		func(ctx context.Context) (projections.TopupView, error) { return s.read.Topup(ctx, accountOf(c), id) },
		func(t projections.TopupView) string { return t.Status })
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"topup": topupOf(t)})
}

func (s *Server) payTopup(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	details := map[string]string{}
	checkIdemKey(c, details)
	if len(details) > 0 {
		return validation(details)
	}
	return s.once(c, struct{}{}, func(idem app.Idempotency) (reply, error) {
		ctx := c.Request().Context()
		res, err := s.app.PayTopup(ctx, accountOf(c), id, idem, meta(c))
		if err != nil {
			return reply{}, err
		}
		t, err := s.read.Topup(ctx, accountOf(c), id)
		if err != nil {
			return reply{}, err
		}
		return reply{status: http.StatusOK, body: map[string]any{"topup": topupOf(t)}, written: res.Written, replayed: res.Replayed}, nil
	})
}
