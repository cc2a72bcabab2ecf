package domain_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

func TestChangePasswordRecordsNoHashAndMovesTheTokenVersionOn(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	wantEqual(t, "version at registration", s.state().TokenVersion, 0)
	events := s.then(domain.ChangePassword{FromVersion: 0, CredentialRef: "ref-0"}, at(time.Minute))
	wantTypes(t, events, "PasswordChanged")
	wantTime(t, "at", as[domain.PasswordChanged](t, events[0]).At, at(time.Minute))
	wantEqual(t, "the new hash's ref", as[domain.PasswordChanged](t, events[0]).CredentialRef, "ref-0")
	wantEqual(t, "state's ref", s.state().CredentialRef, "ref-0")
	wantErr(t, s.rejects(domain.ChangePassword{FromVersion: 1}, at(time.Minute)), domain.ErrInvalid)
	wantStateError(t, s.rejects(domain.ChangePassword{FromVersion: 0, CredentialRef: "ref-0"}, at(2*time.Minute)))
	s.then(domain.ChangePassword{FromVersion: 1, CredentialRef: "ref-1"}, at(2*time.Minute))
	wantEqual(t, "version after two changes", s.state().TokenVersion, 2)
	// A hold does not stop a password change: it takes access away.
	s.then(domain.Suspend{Reason: "abuse", Actor: "ops"}, at(3*time.Minute))
	s.then(domain.ChangePassword{FromVersion: 2, CredentialRef: "ref-2"}, at(4*time.Minute))
	wantEqual(t, "version on hold", s.state().TokenVersion, 3)
}

func TestCreateAPIKeyRecordsItsNameAndNothingSecret(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	events := s.then(domain.CreateAPIKey{KeyID: "k1", Name: "ci runner"}, at(time.Minute))
	wantTypes(t, events, "APIKeyCreated")
	e := as[domain.APIKeyCreated](t, events[0])
	wantEqual(t, "id", e.KeyID, "k1")
	wantEqual(t, "name", e.Name, "ci runner")
	k := s.state().APIKeys["k1"]
	wantEqual(t, "state name", k.Name, "ci runner")
	wantTime(t, "created", k.CreatedAt, at(time.Minute))
	wantEqual(t, "order", strings.Join(s.state().APIKeyOrder, ","), "k1")

	s.then(domain.DeleteAPIKey{KeyID: "k1"}, at(2*time.Minute))
	if _, ok := s.state().APIKeys["k1"]; ok || len(s.state().APIKeyOrder) != 0 {
		t.Fatalf("deleted key still there: %+v", s.state().APIKeys)
	}
	wantErr(t, s.rejects(domain.DeleteAPIKey{KeyID: "k1"}, at(3*time.Minute)), domain.ErrNotFound)
}

func TestCreateAPIKeyRefusesBadNamesAndMoreThanTheBound(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	for _, name := range []string{"", "   ", strings.Repeat("x", 65), "a\x00b", "tab\there", "\xff"} {
		err := s.rejects(domain.CreateAPIKey{KeyID: "bad", Name: name}, t0)
		var de *domain.Error
		if !errors.As(err, &de) || de.Fields["name"] == "" {
			t.Errorf("name %q: want a 400 naming name, got %v", name, err)
		}
	}
	for i := range domain.MaxAPIKeys {
		s.then(domain.CreateAPIKey{KeyID: fmt.Sprintf("k%d", i), Name: "agent"}, t0)
	}
	err := s.rejects(domain.CreateAPIKey{KeyID: "one-more", Name: "agent"}, t0)
	wantErr(t, err, domain.ErrInvalid)
	wantContains(t, err.Error()+fmt.Sprint(err.(*domain.Error).Fields), "at most 10")
	s.then(domain.DeleteAPIKey{KeyID: "k3"}, t0)
	s.then(domain.CreateAPIKey{KeyID: "one-more", Name: "agent"}, t0)
	wantErr(t, s.rejects(domain.CreateAPIKey{KeyID: "one-more", Name: "again"}, t0), domain.ErrInvalid)
}

