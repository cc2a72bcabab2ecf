package work

import (
	"context"
	"errors"
	"fmt"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
)

// workBackupLocked takes a pending snapshot (looking it up by tag first, so
// a crash never takes two) and expires a backup whose retention ran out,
// its account's work lock held.
func (s *Worker) workBackupLocked(ctx context.Context, id string) error {
	cur, err := s.backups.Load(ctx, id)
	if err != nil {
		return err
	}
	b := cur.State
	switch b.Status {
	case domain.BackupPending, domain.BackupAvailable, domain.BackupError:
	default:
		// Deleted or expired: nothing left to do (the due-time index
		// brings any backup whose stream moved).
		return nil
	}
	meta := metaFor("backups")
	now := s.now(b.AccountID)
	if !now.Before(b.ExpiresAt) {
		d, err := s.backups.Run(ctx, id, domain.ExpireBackup{}, meta)
		if err != nil {
			return err
		}
		app.DropSnapshot(ctx, s.cloud, s.log, d.State)
		return nil
	}
	if b.Status != domain.BackupPending || !s.due(id, now) {
		return nil
	}
	s.backlogMu.Lock()
	s.backlog.BackupsPending++
	s.backlogMu.Unlock()
	snap, err := s.cloud.FindSnapshot(ctx, id)
	if errors.Is(err, domain.ErrNoInstance) {
		snap, err = s.cloud.CreateSnapshot(ctx, b.InstanceID, id)
		if errors.Is(err, domain.ErrNoInstance) {
			_, err = s.backups.Run(ctx, id, domain.FailBackup{Reason: "the server was gone before the snapshot could be taken"}, meta)
			return err
		}
		// A refusal will not change by asking again: the backup fails with
		// the provider's reason instead of being retried for ever.
		var refused *domain.RefusedError
		if errors.As(err, &refused) {
			_, err = s.backups.Run(ctx, id, domain.FailBackup{Reason: refused.Reason}, meta)
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	switch snap.Status {
	case domain.SnapshotComplete:
		_, err = s.backups.Run(ctx, id, domain.CompleteBackup{SnapshotID: snap.ID}, meta)
	case domain.SnapshotError:
		if _, err = s.backups.Run(ctx, id, domain.FailBackup{Reason: snap.Error}, meta); err == nil && snap.ID != "" {
			// A failed snapshot the provider still keeps would cost money.
			if derr := s.cloud.DeleteSnapshot(ctx, snap.ID); derr != nil && !errors.Is(derr, domain.ErrNoInstance) {
				s.log.Warn("could not delete a failed snapshot", "backup", id, "snapshot", snap.ID, "err", derr)
			}
		}
	}
	return err
}
