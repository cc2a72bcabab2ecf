package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

func (s *Service) loadBackup(ctx context.Context, id string) (domain.Backup, int64, error) {
	events, err := s.store.ReadStream(ctx, domain.BackupStream(id), 0)
	if err != nil {
		return domain.Backup{}, 0, fmt.Errorf("load backup %s: %w", id, err)
	}
	var b domain.Backup
	for _, ev := range events {
		e, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			return domain.Backup{}, 0, fmt.Errorf("load backup %s: %w", id, err)
		}
		b = domain.EvolveBackup(b, e)
	}
	return b, int64(len(events)) - 1, nil
}

// execBackup decides cmd on a backup and appends the result.
func (s *Service) execBackup(ctx context.Context, id string, cmd domain.BackupCommand, meta eventstore.Metadata) (domain.Backup, eventstore.Position, error) {
	for attempt := 0; attempt < 16; attempt++ {
		b, version, err := s.loadBackup(ctx, id)
		if err != nil {
			return domain.Backup{}, eventstore.Position{}, err
		}
		events, err := domain.DecideBackup(b, cmd, s.clock.Now())
		if err != nil || len(events) == 0 {
			return b, eventstore.Position{}, err
		}
		props := make([]eventstore.Proposed, len(events))
		for i, e := range events {
			data, err := json.Marshal(e)
			if err != nil {
				return b, eventstore.Position{}, err
			}
			props[i] = eventstore.Proposed{ID: uuid.New(), Type: e.EventType(), Data: data, Meta: meta}
		}
		res, err := s.store.Append(ctx, domain.BackupStream(id), version, props)
		if errors.Is(err, eventstore.ErrWrongVersion) {
			continue
		}
		if err != nil {
			return b, eventstore.Position{}, fmt.Errorf("append to backup %s: %w", id, err)
		}
		for _, e := range events {
			b = domain.EvolveBackup(b, e)
		}
		return b, res.Position, nil
	}
	return domain.Backup{}, eventstore.Position{}, ErrContention
}

// RequestBackup snapshots one of the account's servers; the snapshot itself
// is taken by the background work.
func (s *Service) RequestBackup(ctx context.Context, accountID, serverID string, meta eventstore.Metadata) (string, error) {
	st, err := s.Account(ctx, accountID)
	if err != nil {
		return "", err
	}
	if st.Suspended {
		return "", domain.ErrAccountSuspended
	}
	srv, ok := st.Server(serverID)
	if !ok {
		return "", fmt.Errorf("server %s: %w", serverID, domain.ErrNotFound)
	}
	id := uuid.NewString()
	_, pos, err := s.execBackup(ctx, id, domain.RequestBackup{BackupID: id, AccountID: accountID, Server: srv}, meta)
	if err != nil {
		return "", err
	}
	s.Kick()
	return id, s.WaitFor(ctx, pos)
}

// RestoreBackup deploys a new server from an AVAILABLE backup: a deploy like
// any other, with the same limit, balance rule and idempotency.
func (s *Service) RestoreBackup(ctx context.Context, accountID, backupID string, idem Idempotency, meta eventstore.Metadata) (DeployResult, error) {
	b, _, err := s.loadBackup(ctx, backupID)
	if err != nil {
		return DeployResult{}, err
	}
	if _, err := domain.DecideBackup(b, domain.CheckRestore{AccountID: accountID}, s.clock.Now()); err != nil {
		return DeployResult{}, err
	}
	specs, err := s.specs([]ServerRequest{{Label: b.Label, Plan: b.Plan, Region: b.Region}}, b.ID)
	if err != nil {
		return DeployResult{}, err
	}
	res, err := s.deploy(ctx, accountID, specs, false, idem, meta)
	if err != nil || res.Replayed {
		return res, err
	}
	if _, _, err := s.execBackup(ctx, backupID, domain.RecordRestore{ServerID: res.ServerIDs[0]}, meta); err != nil {
		s.log.Error("restore deployed but not recorded on the backup", "backup", backupID, "server", res.ServerIDs[0], "err", err)
	}
	return res, nil
}

// DeleteBackup deletes one of the account's backups.
func (s *Service) DeleteBackup(ctx context.Context, accountID, backupID string, meta eventstore.Metadata) error {
	st, err := s.Account(ctx, accountID)
	if err != nil {
		return err
	}
	if st.Suspended {
		return domain.ErrAccountSuspended
	}
	b, pos, err := s.execBackup(ctx, backupID, domain.DeleteBackup{AccountID: accountID}, meta)
	if err != nil {
		return err
	}
	s.dropSnapshot(ctx, b)
	return s.WaitFor(ctx, pos)
}

func (s *Service) dropSnapshot(ctx context.Context, b domain.Backup) {
	if b.SnapshotID == "" {
		return
	}
	if err := s.cloud.DeleteSnapshot(ctx, b.SnapshotID); err != nil && !errors.Is(err, domain.ErrNoInstance) {
		s.log.Warn("could not delete snapshot", "backup", b.ID, "snapshot", b.SnapshotID, "err", err)
	}
}

// workBackup takes a pending snapshot (looking it up by tag first, so a crash
// never takes two) and expires a backup whose retention ran out.
func (s *Service) workBackup(ctx context.Context, id string) error {
	b, _, err := s.loadBackup(ctx, id)
	if err != nil {
		return err
	}
	meta := metaFor("backups")
	now := s.clock.Now()
	if !now.Before(b.ExpiresAt) {
		b, _, err = s.execBackup(ctx, id, domain.ExpireBackup{}, meta)
		if err != nil {
			return err
		}
		s.dropSnapshot(ctx, b)
		return nil
	}
	if b.Status != domain.BackupPending {
		return nil
	}
	snap, err := s.cloud.FindSnapshot(ctx, id)
	if errors.Is(err, domain.ErrNoInstance) {
		snap, err = s.cloud.CreateSnapshot(ctx, b.InstanceID, id)
		if errors.Is(err, domain.ErrNoInstance) {
			_, _, err = s.execBackup(ctx, id, domain.FailBackup{Reason: "the server was gone before the snapshot could be taken"}, meta)
			return err
		}
	}
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	switch snap.Status {
	case domain.SnapshotComplete:
		_, _, err = s.execBackup(ctx, id, domain.CompleteBackup{SnapshotID: snap.ID}, meta)
	case domain.SnapshotError:
		_, _, err = s.execBackup(ctx, id, domain.FailBackup{Reason: snap.Error}, meta)
	}
	return err
}
