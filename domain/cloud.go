package domain

import (
	"context"
	"errors"
)

// ErrNoInstance is returned by a Provider for an instance or snapshot it does
// not have (never created, or already gone).
var ErrNoInstance = errors.New("provider has no such instance")

// Instance statuses as a Provider reports them.
const (
	InstancePending    = "pending"
	InstanceActive     = "active"
	InstanceError      = "error"
	InstanceDestroying = "destroying"
)

// Instance is a provider's view of a server.
type Instance struct {
	ID     string
	Tag    string
	Status string
	IPv4   string
	Error  string
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
	CreateInstance(ctx context.Context, spec InstanceSpec) (Instance, error)
	FindInstance(ctx context.Context, tag string) (Instance, error)
	Instance(ctx context.Context, id string) (Instance, error)
	DeleteInstance(ctx context.Context, id string) error
	CreateSnapshot(ctx context.Context, instanceID, tag string) (Snapshot, error)
	FindSnapshot(ctx context.Context, tag string) (Snapshot, error)
	DeleteSnapshot(ctx context.Context, id string) error
}
