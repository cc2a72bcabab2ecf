package domain_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

// everyEvent has one event of each type with every field set.
func everyEvent() []domain.Event {
	from, to := at(hour), at(2*hour)
	keys := []domain.SSHKey{{Fingerprint: "SHA256:abc", Key: "ssh-ed25519 AAAAC3Nz"}}
	return []domain.Event{
		domain.AccountRegistered{AccountID: accountID, Email: "ann@example.com", SealedEmail: "v1:c2VhbGVk", CredentialRef: "ref-1", PasswordHash: "$2a$10$x", ServerLimit: 10, At: t0},
		domain.AccountSuspended{Reason: "abuse", Actor: "ops", At: t0},
		domain.AccountUnsuspended{Reason: "resolved", Actor: "ops", At: t0},
		domain.ServerLimitSet{Limit: 25, Actor: "ops", At: t0},
		domain.TopupCreated{TopupID: "t1", Amount: money("25.00"), Currency: "XMR", PayAddress: "addr", ProviderRef: "ref", At: t0},
		domain.TopupPaid{TopupID: "t1", At: t0},
		domain.IdempotencyKeyUsed{Key: "k", RequestHash: "h", ServerIDs: []string{"a", "b"}, Bulk: true, Ref: "b1", WallAt: t0, At: t0},
		domain.IdempotencyAnswerRecorded{Key: "k", RequestHash: "h", Answer: domain.IdemAnswer{Status: 202, Body: `{"backup":{}}`, Location: "/backups/b1", RetryAfter: 180}, At: t0},
		domain.LedgerPosted{
			TxID: "tx-1", Kind: domain.TxCharge,
			Postings: []domain.Posting{{Account: domain.LedgerRevenueCompute, Amount: money("0.014")}, {Account: domain.CustomerLedger(accountID), Amount: money("-0.014")}},
			ServerID: "a", From: &from, To: &to, TopupID: "t1", At: from, PrevHash: "prev", Hash: "hash",
		},
		domain.ServerDeployed{ServerID: "a", Label: "web", Plan: micro, Region: "ams", HourlyPrice: money("0.014"), SSHKeys: keys, BackupID: "b1", At: t0},
		domain.ServerProvisionStarted{ServerID: "a", Attempt: 2, At: t0},
		domain.ServerInstanceCreated{ServerID: "a", InstanceID: "i-1", At: t0},
		domain.ServerActivated{ServerID: "a", IPv4: "203.0.113.7", At: t0},
		domain.ServerFailed{ServerID: "a", Reason: "no capacity", At: t0},
		domain.ServerSuspended{ServerID: "a", Reason: "insufficient balance", At: t0},
		domain.ServerResumed{ServerID: "a", At: t0},
		domain.ServerDestroyRequested{ServerID: "a", At: t0},
		domain.ServerDestroyed{ServerID: "a", At: t0},
		domain.BackupRequested{BackupID: "b1", AccountID: accountID, ServerID: "a", InstanceID: "i-1", Label: "web", Plan: micro, Region: "ams", At: t0, ExpiresAt: t0.Add(domain.BackupRetention)},
		domain.BackupCompleted{SnapshotID: "snap", At: t0},
		domain.BackupFailed{Reason: "busy", At: t0},
		domain.BackupRestored{ServerID: "r1", At: t0},
		domain.BackupDeleted{At: t0},
		domain.BackupExpired{At: t0},
		domain.ClockAdvanced{Seconds: 3600, Offset: 7200, At: t0},
		domain.AccountClockAdvanced{AccountID: accountID, Seconds: 60, Offset: 120, At: t0},
		domain.AccountEmailSealed{SealedEmail: "v1:c2VhbGVk", At: t0},
		domain.AccountForgotten{Actor: "account:" + accountID, Forfeited: money("1.25"), At: t0},
		domain.PasswordChanged{CredentialRef: "ref-2", At: t0},
		domain.APIKeyCreated{KeyID: "k1", Name: "ci", At: t0},
		domain.APIKeyDeleted{KeyID: "k1", At: t0},
	}
}

func TestDecodeEventRoundTripsEveryEventTypeThroughJSON(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for _, e := range everyEvent() {
		if names[e.EventType()] {
			t.Fatalf("event type %s listed twice", e.EventType())
		}
		names[e.EventType()] = true
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal %s: %v", e.EventType(), err)
		}
		back, err := domain.DecodeEvent(e.EventType(), b)
		if err != nil {
			t.Fatalf("decode %s: %v", e.EventType(), err)
		}
		if !reflect.DeepEqual(back, e) {
			t.Errorf("%s round trip\n got %#v\nwant %#v", e.EventType(), back, e)
		}
	}
	// 11 account events, 9 server events, 6 backup events, the clock's two
	// (the shared clock's and an account's own) and 3 credential events.
	wantEqual(t, "event types", len(names), 31)
}

func TestDecodeEventRejectsAnUnknownTypeAndMalformedData(t *testing.T) {
	t.Parallel()
	if e, err := domain.DecodeEvent("ServerExploded", []byte(`{"serverId":"a"}`)); err == nil {
		t.Fatalf("unknown type decoded as %#v", e)
	}
	if e, err := domain.DecodeEvent("", []byte(`{}`)); err == nil {
		t.Fatalf("empty type decoded as %#v", e)
	}
	if e, err := domain.DecodeEvent("TopupCreated", []byte(`{"amount":"1e3"}`)); err == nil {
		t.Fatalf("exponent amount decoded as %#v", e)
	}
	if e, err := domain.DecodeEvent("ServerDeployed", []byte(`{"serverId":`)); err == nil {
		t.Fatalf("truncated JSON decoded as %#v", e)
	}
}

func TestDecodedHistoryFoldsToTheSameStateAndItsLedgerStillVerifies(t *testing.T) {
	t.Parallel()
	s := registered(t, "0.042")
	s.then(keyed(deploy("a", "b"), "k", "h", t0), t0)
	s.then(domain.Activate{ServerID: "a", IPv4: "203.0.113.7"}, at(time.Minute))
	s.then(domain.Settle{}, at(3*hour))
	s.then(topup("t1", "5.00"), at(3*hour))
	s.then(domain.PayTopup{TopupID: "t1"}, at(4*hour+time.Minute))
	s.then(domain.FailDeploy{ServerID: "b", Reason: "x"}, at(4*hour+2*time.Minute))
	s.then(domain.Destroy{ServerID: "a"}, at(6*hour+3*time.Minute))

	var decoded []domain.Event
	for _, e := range s.history {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := domain.DecodeEvent(e.EventType(), b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, e) {
			t.Fatalf("%s does not round trip:\n got %#v\nwant %#v", e.EventType(), back, e)
		}
		decoded = append(decoded, back)
	}
	checkLedger(t, decoded)
	if !reflect.DeepEqual(given(decoded...), given(s.history...)) {
		t.Fatal("the decoded history folds to another state")
	}
}
