package domain

import (
	"fmt"
	"time"
)

// ServerStatus is where a server is in its life.
type ServerStatus string

// Server statuses, as the guide names them.
const (
	StatusProvisioning ServerStatus = "PROVISIONING"
	StatusActive       ServerStatus = "ACTIVE"
	StatusSuspended    ServerStatus = "SUSPENDED"
	StatusDestroying   ServerStatus = "DESTROYING"
	StatusDestroyed    ServerStatus = "DESTROYED"
	StatusError        ServerStatus = "ERROR"
)

// Server is the state of one server, folded from its events.
type Server struct {
	ID          string
	Label       string
	Plan        string
	Region      string
	HourlyPrice Money
	SSHKeys     []SSHKey
	BackupID    string
	Status      ServerStatus
	IPv4        string
	InstanceID  string
	Attempts    int
	// ProvisionStartedAt is when the last provisioning attempt started: a
	// worker leaves another worker's attempt alone for a while (its call to
	// the provider may still be under way) before it retries.
	ProvisionStartedAt time.Time
	// Activated is set once the instance first ran, so a server suspended
	// while still provisioning resumes to PROVISIONING, not ACTIVE.
	Activated bool
	CreatedAt time.Time
	// BilledUntil is the end of the last charged hour: the next hour is due
	// when the clock reaches it.
	BilledUntil time.Time
	// Charged is what the server has cost so far, net of refunds.
	Charged     Money
	SuspendedAt time.Time
	DestroyedAt time.Time
}

// Live servers count towards the account's limit.
func (s Server) Live() bool { return s.Status != StatusDestroyed && s.Status != StatusError }

// Billable servers are charged each hour.
func (s Server) Billable() bool {
	return s.Status == StatusProvisioning || s.Status == StatusActive
}

// hourContaining is the start of the billing hour, counted from CreatedAt,
// that contains t.
func (s Server) hourContaining(t time.Time) time.Time {
	if !t.After(s.CreatedAt) {
		return s.CreatedAt
	}
	return s.CreatedAt.Add(t.Sub(s.CreatedAt) / time.Hour * time.Hour)
}

func (s Server) stateError(want string) error {
	return stateError("server "+s.ID, string(s.Status), want)
}

// The server rules: each checks that the server may take the step now.

func (s Server) canDestroy() error {
	switch s.Status {
	case StatusActive, StatusProvisioning, StatusSuspended, StatusError:
		return nil
	}
	return s.stateError("it is already being destroyed")
}

func (s Server) canStartProvision(attempt int) error {
	if s.Status != StatusProvisioning || s.InstanceID != "" {
		return s.stateError("only a provisioning server without an instance can be provisioned")
	}
	if attempt != 0 && attempt != s.Attempts+1 {
		return stateError("server "+s.ID, fmt.Sprintf("at provisioning attempt %d", s.Attempts),
			fmt.Sprintf("attempt %d was asked for: another worker has moved on", attempt))
	}
	return nil
}

func (s Server) canRecordInstance() error {
	if s.InstanceID != "" {
		return s.stateError("it already has instance " + s.InstanceID)
	}
	if s.Status == StatusDestroyed {
		return s.stateError("a destroyed server takes no instance")
	}
	return nil
}

func (s Server) canActivate() error {
	if s.Activated || (s.Status != StatusProvisioning && s.Status != StatusSuspended) {
		return s.stateError("only a provisioning server can become active")
	}
	return nil
}

func (s Server) canFail() error {
	if s.Activated || (s.Status != StatusProvisioning && s.Status != StatusSuspended) {
		return s.stateError("only a deploy still provisioning can fail")
	}
	return nil
}

func (s Server) canCompleteDestroy() error {
	if s.Status != StatusDestroying {
		return s.stateError("only a server being destroyed can be destroyed")
	}
	return nil
}

// evolveServer applies one server event. The caller passes a copy.
func evolveServer(s Server, e Event) Server {
	switch e := e.(type) {
	case ServerDeployed:
		s = Server{
			ID: e.ServerID, Label: e.Label, Plan: e.Plan, Region: e.Region,
			HourlyPrice: e.HourlyPrice, SSHKeys: e.SSHKeys, BackupID: e.BackupID,
			Status: StatusProvisioning, CreatedAt: e.At, BilledUntil: e.At,
		}
	case ServerProvisionStarted:
		s.Attempts = e.Attempt
		s.ProvisionStartedAt = e.At
	case ServerInstanceCreated:
		s.InstanceID = e.InstanceID
	case ServerActivated:
		s.Activated = true
		s.IPv4 = e.IPv4
		if s.Status == StatusProvisioning {
			s.Status = StatusActive
		}
	case ServerFailed:
		s.Status = StatusError
	case ServerSuspended:
		s.Status = StatusSuspended
		s.SuspendedAt = e.At
	case ServerResumed:
		s.Status = StatusProvisioning
		if s.Activated {
			s.Status = StatusActive
		}
		s.BilledUntil = s.hourContaining(e.At)
		s.SuspendedAt = time.Time{}
	case ServerDestroyRequested:
		s.Status = StatusDestroying
	case ServerDestroyed:
		s.Status = StatusDestroyed
		s.DestroyedAt = e.At
	default:
		panic(fmt.Sprintf("evolveServer: %T is not a server event", e))
	}
	return s
}
