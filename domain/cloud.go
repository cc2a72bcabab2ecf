package domain

import (
	"context"
	"errors"
)

// ErrNoInstance is returned by a Provider for an instance or snapshot it does
// not have (never created, or already gone).
var ErrNoInstance = errors.New("provider has no such instance")

// ErrRefused is matched (errors.Is) by every error with which a Provider
// says it understood a request and will not carry it out: the plan is sold
// out in the region, a quota is reached, the plan, region, image or snapshot
// is invalid. Nothing was created or changed, and asking again the same way
// will not help: a deploy refused this way has failed for good. Errors
// matching it are *RefusedError values carrying the provider's reason.
//
// Any other error from a call that creates or changes something (other than
// ErrNoInstance and ErrUnauthorized) is an unknown outcome: a timeout, a 5xx,
// a 429, a lost answer. The call may or may not have taken effect, so the
// caller looks up by tag before it ever asks again.
var ErrRefused = errors.New("provider refused the request")

// ErrUnauthorized is matched by errors with which a Provider says our
// credentials are missing, rejected or not allowed to do what was asked.
// Nothing was done; an operator has to fix the configuration.
var ErrUnauthorized = errors.New("provider rejected the credentials")

// RefusedError is a refusal (see ErrRefused) with the provider's reason, fit
// to show to the server's owner ("plan vc2-1c-1gb is sold out in ams").
type RefusedError struct {
	Reason string
}

func (e *RefusedError) Error() string { return "provider refused the request: " + e.Reason }

// Is makes a *RefusedError match ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Instance statuses as a Provider reports them.
const (
	InstancePending    = "pending"
	InstanceActive     = "active"
	InstanceError      = "error"
	InstanceDestroying = "destroying"
	// InstanceHalted is an instance that was active and is now powered off
	// (HaltInstance): off but recoverable with StartInstance. It still
	// costs money at the provider.
	InstanceHalted = "halted"
)

// Instance is a provider's view of a server.
type Instance struct {
	ID     string
	Tag    string
	Status string
	IPv4   string
	Error  string
	// RootPassword is the root password the provider set, when it tells: only
	// in the answer to CreateInstance, and empty in every later view (and
	// when the answer to the create was lost). It is a secret: never log it.
	RootPassword string
	// HostKeyFingerprints are the SHA256 fingerprints ("SHA256:...") of
	// the instance's SSH host keys, once it runs, when the provider tells
	// them (Vultr's API does not: nil).
	HostKeyFingerprints []string
}

// InstanceSpec asks a Provider for an instance. Tag carries our server id so
// the instance can be found again after a crash between asking and recording.
type InstanceSpec struct {
	Tag        string
	Label      string
	Plan       string
	Region     string
	SSHKeys    []string
	SnapshotID string
	// Account is the account the instance is for. Real providers ignore
	// it; the sandbox cloud runs the instance (and its snapshots) on that
	// account's clock, which the account can move on its own.
	Account string
}

// Snapshot statuses as a Provider reports them.
const (
	SnapshotPending  = "pending"
	SnapshotComplete = "complete"
	SnapshotError    = "error"
)

// Snapshot is a provider's view of a backup.
type Snapshot struct {
	ID     string
	Tag    string
	Status string
	Error  string
}

// Provider is the cloud the servers run on. Every call may fail or time out;
// callers record their intent first and reconcile by tag, so a retry never
// creates a second instance or snapshot.
type Provider interface {
	// CreateInstance asks for a new instance. The provider does not dedupe:
	// after an unknown outcome, FindInstance by the tag before asking again.
	// A refusal matches ErrRefused.
	CreateInstance(ctx context.Context, spec InstanceSpec) (Instance, error)
	// FindInstance finds the newest live instance carrying tag, or
	// ErrNoInstance.
	FindInstance(ctx context.Context, tag string) (Instance, error)
	Instance(ctx context.Context, id string) (Instance, error)
	// DeleteInstance destroys an instance; one already gone is
	// ErrNoInstance, which callers count as destroyed.
	DeleteInstance(ctx context.Context, id string) error
	// HaltInstance powers an instance off (status InstanceHalted, kept with
	// its disk and address); StartInstance powers it on again. Both are
	// idempotent: halting a halted instance or starting a running one does
	// nothing, so after an unknown outcome the caller just calls again. An
	// instance that is gone is ErrNoInstance.
	HaltInstance(ctx context.Context, id string) error
	StartInstance(ctx context.Context, id string) error
	// CreateSnapshot starts a snapshot of an instance (ErrNoInstance if the
	// instance is gone); FindSnapshot finds it by tag after an unknown
	// outcome.
	CreateSnapshot(ctx context.Context, instanceID, tag string) (Snapshot, error)
	FindSnapshot(ctx context.Context, tag string) (Snapshot, error)
	DeleteSnapshot(ctx context.Context, id string) error
	// AvailablePlans lists the plan ids that can be deployed in region now
	// (a plan sold out there is missing; an unknown region has none). The
	// answer may be cached for a few minutes, so a plan listed can still be
	// refused by CreateInstance.
	AvailablePlans(ctx context.Context, region string) ([]string, error)
	// Check makes one cheap authenticated call, to fail fast at start-up:
	// missing or rejected credentials match ErrUnauthorized.
	Check(ctx context.Context) error
}
