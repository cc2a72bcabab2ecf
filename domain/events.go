package domain

import (
	"encoding/json"
	"fmt"
	"time"
)

// Event is a fact decided by an aggregate. Its EventType names it in the log;
// names are forever, so they are never reused for another shape.
type Event interface {
	EventType() string
}

// Account stream events.
type (
	// AccountRegistered opens an account. PasswordHash is a bcrypt hash.
	AccountRegistered struct {
		AccountID    string    `json:"accountId"`
		Email        string    `json:"email"`
		PasswordHash string    `json:"passwordHash"`
		ServerLimit  int       `json:"serverLimit"`
		At           time.Time `json:"at"`
	}
	// AccountSuspended is an operator's abuse hold: mutations answer 403.
	AccountSuspended struct {
		Reason string    `json:"reason"`
		Actor  string    `json:"actor"`
		At     time.Time `json:"at"`
	}
	// AccountUnsuspended lifts an abuse hold.
	AccountUnsuspended struct {
		Reason string    `json:"reason"`
		Actor  string    `json:"actor"`
		At     time.Time `json:"at"`
	}
	// ServerLimitSet changes how many live servers the account may hold.
	ServerLimitSet struct {
		Limit int       `json:"limit"`
		Actor string    `json:"actor"`
		At    time.Time `json:"at"`
	}
	// TopupCreated records a crypto top-up invoice waiting for payment.
	TopupCreated struct {
		TopupID     string    `json:"topupId"`
		Amount      Money     `json:"amount"`
		Currency    string    `json:"currency"`
		PayAddress  string    `json:"payAddress"`
		ProviderRef string    `json:"providerRef"`
		At          time.Time `json:"at"`
	}
	// TopupPaid records that the payment processor confirmed a top-up; the
	// credit itself is the LedgerPosted that follows it.
	TopupPaid struct {
		TopupID string    `json:"topupId"`
		At      time.Time `json:"at"`
	}
	// IdempotencyKeyUsed remembers a deploy request so a retry with the same
	// key replays it instead of deploying again.
	IdempotencyKeyUsed struct {
		Key         string    `json:"key"`
		RequestHash string    `json:"requestHash"`
		ServerIDs   []string  `json:"serverIds"`
		Bulk        bool      `json:"bulk"`
		At          time.Time `json:"at"`
	}
)

// Server lifecycle events, on the owning account's stream.
type (
	// ServerDeployed accepts a deploy: the server exists, PROVISIONING, and
	// its price is fixed for its whole life.
	ServerDeployed struct {
		ServerID    string    `json:"serverId"`
		Label       string    `json:"label"`
		Plan        string    `json:"plan"`
		Region      string    `json:"region"`
		HourlyPrice Money     `json:"hourlyPrice"`
		SSHKeys     []SSHKey  `json:"sshKeys,omitempty"`
		BackupID    string    `json:"backupId,omitempty"`
		At          time.Time `json:"at"`
	}
	// ServerProvisionStarted is the intent recorded before the provider is
	// asked to create the instance, so a crash in between is reconciled by
	// looking the instance up rather than creating a second one.
	ServerProvisionStarted struct {
		ServerID string    `json:"serverId"`
		Attempt  int       `json:"attempt"`
		At       time.Time `json:"at"`
	}
	// ServerInstanceCreated records the provider's id for the instance.
	ServerInstanceCreated struct {
		ServerID   string    `json:"serverId"`
		InstanceID string    `json:"instanceId"`
		At         time.Time `json:"at"`
	}
	// ServerActivated: the instance runs and is reachable.
	ServerActivated struct {
		ServerID string    `json:"serverId"`
		IPv4     string    `json:"ipv4"`
		At       time.Time `json:"at"`
	}
	// ServerFailed: the deploy failed; its charges are refunded.
	ServerFailed struct {
		ServerID string    `json:"serverId"`
		Reason   string    `json:"reason"`
		At       time.Time `json:"at"`
	}
	// ServerSuspended: the balance could not cover the hour starting At.
	ServerSuspended struct {
		ServerID string    `json:"serverId"`
		Reason   string    `json:"reason"`
		At       time.Time `json:"at"`
	}
	// ServerResumed: a credit covered the server again; billing resumes with
	// the hour containing At.
	ServerResumed struct {
		ServerID string    `json:"serverId"`
		At       time.Time `json:"at"`
	}
	// ServerDestroyRequested: DELETE accepted; billing has stopped.
	ServerDestroyRequested struct {
		ServerID string    `json:"serverId"`
		At       time.Time `json:"at"`
	}
	// ServerDestroyed: the provider no longer has the instance.
	ServerDestroyed struct {
		ServerID string    `json:"serverId"`
		At       time.Time `json:"at"`
	}
)

