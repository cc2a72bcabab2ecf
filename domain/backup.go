package domain

import (
	"fmt"
	"time"
)

// BackupRetention is how long a backup is kept before it expires.
const BackupRetention = 7 * 24 * time.Hour

// ExpiredShown is how long a backup that expired or was deleted is still
// shown, as EXPIRED, before it is gone (404): an agent that looks a few
// days later learns what became of it instead of losing track.
const ExpiredShown = 7 * 24 * time.Hour

// BackupStatus is where a backup is in its life.
type BackupStatus string

// Backup statuses. DELETED (deleted by the customer) and EXPIRED (retention
// over) can no longer be restored; the customer sees both as EXPIRED for
// ExpiredShown, then not at all.
const (
	BackupPending   BackupStatus = "PENDING"
	BackupAvailable BackupStatus = "AVAILABLE"
	BackupError     BackupStatus = "ERROR"
	BackupDeletedS  BackupStatus = "DELETED"
	BackupExpiredS  BackupStatus = "EXPIRED"
)

// Backup stream events.
type (
	// BackupRequested: a snapshot of an ACTIVE server was asked for.
	BackupRequested struct {
		BackupID   string    `json:"backupId"`
		AccountID  string    `json:"accountId"`
		ServerID   string    `json:"serverId"`
		InstanceID string    `json:"instanceId"`
		Label      string    `json:"label"`
		Plan       string    `json:"plan"`
		Region     string    `json:"region"`
		At         time.Time `json:"at"`
		ExpiresAt  time.Time `json:"expiresAt"`
	}
	// BackupCompleted: the snapshot exists and can be restored.
	BackupCompleted struct {
		SnapshotID string    `json:"snapshotId"`
		At         time.Time `json:"at"`
	}
	// BackupFailed: the snapshot could not be taken.
	BackupFailed struct {
		Reason string    `json:"reason"`
		At     time.Time `json:"at"`
	}
	// BackupRestored: a new server was deployed from the snapshot.
	BackupRestored struct {
		ServerID string    `json:"serverId"`
		At       time.Time `json:"at"`
	}
	// BackupDeleted: the customer deleted it before expiry.
	BackupDeleted struct {
		At time.Time `json:"at"`
	}
	// BackupExpired: its retention ran out.
	BackupExpired struct {
		At time.Time `json:"at"`
	}
)

// EventType names the events in the log.
func (BackupRequested) EventType() string { return "BackupRequested" }
func (BackupCompleted) EventType() string { return "BackupCompleted" }
func (BackupFailed) EventType() string    { return "BackupFailed" }
func (BackupRestored) EventType() string  { return "BackupRestored" }
func (BackupDeleted) EventType() string   { return "BackupDeleted" }
func (BackupExpired) EventType() string   { return "BackupExpired" }

func (e BackupRequested) OccurredAt() time.Time { return e.At }
func (e BackupCompleted) OccurredAt() time.Time { return e.At }
func (e BackupFailed) OccurredAt() time.Time    { return e.At }
func (e BackupRestored) OccurredAt() time.Time  { return e.At }
func (e BackupDeleted) OccurredAt() time.Time   { return e.At }
func (e BackupExpired) OccurredAt() time.Time   { return e.At }

// Backup is the state of a backup stream.
type Backup struct {
	ID         string
	AccountID  string
	ServerID   string
	InstanceID string
	Label      string
	Plan       string
	Region     string
	Status     BackupStatus
	SnapshotID string
	CreatedAt  time.Time
	// ExpiresAt is when the backup stops being restorable: the end of its
	// retention, or when it was deleted, if it was deleted before.
	ExpiresAt time.Time
	Restores  []string
}

// Exists reports whether the backup stream has been started.
func (b Backup) Exists() bool { return b.ID != "" }

// Visible reports whether the backup is still the customer's to use at
// now: not deleted, not expired.
func (b Backup) Visible(now time.Time) bool {
	return Live(b.Status, b.ExpiresAt, now)
}

// Live is Visible of a backup in status that stops being restorable at
// expiresAt.
func Live(status BackupStatus, expiresAt, now time.Time) bool {
	switch status {
	case BackupPending, BackupAvailable, BackupError:
		return now.Before(expiresAt)
	}
	return false
}

// Shown is how the customer sees a backup in status that stops being
// restorable at expiresAt: as it is while it lives, EXPIRED (deleted or
// expired) for ExpiredShown after that, then not at all (ok false).
func Shown(status BackupStatus, expiresAt, now time.Time) (BackupStatus, bool) {
	if Live(status, expiresAt, now) {
		return status, true
	}
	return BackupExpiredS, now.Before(expiresAt.Add(ExpiredShown))
}

