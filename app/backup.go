package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// RequestBackup snapshots one of the account's servers; the snapshot itself
// is taken by the background work.
func (s *Service) RequestBackup(ctx context.Context, accountID, serverID string, meta eventstore.Metadata) (string, Written, error) {
	st, err := s.account(ctx, accountID)
	if err != nil {
		return "", Written{}, err
	}
	if err := st.CheckActive(); err != nil {
		return "", Written{}, err
	}
	srv, ok := st.Server(serverID)
	if !ok {
		return "", Written{}, fmt.Errorf("server %s: %w", serverID, domain.ErrNotFound)
	}
	id := uuid.NewString()
	d, err := s.Backups.Run(ctx, id, domain.RequestBackup{BackupID: id, AccountID: accountID, Server: srv}, meta)
	if err != nil {
		return "", Written{}, err
	}
	s.kick()
	return id, Written{d.Position}, s.WaitFor(ctx, d.Position)
}

// RestoreBackup deploys a new server from an AVAILABLE backup: a deploy like
// any other, with the same limit, balance rule and idempotency.
func (s *Service) RestoreBackup(ctx context.Context, accountID, backupID string, keys ServerRequest, idem Idempotency, meta eventstore.Metadata) (Deployed, error) {
	st, err := s.account(ctx, accountID)
	if err != nil {
		return Deployed{}, err
	}
	if err := st.CheckActive(); err != nil {
		return Deployed{}, err
	}
	b, err := s.Backups.Load(ctx, backupID)
	if err != nil {
		return Deployed{}, err
	}
	if _, err := domain.DecideBackup(b.State, domain.CheckRestore{AccountID: accountID}, s.Now(accountID)); err != nil {
		return Deployed{}, err
	}
	req := []ServerRequest{{Label: b.State.Label, Plan: b.State.Plan, Region: b.State.Region, SSHKeys: keys.SSHKeys, SSHKeyIDs: keys.SSHKeyIDs}}
	if err := s.resolveKeys(ctx, accountID, req); err != nil {
		return Deployed{}, err
	}
	specs, err := s.specs(ctx, req, b.State.ID)
	if err != nil {
		return Deployed{}, err
	}
	res, err := s.deploy(ctx, accountID, specs, false, idem, meta)
	if err != nil || res.Replayed {
		return res, err
	}
	if _, err := s.Backups.Run(ctx, backupID, domain.RecordRestore{ServerID: res.Servers[0].ID}, meta); err != nil {
		s.Log.Error("restore deployed but not recorded on the backup", "backup", backupID, "server", res.Servers[0].ID, "err", err)
	}
	return res, nil
}

// DeleteBackup deletes one of the account's backups.
func (s *Service) DeleteBackup(ctx context.Context, accountID, backupID string, meta eventstore.Metadata) (Written, error) {
	st, err := s.account(ctx, accountID)
	if err != nil {
		return Written{}, err
	}
	if err := st.CheckActive(); err != nil {
		return Written{}, err
	}
	d, err := s.Backups.Run(ctx, backupID, domain.DeleteBackup{AccountID: accountID}, meta)
	if err != nil {
		return Written{}, err
	}
	DropSnapshot(ctx, s.Cloud, s.Log, d.State)
	return Written{d.Position}, s.WaitFor(ctx, d.Position)
}

// DropSnapshot deletes a backup's snapshot at the provider, if it has one;
// a failure is logged, not returned: the backup is gone for the customer
// either way.
func DropSnapshot(ctx context.Context, cloud domain.Provider, log interface {
	Warn(msg string, args ...any)
}, b domain.Backup) {
	if b.SnapshotID == "" {
		return
	}
	if err := cloud.DeleteSnapshot(ctx, b.SnapshotID); err != nil && !errors.Is(err, domain.ErrNoInstance) {
		log.Warn("could not delete snapshot", "backup", b.ID, "snapshot", b.SnapshotID, "err", err)
	}
}
