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
	// HostKeyFingerprints are the instance's SSH host key fingerprints,
	// when the provider told them.
	HostKeyFingerprints []string
	InstanceID          string
	Attempts            int
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
	// Error is why a deploy failed, as the provider or the worker said.
	Error string
	// SealedRootPassword is the root password the provider set, sealed.
	// RootPasswordUntil is when the owner can no longer be shown it: zero
	// when there is none, or once it was shown.
	SealedRootPassword string
	RootPasswordUntil  time.Time
	// Halted is set while the instance of a suspended server is powered off.
	Halted bool
}

// RootPasswordWindow is how long after the instance was created its root
// password can be shown to the owner (once).
const RootPasswordWindow = 24 * time.Hour

// SuspendedRetention is how long a server stays suspended (its instance
// halted, still costing us) before it is destroyed.
const SuspendedRetention = 7 * 24 * time.Hour

// RootPasswordShowable reports whether the owner may still be shown the
// root password at now.
func (s Server) RootPasswordShowable(now time.Time) bool {
	return now.Before(s.RootPasswordUntil) &&
		s.Status != StatusDestroyed && s.Status != StatusDestroying && s.Status != StatusError
}

func (s Server) canShowRootPassword(now time.Time) error {
	if !s.RootPasswordShowable(now) {
		return s.stateError("its root password was shown already, has expired, or was never given")
	}
	return nil
}

func (s Server) canHalt() error {
	if s.Status != StatusSuspended || s.InstanceID == "" || s.Halted {
		return s.stateError("only the running instance of a suspended server is halted")
	}
	return nil
}

func (s Server) canStart() error {
	if !s.Halted || s.Status == StatusSuspended || s.Status == StatusDestroyed {
		return s.stateError("only the halted instance of a resumed server is started")
	}
	return nil
}

func (s Server) canExpireSuspended(now time.Time) error {
	if s.Status != StatusSuspended || now.Before(s.SuspendedAt.Add(SuspendedRetention)) {
		return s.stateError(fmt.Sprintf("only a server suspended for %s is destroyed for it", SuspendedRetention))
	}
	return nil
}

// Live servers may still need background work (a DESTROYING one too).
func (s Server) Live() bool { return s.Status != StatusDestroyed && s.Status != StatusError }

// HoldsSlot reports whether the server counts towards the account's limit:
// PROVISIONING, ACTIVE and SUSPENDED do; a server stops counting the moment
// it is DESTROYING (ERROR and DESTROYED never count).
func (s Server) HoldsSlot() bool {
	return s.Status == StatusProvisioning || s.Status == StatusActive || s.Status == StatusSuspended
}

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
		if e.SealedRootPassword != "" {
			s.SealedRootPassword, s.RootPasswordUntil = e.SealedRootPassword, e.At.Add(RootPasswordWindow)
		}
	case ServerRootPasswordShown:
		s.RootPasswordUntil = time.Time{}
	case ServerInstanceHalted:
		s.Halted = true
	case ServerInstanceStarted:
		s.Halted = false
	case ServerActivated:
		s.Activated = true
		s.IPv4, s.HostKeyFingerprints = e.IPv4, e.HostKeyFingerprints
		if s.Status == StatusProvisioning {
			s.Status = StatusActive
		}
	case ServerFailed:
		s.Status = StatusError
		s.Error = e.Reason
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
