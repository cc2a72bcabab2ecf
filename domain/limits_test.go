package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

func TestALimitRequestIsApprovedOrDeniedOnce(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	events := s.then(domain.RequestLimit{RequestID: "r1", ServerLimit: 25, Reason: "a crawler fleet"}, t0)
	wantTypes(t, events, "LimitRequested")
	err := s.rejects(domain.RequestLimit{RequestID: "r2", ServerLimit: 30, Reason: "more"}, at(time.Minute))
	wantStateError(t, err)
	events = s.then(domain.DecideLimitRequest{RequestID: "r1", Approve: true, Actor: "ops"}, at(2*time.Minute))
	wantTypes(t, events, "LimitRequestDecided", "ServerLimitSet")
	wantEqual(t, "limit", s.state().ServerLimit, 25)
	wantEqual(t, "status", s.state().LimitRequests["r1"].Status, domain.LimitApproved)
	wantStateError(t, s.rejects(domain.DecideLimitRequest{RequestID: "r1", Approve: false, Actor: "ops"}, at(3*time.Minute)))

	s.then(domain.RequestLimit{RequestID: "r3", ServerLimit: 40, Reason: "even more"}, at(4*time.Minute))
	events = s.then(domain.DecideLimitRequest{RequestID: "r3", Approve: false, Note: "not now", Actor: "ops"}, at(5*time.Minute))
	wantTypes(t, events, "LimitRequestDecided")
	wantEqual(t, "limit after a denial", s.state().ServerLimit, 25)
	wantEqual(t, "note", s.state().LimitRequests["r3"].Note, "not now")
}

func TestALimitRequestMustAskForMoreAndSayWhy(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	for _, c := range []domain.RequestLimit{
		{RequestID: "a", ServerLimit: 10, Reason: "same as now"},
		{RequestID: "b", ServerLimit: 10001, Reason: "too many"},
		{RequestID: "c", ServerLimit: 20, Reason: "   "},
		{RequestID: "d", ServerLimit: 20, Reason: strings.Repeat("x", 1001)},
	} {
		wantErr(t, s.rejects(c, t0), domain.ErrInvalid)
	}
	wantErr(t, s.rejects(domain.DecideLimitRequest{RequestID: "nope", Approve: true}, t0), domain.ErrNotFound)
}
