package domain

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// The server-limit raise the guide promises: an agent asks, an operator
// approves (the limit is raised) or denies, all as events on the account.

// Limit request statuses.
const (
	LimitPending  = "PENDING"
	LimitApproved = "APPROVED"
	LimitDenied   = "DENIED"
)

// MaxServerLimit bounds any account's limit.
const MaxServerLimit = 10000

// LimitRequest is an account's ask for a higher server limit.
type LimitRequest struct {
	ID          string    `json:"id"`
	ServerLimit int       `json:"serverLimit"`
	Reason      string    `json:"reason"`
	Status      string    `json:"status"`
	Note        string    `json:"note,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	DecidedAt   time.Time `json:"decidedAt"`
}

// Limit request events, on the account's stream.
type (
	// LimitRequested: the customer asked for a limit of ServerLimit.
	LimitRequested struct {
		RequestID   string    `json:"requestId"`
		ServerLimit int       `json:"serverLimit"`
		Reason      string    `json:"reason"`
		At          time.Time `json:"at"`
	}
	// LimitRequestDecided: an operator approved (a ServerLimitSet follows)
	// or denied it.
	LimitRequestDecided struct {
		RequestID string    `json:"requestId"`
		Approved  bool      `json:"approved"`
		Note      string    `json:"note,omitempty"`
		Actor     string    `json:"actor"`
		At        time.Time `json:"at"`
	}
)

func (LimitRequested) EventType() string            { return "LimitRequested" }
func (LimitRequestDecided) EventType() string       { return "LimitRequestDecided" }
func (e LimitRequested) OccurredAt() time.Time      { return e.At }
func (e LimitRequestDecided) OccurredAt() time.Time { return e.At }

// Limit request commands.
type (
	// RequestLimit asks for a higher limit.
	RequestLimit struct {
		RequestID   string
		ServerLimit int
		Reason      string
		Idem        Idem
	}
	// DecideLimitRequest approves or denies a pending request.
	DecideLimitRequest struct {
		RequestID string
		Approve   bool
		Note      string
		Actor     string
	}
)

func (RequestLimit) accountCommand()       {}
func (DecideLimitRequest) accountCommand() {}

// CheckLimitRequest is the rule for a new request: an account not on hold
// asks for more than it has, within MaxServerLimit, saying why, with no
// other request pending.
func (a Account) CheckLimitRequest(limit int, reason string) error {
	if err := a.CheckActive(); err != nil {
		return err
	}
	fields := map[string]string{}
	if limit <= a.ServerLimit || limit > MaxServerLimit {
		fields["serverLimit"] = fmt.Sprintf("more than your limit of %d, at most %d", a.ServerLimit, MaxServerLimit)
	}
	if r := strings.TrimSpace(reason); r == "" || utf8.RuneCountInString(reason) > 1000 || !utf8.ValidString(reason) {
		fields["reason"] = "what the servers are for, 1 to 1000 characters"
	}
	if len(fields) > 0 {
		return Invalid(fields)
	}
	for _, id := range a.LimitOrder {
		if r := a.LimitRequests[id]; r.Status == LimitPending {
			return stateError("limit request "+r.ID, r.Status, "wait for its decision before asking again")
		}
	}
	return nil
}

func (d *decision) requestLimit(c RequestLimit, now time.Time) error {
	// A retry is answered before the rules: the request it repeats is
	// pending now, which would refuse it.
	if err := d.s.CheckActive(); err != nil {
		return err
	}
	if err := d.keyed(c.Idem); err != nil {
		return err
	}
	if err := d.s.CheckLimitRequest(c.ServerLimit, c.Reason); err != nil {
		return err
	}
	if _, used := d.s.LimitRequests[c.RequestID]; used || c.RequestID == "" {
		return fmt.Errorf("%w: limit request id %q", ErrInvalid, c.RequestID)
	}
	d.emit(LimitRequested{RequestID: c.RequestID, ServerLimit: c.ServerLimit, Reason: c.Reason, At: now})
	d.claim(c.Idem, IdempotencyKeyUsed{Ref: c.RequestID}, now)
	return nil
}

func (d *decision) decideLimit(c DecideLimitRequest, now time.Time) error {
	r, ok := d.s.LimitRequests[c.RequestID]
	if !ok {
		return fmt.Errorf("limit request %s: %w", c.RequestID, ErrNotFound)
	}
	if r.Status != LimitPending {
		return stateError("limit request "+r.ID, r.Status, "it was decided already")
	}
	d.emit(LimitRequestDecided{RequestID: r.ID, Approved: c.Approve, Note: c.Note, Actor: c.Actor, At: now})
	if c.Approve && r.ServerLimit > d.s.ServerLimit {
		d.emit(ServerLimitSet{Limit: r.ServerLimit, Actor: c.Actor, At: now})
	}
	return nil
}

// evolveLimit folds a limit request event into the account.
func evolveLimit(a Account, e Event) Account {
	switch e := e.(type) {
	case LimitRequested:
		a.LimitRequests[e.RequestID] = LimitRequest{ID: e.RequestID, ServerLimit: e.ServerLimit, Reason: e.Reason,
			Status: LimitPending, CreatedAt: e.At}
		a.LimitOrder = append(a.LimitOrder, e.RequestID)
	case LimitRequestDecided:
		r := a.LimitRequests[e.RequestID]
		r.Status, r.Note, r.DecidedAt = LimitDenied, e.Note, e.At
		if e.Approved {
			r.Status = LimitApproved
		}
		a.LimitRequests[e.RequestID] = r
	}
	return a
}
