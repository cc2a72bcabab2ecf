package work

import (
	"context"
	"errors"
	"fmt"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
)

// workBackup takes a pending snapshot (looking it up by tag first, so a crash
// never takes two) and expires a backup whose retention ran out.
func (s *Worker) workBackup(ctx context.Context, id string) error {
	cur, err := s.backups.Load(ctx, id)
	if err != nil {
		return err
	}
	b := cur.State
	meta := metaFor("backups")
	now := s.clock.Now()
	if !now.Before(b.ExpiresAt) {
		d, err := s.backups.Run(ctx, id, domain.ExpireBackup{}, meta)
		if err != nil {
			return err
		}
		app.DropSnapshot(ctx, s.cloud, s.log, d.State)
		return nil
	}
	if b.Status != domain.BackupPending {
		return nil
	}
	snap, err := s.cloud.FindSnapshot(ctx, id)
	if errors.Is(err, domain.ErrNoInstance) {
		snap, err = s.cloud.CreateSnapshot(ctx, b.InstanceID, id)
		if errors.Is(err, domain.ErrNoInstance) {
			_, err = s.backups.Run(ctx, id, domain.FailBackup{Reason: "the server was gone before the snapshot could be taken"}, meta)
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
		_, err = s.backups.Run(ctx, id, domain.FailBackup{Reason: snap.Error}, meta)
	}
	return err
}