// EvolveBackup folds one event into a backup.
func EvolveBackup(b Backup, e Event) Backup {
	switch e := e.(type) {
	case BackupRequested:
		b = Backup{ID: e.BackupID, AccountID: e.AccountID, ServerID: e.ServerID, InstanceID: e.InstanceID,
			Label: e.Label, Plan: e.Plan, Region: e.Region, Status: BackupPending, CreatedAt: e.At, ExpiresAt: e.ExpiresAt}
	case BackupCompleted:
		b.Status, b.SnapshotID = BackupAvailable, e.SnapshotID
	case BackupFailed:
		b.Status = BackupError
	case BackupRestored:
		b.Restores = append(append([]string(nil), b.Restores...), e.ServerID)
	case BackupDeleted:
		// It stops being restorable now: EXPIRED for the customer, and
		// shown as such for ExpiredShown from now.
		b.Status = BackupDeletedS
		if e.At.Before(b.ExpiresAt) {
			b.ExpiresAt = e.At
		}
	case BackupExpired:
		b.Status = BackupExpiredS
	}
	return b
}

// Backup commands.
type (
	// BackupCommand is decided by DecideBackup.
	BackupCommand interface{ backupCommand() }
	// RequestBackup snapshots a server of the account.
	RequestBackup struct {
		BackupID  string
		AccountID string
		Server    Server
	}
	// CompleteBackup records the finished snapshot.
	CompleteBackup struct{ SnapshotID string }
	// FailBackup records a failed snapshot.
	FailBackup struct{ Reason string }
	// CheckRestore checks that a backup can be restored now; it decides no
	// event (the restore is a deploy on the account), RecordRestore does.
	CheckRestore struct{ AccountID string }
	// RecordRestore notes the server a restore deployed.
	RecordRestore struct{ ServerID string }
	// DeleteBackup deletes it for the account.
	DeleteBackup struct{ AccountID string }
	// ExpireBackup retires it once its retention ran out.
	ExpireBackup struct{}
)

func (RequestBackup) backupCommand()  {}
func (CompleteBackup) backupCommand() {}
func (FailBackup) backupCommand()     {}
func (CheckRestore) backupCommand()   {}
func (RecordRestore) backupCommand()  {}
func (DeleteBackup) backupCommand()   {}
func (ExpireBackup) backupCommand()   {}

// DecideBackup decides a backup command at now.
func DecideBackup(b Backup, cmd BackupCommand, now time.Time) ([]Event, error) {
	if c, ok := cmd.(RequestBackup); ok {
		if b.Exists() {
			return nil, fmt.Errorf("%w: backup id %s already used", ErrInvalid, c.BackupID)
		}
		if c.Server.Status != StatusActive {
			return nil, stateError("server "+c.Server.ID, string(c.Server.Status), "only an ACTIVE server can be backed up")
		}
		return []Event{BackupRequested{BackupID: c.BackupID, AccountID: c.AccountID, ServerID: c.Server.ID,
			InstanceID: c.Server.InstanceID, Label: c.Server.Label, Plan: c.Server.Plan, Region: c.Server.Region,
			At: now, ExpiresAt: now.Add(BackupRetention)}}, nil
	}
	if !b.Exists() {
		return nil, ErrNotFound
	}
	switch c := cmd.(type) {
	case CompleteBackup:
		if b.Status != BackupPending {
			return nil, b.stateError("only a pending backup completes")
		}
		return []Event{BackupCompleted{SnapshotID: c.SnapshotID, At: now}}, nil
	case FailBackup:
		if b.Status != BackupPending {
			return nil, b.stateError("only a pending backup fails")
		}
		return []Event{BackupFailed{Reason: c.Reason, At: now}}, nil
	case CheckRestore:
		if err := b.shownTo(c.AccountID, now, "it can no longer be restored"); err != nil {
			return nil, err
		}
		if b.Status != BackupAvailable {
			return nil, b.stateError("only an AVAILABLE backup can be restored")
		}
		return nil, nil
	case RecordRestore:
		return []Event{BackupRestored{ServerID: c.ServerID, At: now}}, nil
	case DeleteBackup:
		if err := b.shownTo(c.AccountID, now, "it is gone already"); err != nil {
			return nil, err
		}
		return []Event{BackupDeleted{At: now}}, nil
	case ExpireBackup:
		switch b.Status {
		case BackupDeletedS, BackupExpiredS:
			return nil, b.stateError("it is already gone")
		}
		if now.Before(b.ExpiresAt) {
			return nil, b.stateError("it expires at " + b.ExpiresAt.Format(time.RFC3339))
		}
		return []Event{BackupExpired{At: b.ExpiresAt}}, nil
	}
	return nil, fmt.Errorf("%w: unknown command %T", ErrInvalid, cmd)
}

// shownTo refuses a command on a backup the account does not see (404) or
// sees EXPIRED (409, saying why not).
func (b Backup) shownTo(accountID string, now time.Time, why string) error {
	status, shown := Shown(b.Status, b.ExpiresAt, now)
	if b.AccountID != accountID || !shown {
		return ErrNotFound
	}
	if status == BackupExpiredS {
		return stateError("backup "+b.ID, string(status), why)
	}
	return nil
}

func (b Backup) stateError(want string) error {
	return stateError("backup "+b.ID, string(b.Status), want)
}