// EventType implementations: the names stored in the log.
func (AccountRegistered) EventType() string      { return "AccountRegistered" }
func (AccountSuspended) EventType() string       { return "AccountSuspended" }
func (AccountUnsuspended) EventType() string     { return "AccountUnsuspended" }
func (ServerLimitSet) EventType() string         { return "ServerLimitSet" }
func (TopupCreated) EventType() string           { return "TopupCreated" }
func (TopupPaid) EventType() string              { return "TopupPaid" }
func (IdempotencyKeyUsed) EventType() string     { return "IdempotencyKeyUsed" }
func (LedgerPosted) EventType() string           { return "LedgerPosted" }
func (ServerDeployed) EventType() string         { return "ServerDeployed" }
func (ServerProvisionStarted) EventType() string { return "ServerProvisionStarted" }
func (ServerInstanceCreated) EventType() string  { return "ServerInstanceCreated" }
func (ServerActivated) EventType() string        { return "ServerActivated" }
func (ServerFailed) EventType() string           { return "ServerFailed" }
func (ServerSuspended) EventType() string        { return "ServerSuspended" }
func (ServerResumed) EventType() string          { return "ServerResumed" }
func (ServerDestroyRequested) EventType() string { return "ServerDestroyRequested" }
func (ServerDestroyed) EventType() string        { return "ServerDestroyed" }

// eventTypes maps stored names back to shapes.
func newEvent(typ string) (Event, bool) {
	switch typ {
	case "AccountRegistered":
		return &AccountRegistered{}, true
	case "AccountSuspended":
		return &AccountSuspended{}, true
	case "AccountUnsuspended":
		return &AccountUnsuspended{}, true
	case "ServerLimitSet":
		return &ServerLimitSet{}, true
	case "TopupCreated":
		return &TopupCreated{}, true
	case "TopupPaid":
		return &TopupPaid{}, true
	case "IdempotencyKeyUsed":
		return &IdempotencyKeyUsed{}, true
	case "LedgerPosted":
		return &LedgerPosted{}, true
	case "ServerDeployed":
		return &ServerDeployed{}, true
	case "ServerProvisionStarted":
		return &ServerProvisionStarted{}, true
	case "ServerInstanceCreated":
		return &ServerInstanceCreated{}, true
	case "ServerActivated":
		return &ServerActivated{}, true
	case "ServerFailed":
		return &ServerFailed{}, true
	case "ServerSuspended":
		return &ServerSuspended{}, true
	case "ServerResumed":
		return &ServerResumed{}, true
	case "ServerDestroyRequested":
		return &ServerDestroyRequested{}, true
	case "ServerDestroyed":
		return &ServerDestroyed{}, true
	case "BackupRequested":
		return &BackupRequested{}, true
	case "BackupCompleted":
		return &BackupCompleted{}, true
	case "BackupFailed":
		return &BackupFailed{}, true
	case "BackupRestored":
		return &BackupRestored{}, true
	case "BackupDeleted":
		return &BackupDeleted{}, true
	case "BackupExpired":
		return &BackupExpired{}, true
	case "ClockAdvanced":
		return &ClockAdvanced{}, true
	}
	return nil, false
}

// DecodeEvent turns a stored event back into its domain shape. Unknown types
// are an error: a reader must never silently skip a fact.
func DecodeEvent(typ string, data []byte) (Event, error) {
	e, ok := newEvent(typ)
	if !ok {
		return nil, fmt.Errorf("unknown event type %q", typ)
	}
	if err := json.Unmarshal(data, e); err != nil {
		return nil, fmt.Errorf("decode %s: %w", typ, err)
	}
	return deref(e), nil
}

// deref returns the event by value, so switches match on value types only.
func deref(e Event) Event {
	switch v := e.(type) {
	case *AccountRegistered:
		return *v
	case *AccountSuspended:
		return *v
	case *AccountUnsuspended:
		return *v
	case *ServerLimitSet:
		return *v
	case *TopupCreated:
		return *v
	case *TopupPaid:
		return *v
	case *IdempotencyKeyUsed:
		return *v
	case *LedgerPosted:
		return *v
	case *ServerDeployed:
		return *v
	case *ServerProvisionStarted:
		return *v
	case *ServerInstanceCreated:
		return *v
	case *ServerActivated:
		return *v
	case *ServerFailed:
		return *v
	case *ServerSuspended:
		return *v
	case *ServerResumed:
		return *v
	case *ServerDestroyRequested:
		return *v
	case *ServerDestroyed:
		return *v
	case *BackupRequested:
		return *v
	case *BackupCompleted:
		return *v
	case *BackupFailed:
		return *v
	case *BackupRestored:
		return *v
	case *BackupDeleted:
		return *v
	case *BackupExpired:
		return *v
	case *ClockAdvanced:
		return *v
	}
	return e
}

// ClockAdvanced moves the sandbox clock forward; its stream is replayed at
// start so a restart never moves sandbox time backwards.
type ClockAdvanced struct {
	Seconds int64 `json:"seconds"`
	// Offset is the total offset from wall time after this advance.
	Offset int64     `json:"offsetSeconds"`
	At     time.Time `json:"at"`
}

// EventType names the event in the log.
func (ClockAdvanced) EventType() string { return "ClockAdvanced" }
