package domain

import "time"

// Event is a fact decided by an aggregate. Its EventType names it in the log;
// names are forever, so they are never reused for another shape. Every event
// says when it happened; the registry (registry.go) knows every type.
type Event interface {
	EventType() string
	// OccurredAt is when the event happened, on the service clock.
	OccurredAt() time.Time
}

// ServerEvent is an event about one server of an account.
type ServerEvent interface {
	Event
	// ServerOf is the id of the server the event concerns.
	ServerOf() string
}

// Account stream events.
type (
	// AccountRegistered opens an account. Its password is not here: the
	// hash (argon2id, see app.Hasher) is in the credential store
	// (Credentials), under CredentialRef. SealedEmail is the email sealed
	// with the account's data key (see personal.go); Email, the address in
	// plain, is only in events written before emails were sealed.
	AccountRegistered struct {
		AccountID     string `json:"accountId"`
		Email         string `json:"email,omitempty"`
		SealedEmail   string `json:"sealedEmail,omitempty"`
		CredentialRef string `json:"credentialRef,omitempty"`
		// PasswordHash is only in events older builds wrote: at start its
		// hash is moved to the credential store and, from then on, this
		// copy is ignored. Nothing writes it any more.
		PasswordHash string    `json:"passwordHash,omitempty"`
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
		TopupID string `json:"topupId"`
		// InvoiceRef is the invoice paid (empty for the first sandbox's
		// top-ups); Review why an operator should still look (an
		// overpayment); Actor and Reason the operator who credited it by
		// hand, and why.
		InvoiceRef string    `json:"invoiceRef,omitempty"`
		Review     string    `json:"review,omitempty"`
		Actor      string    `json:"actor,omitempty"`
		Reason     string    `json:"reason,omitempty"`
		At         time.Time `json:"at"`
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
	// ServerInstanceCreated records the provider's id for the instance, and
	// the root password it set, sealed with a key that is not in the log
	// (so no copy of the log reveals it), when it told one.
	ServerInstanceCreated struct {
		ServerID           string    `json:"serverId"`
		InstanceID         string    `json:"instanceId"`
		SealedRootPassword string    `json:"sealedRootPassword,omitempty"`
		At                 time.Time `json:"at"`
	}
	// ServerRootPasswordShown: the owner has been shown the root password
	// once; it is never shown again.
	ServerRootPasswordShown struct {
		ServerID string    `json:"serverId"`
		At       time.Time `json:"at"`
	}
	// ServerInstanceHalted: the instance of a suspended server is powered
	// off at the provider (off but recoverable).
	ServerInstanceHalted struct {
		ServerID string    `json:"serverId"`
		At       time.Time `json:"at"`
	}
	// ServerInstanceStarted: the instance of a resumed server is powered on
	// again.
	ServerInstanceStarted struct {
		ServerID string    `json:"serverId"`
		At       time.Time `json:"at"`
	}
	// ServerActivated: the instance runs and is reachable, at IPv4, with
	// the SSH host keys of these fingerprints when the provider told them.
	ServerActivated struct {
		ServerID            string    `json:"serverId"`
		IPv4                string    `json:"ipv4"`
		HostKeyFingerprints []string  `json:"hostKeyFingerprints,omitempty"`
		At                  time.Time `json:"at"`
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

// The names stored in the log, and when each event happened.
func (AccountRegistered) EventType() string       { return "AccountRegistered" }
func (AccountSuspended) EventType() string        { return "AccountSuspended" }
func (AccountUnsuspended) EventType() string      { return "AccountUnsuspended" }
func (ServerLimitSet) EventType() string          { return "ServerLimitSet" }
func (TopupCreated) EventType() string            { return "TopupCreated" }
func (TopupPaid) EventType() string               { return "TopupPaid" }
func (IdempotencyKeyUsed) EventType() string      { return "IdempotencyKeyUsed" }
func (LedgerPosted) EventType() string            { return "LedgerPosted" }
func (ServerDeployed) EventType() string          { return "ServerDeployed" }
func (ServerProvisionStarted) EventType() string  { return "ServerProvisionStarted" }
func (ServerInstanceCreated) EventType() string   { return "ServerInstanceCreated" }
func (ServerActivated) EventType() string         { return "ServerActivated" }
func (ServerRootPasswordShown) EventType() string { return "ServerRootPasswordShown" }
func (ServerInstanceHalted) EventType() string    { return "ServerInstanceHalted" }
func (ServerInstanceStarted) EventType() string   { return "ServerInstanceStarted" }
func (ServerFailed) EventType() string            { return "ServerFailed" }
func (ServerSuspended) EventType() string         { return "ServerSuspended" }
func (ServerResumed) EventType() string           { return "ServerResumed" }
func (ServerDestroyRequested) EventType() string  { return "ServerDestroyRequested" }
func (ServerDestroyed) EventType() string         { return "ServerDestroyed" }
func (ClockAdvanced) EventType() string           { return "ClockAdvanced" }
func (AccountClockAdvanced) EventType() string    { return "AccountClockAdvanced" }

func (e AccountRegistered) OccurredAt() time.Time       { return e.At }
func (e AccountSuspended) OccurredAt() time.Time        { return e.At }
func (e AccountUnsuspended) OccurredAt() time.Time      { return e.At }
func (e ServerLimitSet) OccurredAt() time.Time          { return e.At }
func (e TopupCreated) OccurredAt() time.Time            { return e.At }
func (e TopupPaid) OccurredAt() time.Time               { return e.At }
func (e IdempotencyKeyUsed) OccurredAt() time.Time      { return e.At }
func (e LedgerPosted) OccurredAt() time.Time            { return e.At }
func (e ServerDeployed) OccurredAt() time.Time          { return e.At }
func (e ServerProvisionStarted) OccurredAt() time.Time  { return e.At }
func (e ServerInstanceCreated) OccurredAt() time.Time   { return e.At }
func (e ServerActivated) OccurredAt() time.Time         { return e.At }
func (e ServerRootPasswordShown) OccurredAt() time.Time { return e.At }
func (e ServerInstanceHalted) OccurredAt() time.Time    { return e.At }
func (e ServerInstanceStarted) OccurredAt() time.Time   { return e.At }
func (e ServerFailed) OccurredAt() time.Time            { return e.At }
func (e ServerSuspended) OccurredAt() time.Time         { return e.At }
func (e ServerResumed) OccurredAt() time.Time           { return e.At }
func (e ServerDestroyRequested) OccurredAt() time.Time  { return e.At }
func (e ServerDestroyed) OccurredAt() time.Time         { return e.At }
func (e ClockAdvanced) OccurredAt() time.Time           { return e.At }
func (e AccountClockAdvanced) OccurredAt() time.Time    { return e.At }

// The server each server event concerns. A LedgerPosted names its server only
// when it charges or refunds one, so it is not a ServerEvent.
func (e ServerDeployed) ServerOf() string          { return e.ServerID }
func (e ServerProvisionStarted) ServerOf() string  { return e.ServerID }
func (e ServerInstanceCreated) ServerOf() string   { return e.ServerID }
func (e ServerActivated) ServerOf() string         { return e.ServerID }
func (e ServerRootPasswordShown) ServerOf() string { return e.ServerID }
func (e ServerInstanceHalted) ServerOf() string    { return e.ServerID }
func (e ServerInstanceStarted) ServerOf() string   { return e.ServerID }
func (e ServerFailed) ServerOf() string            { return e.ServerID }
func (e ServerSuspended) ServerOf() string         { return e.ServerID }
func (e ServerResumed) ServerOf() string           { return e.ServerID }
func (e ServerDestroyRequested) ServerOf() string  { return e.ServerID }
func (e ServerDestroyed) ServerOf() string         { return e.ServerID }
