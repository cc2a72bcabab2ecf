package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// Kick asks the background loop for a pass as soon as possible.
func (s *Service) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run does the background work every interval (and when kicked) until ctx
// ends: provisioning, destroying, billing, backups.
func (s *Service) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.RunDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("background work", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-s.kick:
		}
	}
}

var workMeta = eventstore.Metadata{Actor: "system"}

func metaFor(causation string) eventstore.Metadata {
	m := workMeta
	m.Causation = causation
	return m
}

// RunDue does everything due by now, once: the read model is caught up first
// so no account with work is missed.
func (s *Service) RunDue(ctx context.Context) error {
	s.work.Lock()
	defer s.work.Unlock()
	return s.runDue(ctx)
}

func (s *Service) runDue(ctx context.Context) error {
	head, err := s.store.Head(ctx)
	if err != nil {
		return err
	}
	if err := s.WaitFor(ctx, head); err != nil {
		return err
	}
	accounts, err := s.read.WorkAccounts(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range accounts {
		if err := s.workAccount(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("account %s: %w", id, err))
		}
	}
	backups, err := s.read.OpenBackups(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range backups {
		if err := s.workBackup(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("backup %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// step runs a command of the background work; a state error means the world
// moved on (the customer destroyed the server meanwhile) and is not a failure.
func (s *Service) step(ctx context.Context, accountID string, cmd domain.Command, causation string) error {
	_, _, err := s.execAccount(ctx, accountID, cmd, metaFor(causation))
	var se *domain.StateError
	if errors.As(err, &se) {
		s.log.Info("background step skipped", "account", accountID, "reason", err)
		return nil
	}
	return err
}

func (s *Service) workAccount(ctx context.Context, id string) error {
	st, _, err := s.load(ctx, id)
	if err != nil {
		return err
	}
	var errs []error
	for _, sid := range st.ServerOrder {
		srv := *st.Servers[sid]
		var err error
		switch {
		case srv.Status == domain.StatusProvisioning && srv.InstanceID == "":
			err = s.provision(ctx, id, srv)
		case !srv.Activated && srv.InstanceID != "" &&
			(srv.Status == domain.StatusProvisioning || srv.Status == domain.StatusSuspended):
			err = s.pollInstance(ctx, id, srv)
		case srv.Status == domain.StatusDestroying:
			err = s.destroyInstance(ctx, id, srv)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("server %s: %w", sid, err))
		}
	}
	if err := s.step(ctx, id, domain.Settle{}, "biller"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// provision creates the server's instance: the intent is recorded first, and
// after any failed or interrupted attempt the provider is asked whether the
// instance exists before it is asked to create it again.
func (s *Service) provision(ctx context.Context, accountID string, srv domain.Server) error {
	if srv.Attempts > 0 {
		inst, err := s.cloud.FindInstance(ctx, srv.ID)
		if err == nil {
			return s.step(ctx, accountID, domain.RecordInstance{ServerID: srv.ID, InstanceID: inst.ID}, "provisioner")
		}
		if !errors.Is(err, domain.ErrNoInstance) {
			return fmt.Errorf("look up instance: %w", err)
		}
		if srv.Attempts >= s.cfg.ProvisionAttempts {
			return s.step(ctx, accountID, domain.FailDeploy{ServerID: srv.ID,
				Reason: fmt.Sprintf("provider did not create the instance after %d attempts", srv.Attempts)}, "provisioner")
		}
	}
	if err := s.step(ctx, accountID, domain.StartProvision{ServerID: srv.ID}, "provisioner"); err != nil {
		return err
	}
	spec := domain.InstanceSpec{Tag: srv.ID, Label: srv.Label, Plan: srv.Plan, Region: srv.Region}
	for _, k := range srv.SSHKeys {
		spec.SSHKeys = append(spec.SSHKeys, k.Key)
	}
	if srv.BackupID != "" {
		b, _, err := s.loadBackup(ctx, srv.BackupID)
		if err != nil {
			return err
		}
		spec.SnapshotID = b.SnapshotID
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	inst, err := s.cloud.CreateInstance(cctx, spec)
	cancel()
	if err != nil {
		// The next pass looks the instance up before trying again.
		return fmt.Errorf("create instance (attempt %d): %w", srv.Attempts+1, err)
	}
	return s.step(ctx, accountID, domain.RecordInstance{ServerID: srv.ID, InstanceID: inst.ID}, "provisioner")
}

func (s *Service) pollInstance(ctx context.Context, accountID string, srv domain.Server) error {
	inst, err := s.cloud.Instance(ctx, srv.InstanceID)
	switch {
	case errors.Is(err, domain.ErrNoInstance):
		return s.step(ctx, accountID, domain.FailDeploy{ServerID: srv.ID, Reason: "instance vanished at the provider"}, "provisioner")
	case err != nil:
		return fmt.Errorf("poll instance: %w", err)
	}
	switch inst.Status {
	case domain.InstanceActive:
		return s.step(ctx, accountID, domain.Activate{ServerID: srv.ID, IPv4: inst.IPv4}, "provisioner")
	case domain.InstanceError:
		if err := s.step(ctx, accountID, domain.FailDeploy{ServerID: srv.ID, Reason: inst.Error}, "provisioner"); err != nil {
			return err
		}
		if err := s.cloud.DeleteInstance(ctx, inst.ID); err != nil && !errors.Is(err, domain.ErrNoInstance) {
			s.log.Warn("could not clean up failed instance", "instance", inst.ID, "err", err)
		}
	}
	return nil
}

func (s *Service) destroyInstance(ctx context.Context, accountID string, srv domain.Server) error {
	if srv.InstanceID == "" {
		if srv.Attempts == 0 {
			return s.step(ctx, accountID, domain.CompleteDestroy{ServerID: srv.ID}, "destroyer")
		}
		inst, err := s.cloud.FindInstance(ctx, srv.ID)
		switch {
		case errors.Is(err, domain.ErrNoInstance):
			return s.step(ctx, accountID, domain.CompleteDestroy{ServerID: srv.ID}, "destroyer")
		case err != nil:
			return fmt.Errorf("look up instance: %w", err)
		}
		if err := s.step(ctx, accountID, domain.RecordInstance{ServerID: srv.ID, InstanceID: inst.ID}, "destroyer"); err != nil {
			return err
		}
		srv.InstanceID = inst.ID
	}
	inst, err := s.cloud.Instance(ctx, srv.InstanceID)
	switch {
	case errors.Is(err, domain.ErrNoInstance):
		return s.step(ctx, accountID, domain.CompleteDestroy{ServerID: srv.ID}, "destroyer")
	case err != nil:
		return fmt.Errorf("poll instance: %w", err)
	case inst.Status != domain.InstanceDestroying:
		if err := s.cloud.DeleteInstance(ctx, inst.ID); err != nil && !errors.Is(err, domain.ErrNoInstance) {
			return fmt.Errorf("delete instance: %w", err)
		}
	}
	return nil
}