func TestAnAccountOnHoldCannotCreateAKeyButCanDeleteOne(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	s.then(domain.CreateAPIKey{KeyID: "k1", Name: "agent"}, t0)
	s.then(domain.Suspend{Reason: "abuse", Actor: "ops"}, t0)
	wantErr(t, s.rejects(domain.CreateAPIKey{KeyID: "k2", Name: "agent"}, t0), domain.ErrAccountSuspended)
	s.then(domain.DeleteAPIKey{KeyID: "k1"}, t0)
}

func TestCreateAPIKeyWithAnIdempotencyKeyReplaysWithinTheWindow(t *testing.T) {
	t.Parallel()
	s := registered(t, "5.00")
	events := s.then(domain.CreateAPIKey{KeyID: "k1", Name: "agent", Idem: idem("idem", "h", t0)}, t0)
	wantTypes(t, events, "APIKeyCreated", "IdempotencyKeyUsed")
	wantEqual(t, "the claim names the key", as[domain.IdempotencyKeyUsed](t, events[1]).Ref, "k1")
	if r := replayOf(t, s.rejects(domain.CreateAPIKey{KeyID: "k2", Name: "agent", Idem: idem("idem", "h", at(time.Hour))}, at(time.Hour))); r.Ref != "k1" {
		t.Fatalf("want a replay of k1, got %+v", r)
	}
	wantErr(t, s.rejects(domain.CreateAPIKey{KeyID: "k2", Name: "other", Idem: idem("idem", "h2", at(time.Hour))}, at(time.Hour)),
		domain.ErrIdempotencyMismatch)
	// One key space per account: a deploy cannot reuse it, nor an API key a
	// deploy's.
	wantErr(t, s.rejects(domain.Deploy{Servers: []domain.ServerSpec{serverSpec("a", micro)}, Idem: idem("idem", "deploy", at(time.Hour))}, at(time.Hour)),
		domain.ErrIdempotencyMismatch)
	s.then(domain.Deploy{Servers: []domain.ServerSpec{serverSpec("a", micro)}, Idem: idem("deploy-key", "deploy", at(time.Hour))}, at(time.Hour))
	wantErr(t, s.rejects(domain.CreateAPIKey{KeyID: "k3", Name: "agent", Idem: idem("deploy-key", "h", at(time.Hour))}, at(time.Hour)),
		domain.ErrIdempotencyMismatch)
	// A retry of a deleted key's creation is still a replay: the
	// application says the key is gone.
	s.then(domain.DeleteAPIKey{KeyID: "k1"}, at(2*time.Hour))
	if r := replayOf(t, s.rejects(domain.CreateAPIKey{KeyID: "k2", Name: "agent", Idem: idem("idem", "h", at(2*time.Hour))}, at(2*time.Hour))); r.Ref != "k1" {
		t.Fatalf("want a replay of k1, got %+v", r)
	}
	// After the window (of real time) the key is free again.
	s.then(domain.CreateAPIKey{KeyID: "k2", Name: "agent", Idem: idem("idem", "h", t0.Add(domain.IdempotencyWindow+time.Hour))}, at(3*time.Hour))
}

func TestCheckPasswordAppliesTheRules(t *testing.T) {
	t.Parallel()
	for _, pw := range []string{"correct horse battery", "password-123", "Tr0ub4dor&3x", strings.Repeat("é", 8),
		strings.Repeat("x", 256), "  spaced out  "} {
		if err := domain.CheckPassword("password", pw); err != nil {
			t.Errorf("%q refused: %v", pw, err)
		}
	}
	for pw, why := range map[string]string{
		"":                                 "8 to 256",
		"1234567":                          "8 to 256",
		strings.Repeat("x", 257):           "8 to 256",
		"        ":                         "only spaces",
		"\t\n\r \t\n\r ":                   "only spaces",
		"\x00\x01\x02\x03\x04\x05\x06\x07": "only spaces",
		"\u00a0\u2003\u3000\u00a0\u2003\u3000\u00a0\u2003": "only spaces",
		"password":                         "common",
		"PASSWORD1":                        "common",
		"Password123":                      "common",
		"qwertyuiop":                       "common",
		"iloveyou":                         "common",
		"12345678":                         "common",
		"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8": "UTF-8",
	} {
		err := domain.CheckPassword("newPassword", pw)
		var de *domain.Error
		if !errors.As(err, &de) || !strings.Contains(de.Fields["newPassword"], why) {
			t.Errorf("%q: want a 400 on newPassword saying %q, got %v", pw, why, err)
		}
	}
}
