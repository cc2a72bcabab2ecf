package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// Created is what a request created, and whether it was a retry answered
// with what its first try created (Replayed).
type Created struct {
	ID       string
	Replayed bool
	Written
}

// RequestBackup snapshots one of the account's servers; the snapshot itself
// is taken by the background work. A keyed request claims its key on the
// account, naming the backup's id, before the backup's own stream is
// started: a retry finds the claim and answers that backup (starting it,
// after a crash between the two, under the same id, so never twice).
func (s *Service) RequestBackup(ctx context.Context, accountID, serverID string, idem Idempotency, meta eventstore.Metadata) (Created, error) {
	st, err := s.account(ctx, accountID)
	if err != nil {
		return Created{}, err
	}
	if err := st.CheckActive(); err != nil {
		return Created{}, err
	}
	srv, ok := st.Server(serverID)
	if !ok {
		return Created{}, fmt.Errorf("server %s: %w", serverID, domain.ErrNotFound)
	}
	cmd := domain.RequestBackup{BackupID: uuid.NewString(), AccountID: accountID, Server: srv}
	// A request the backup rules refuse leaves its key unclaimed.
	if replay, err := s.replayOf(ctx, accountID, idem); err != nil {
		return Created{}, err
	} else if !replay {
		if _, err := domain.DecideBackup(domain.Backup{}, cmd, s.Now(accountID)); err != nil {
			return Created{}, err
		}
	}
	id, replayed, err := s.claim(ctx, accountID, idem, cmd.BackupID, meta)
	if err != nil {
		return Created{}, err
	}
	cmd.BackupID = id
	started := func() (Created, bool, error) {
		b, err := s.Backups.Load(ctx, id)
		if err != nil || !b.State.Exists() {
			return Created{}, false, err
		}
		return Created{ID: id, Replayed: true, Written: Written{b.Position}}, true, s.WaitFor(ctx, b.Position)
	}
	if replayed {
		if c, ok, err := started(); ok || err != nil {
			return c, err
		}
	}
	d, err := s.Backups.Run(ctx, id, cmd, meta)
	if err != nil && idem.Key != "" {
		// A retry started it meanwhile, under this claim.
		if c, ok, lerr := started(); ok || lerr != nil {
			c.Replayed = replayed
			return c, lerr
		}
	}
	if err != nil {
		return Created{}, err
	}
	s.kick()
	return Created{ID: id, Replayed: replayed, Written: Written{d.Position}}, s.WaitFor(ctx, d.Position)
}

// RestoreBackup deploys a new server from an AVAILABLE backup: a deploy like
// any other, with the same limit, balance rule and idempotency.
func (s *Service) RestoreBackup(ctx context.Context, accountID, backupID string, keys ServerRequest, idem Idempotency, meta eventstore.Metadata) (Deployed, error) {
	// A retry is answered before the backup is looked at: it may have
	// expired or been deleted since.
	if replay, err := s.replayOf(ctx, accountID, idem); err != nil || replay {
		if err != nil {
			return Deployed{}, err
		}
		return s.deploy(ctx, accountID, nil, false, idem, meta)
	}
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
