package domain_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

func replayOf(t *testing.T, err error) domain.IdempotencyRecord {
	t.Helper()
	var replay *domain.ReplayError
	if !errors.As(err, &replay) {
		t.Fatalf("error = %v, want a replay", err)
	}
	return replay.IdempotencyRecord
}

func TestAClaimNamesWhatItIsForAndARetryFindsIt(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	events := s.then(domain.ClaimIdempotencyKey{Idem: idem("k", "h", t0), Ref: "backup-1"}, at(time.Hour))
	wantTypes(t, events, "IdempotencyKeyUsed")
	used := as[domain.IdempotencyKeyUsed](t, events[0])
	wantEqual(t, "ref", used.Ref, "backup-1")
	wantTime(t, "wall", used.WallAt, t0)
	wantTime(t, "at", used.At, at(time.Hour))
	r := replayOf(t, s.rejects(domain.ClaimIdempotencyKey{Idem: idem("k", "h", at(time.Minute)), Ref: "backup-2"}, at(time.Hour)))
	wantEqual(t, "replayed ref", r.Ref, "backup-1")
	wantErr(t, s.rejects(domain.ClaimIdempotencyKey{Idem: idem("k", "other", at(time.Minute)), Ref: "backup-2"}, at(time.Hour)),
		domain.ErrIdempotencyMismatch)
	wantErr(t, s.rejects(domain.ClaimIdempotencyKey{Idem: idem("k2", "h", t0)}, t0), domain.ErrInvalid)
}

func TestTheFirstAnswerIsKeptOnceAndOnlyForTheRequestThatClaimedTheKey(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	s.then(domain.ClaimIdempotencyKey{Idem: idem("k", "h", t0), Ref: "x"}, t0)
	first := domain.IdemAnswer{Status: 201, Body: `{"a":1}`, Location: "/x", RetryAfter: 60}
	wantTypes(t, s.then(domain.RecordIdempotentAnswer{Idem: idem("k", "h", t0), Answer: first}, t0), "IdempotencyAnswerRecorded")
	// A second answer, another request's, an unknown key: nothing.
	for _, c := range []domain.RecordIdempotentAnswer{
		{Idem: idem("k", "h", t0), Answer: domain.IdemAnswer{Status: 201, Body: `{"a":2}`}},
		{Idem: idem("k", "other", t0), Answer: domain.IdemAnswer{Status: 201, Body: `{"a":3}`}},
		{Idem: idem("unknown", "h", t0), Answer: domain.IdemAnswer{Status: 201, Body: `{}`}},
	} {
		if events := s.then(c, t0); len(events) != 0 {
			t.Fatalf("%+v recorded %v", c, events)
		}
	}
	r := replayOf(t, s.state().CheckIdempotency(idem("k", "h", at(time.Hour))))
	if r.Answer == nil || *r.Answer != first {
		t.Fatalf("kept answer = %+v, want %+v", r.Answer, first)
	}
	// Only a success is kept.
	s.then(domain.ClaimIdempotencyKey{Idem: idem("k2", "h", t0), Ref: "y"}, t0)
	wantErr(t, s.rejects(domain.RecordIdempotentAnswer{Idem: idem("k2", "h", t0), Answer: domain.IdemAnswer{Status: 400}}, t0), domain.ErrInvalid)
}

func TestAnAccountRemembersAtMostMaxKeysAndForgetsExpiredOnes(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	// The history of many claims, folded (deciding each would cost a
	// clone of the growing state per claim).
	for i := range domain.MaxIdempotencyKeys + 5 {
		s.given(domain.IdempotencyKeyUsed{Key: fmt.Sprint("k", i), RequestHash: "h", Ref: "r", WallAt: at(time.Duration(i) * time.Second), At: t0})
	}
	st := s.state()
	wantEqual(t, "remembered", len(st.Idempotency), domain.MaxIdempotencyKeys)
	wantEqual(t, "order", len(st.IdempotencyOrder), domain.MaxIdempotencyKeys)
	if _, ok := st.Idempotency["k4"]; ok {
		t.Fatal("the oldest keys are still remembered past the cap")
	}
	if _, ok := st.Idempotency["k5"]; !ok {
		t.Fatal("k5 forgotten")
	}
	// A key used a day (of real time) later forgets every expired one.
	s.then(domain.ClaimIdempotencyKey{Idem: idem("late", "h", at(domain.IdempotencyWindow+time.Hour)), Ref: "r"}, t0)
	st = s.state()
	wantEqual(t, "remembered", len(st.Idempotency), 1)
	wantEqual(t, "order", fmt.Sprint(st.IdempotencyOrder), "[late]")
}

func TestKeysOfStoredKeysAndLimitRequestsAreClaimedWithTheirWork(t *testing.T) {
	t.Parallel()
	s := registered(t, "10.00")
	key := domain.SSHKey{Fingerprint: "SHA256:abc", Key: "ssh-ed25519 AAAA"}
	events := s.then(domain.AddSSHKey{KeyID: "key-1", Name: "me", Key: key, Idem: idem("k1", "h1", t0)}, t0)
	wantTypes(t, events, "SSHKeyAdded", "IdempotencyKeyUsed")
	// The retry is answered before the rule that the key is stored already.
	r := replayOf(t, s.rejects(domain.AddSSHKey{KeyID: "key-2", Name: "me", Key: key, Idem: idem("k1", "h1", t0)}, t0))
	wantEqual(t, "ref", r.Ref, "key-1")

	events = s.then(domain.RequestLimit{RequestID: "lr-1", ServerLimit: 20, Reason: "a fleet", Idem: idem("k2", "h2", t0)}, t0)
	wantTypes(t, events, "LimitRequested", "IdempotencyKeyUsed")
	// ... and before the rule that one request is pending.
	r = replayOf(t, s.rejects(domain.RequestLimit{RequestID: "lr-2", ServerLimit: 20, Reason: "a fleet", Idem: idem("k2", "h2", t0)}, t0))
	wantEqual(t, "ref", r.Ref, "lr-1")
	// Once approved, the retry still answers the request.
	s.then(domain.DecideLimitRequest{RequestID: "lr-1", Approve: true, Actor: "ops"}, at(time.Hour))
	replayOf(t, s.rejects(domain.RequestLimit{RequestID: "lr-3", ServerLimit: 20, Reason: "a fleet", Idem: idem("k2", "h2", at(time.Hour))}, at(time.Hour)))
}

func TestATopupThatFailedToOpenFreesItsKey(t *testing.T) {
	t.Parallel()
	s := registered(t, "0")
	s.then(domain.RequestTopup{TopupID: "t1", Amount: money("5.00"), Method: "DOGE", Idem: idem("k", "h", t0)}, t0)
	replayOf(t, s.rejects(domain.RequestTopup{TopupID: "t2", Amount: money("5.00"), Method: "DOGE", Idem: idem("k", "h", t0)}, t0))
	s.then(domain.FailTopupOpen{TopupID: "t1", Reason: "DOGE is not offered"}, t0)
	s.then(domain.RequestTopup{TopupID: "t2", Amount: money("5.00"), Method: "BTC", Idem: idem("k", "h2", t0)}, t0)
}

func TestKeysOfOlderLogsKeptOnTheirTopupStillReplay(t *testing.T) {
	t.Parallel()
	s := registered(t, "0")
	s.given(domain.TopupRequested{TopupID: "t1", Amount: money("5.00"), IdempotencyKey: "k", RequestHash: "h", At: t0})
	r := replayOf(t, s.rejects(domain.RequestTopup{TopupID: "t2", Amount: money("5.00"), Idem: idem("k", "h", at(time.Hour))}, at(time.Hour)))
	wantEqual(t, "ref", r.Ref, "t1")
}

func TestCheckIdempotencyKeyBoundsLengthAndBytes(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", strings.Repeat("k", domain.MaxIdempotencyKeyBytes), "clé-é", "7b0e4c1a-5d2f-4c1e-9e1a-2f3b4c5d6e7f"} {
		if err := domain.CheckIdempotencyKey(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("k", domain.MaxIdempotencyKeyBytes+1), strings.Repeat("é", 128), " k", "k\t", "a\x00b", "\xff\xfe", "a\u0085b"} {
		if err := domain.CheckIdempotencyKey(bad); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%q: %v, want invalid", bad, err)
		}
	}
}
