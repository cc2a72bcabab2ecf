package work

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// Kick asks the background loop for a pass as soon as possible.
func (s *Worker) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run does the background work every interval (and when kicked) until ctx
// ends, in rounds (see runRound), while this process leads it (see
// Leadership): provisioning, destroying, billing, backups. A process that
// does not lead asks again at every interval, so it takes over within one
// when the leader dies.
func (s *Worker) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		held := s.lead.Held(ctx)
		s.obs.Leading(held)
		if held {
			if err := s.runRound(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("background work", "err", err)
			}
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
// so no account with work is missed. It does not ask the Leadership: it is
// for tests and tools that drive the work themselves.
func (s *Worker) RunDue(ctx context.Context) error {
	s.work.Lock()
	defer s.work.Unlock()
	start := time.Now()
	err := s.runDue(ctx)
	s.obs.Round(time.Since(start), s.found(), err)
	return err
}

func (s *Worker) runDue(ctx context.Context) error {
	_, err := s.pass(ctx)
	return err
}

// found is what the last pass found to do.
func (s *Worker) found() Backlog {
	s.backlogMu.Lock()
	defer s.backlogMu.Unlock()
	return s.backlog
}

// clockOffset is how far the service clock is ahead of wall time (zero for
// a clock that cannot move).
func (s *Worker) clockOffset() time.Duration {
	if c, ok := s.clock.(interface{ Offset() time.Duration }); ok {
		return c.Offset()
	}
	return 0
}

// runRound is one round of the leader's work: a pass, or, the first time
// after the sandbox clock moved, passes while they change the log (at most
// 4: each can make more work due, as a destroy requested in the first
// completes a few seconds later). A round that looked at everything is
// recorded (Leadership.Completed) for processes waiting on a clock advance.
func (s *Worker) runRound(ctx context.Context) (err error) {
	s.work.Lock()
	defer s.work.Unlock()
	began := time.Now()
	defer func() { s.obs.Round(time.Since(began), s.found(), err) }()
	start, err := s.store.Head(ctx)
	if err != nil {
		return err
	}
	version := s.syncClock(ctx)
	off := s.clockOffset()
	n := 1
	if off != s.round.ClockOffset || version != s.clockVersion {
		n = 4
	}
	complete, err := s.passes(ctx, n)
	if complete {
		s.completed(ctx, Round{Head: start, ClockOffset: off})
		s.clockVersion = version
	}
	return err
}

// completed records a round of work, for processes waiting on a clock
// advance; a failure only delays them until the next round. A round that
// says nothing new (an idle leader) is not recorded again.
func (s *Worker) completed(ctx context.Context, r Round) {
	if r == s.round {
		return
	}
	if err := s.lead.Completed(ctx, r); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("could not record a round of background work", "err", err)
		}
		return
	}
	s.round = r
}

// passes runs up to n passes, stopping after one that leaves the log as it
// found it. complete is false when a pass could not look at everything.
func (s *Worker) passes(ctx context.Context, n int) (complete bool, err error) {
	var errs []error
	for range n {
		before, err := s.store.Head(ctx)
		if err != nil {
			return false, err
		}
		ok, err := s.pass(ctx)
		if !ok {
			return false, errors.Join(append(errs, err)...)
		}
		if err != nil {
			errs = append(errs, err)
		}
		after, err := s.store.Head(ctx)
		if err != nil {
			return false, errors.Join(append(errs, err)...)
		}
		if after == before {
			break
		}
	}
	return true, errors.Join(errs...)
}

// pass does everything due by now, once: the accounts and backups the
// due-time index says are due (every live account and open backup the read
// model lists when the index is not in use: Follow is not running, or has
// not caught up), many at once (Config.Concurrency) so that their appends
// share commits. complete is false when it could not look at everything
// (the log or the read model failed); otherwise err joins the failures of
// single accounts and backups.
func (s *Worker) pass(ctx context.Context) (complete bool, err error) {
	s.backlogMu.Lock()
	s.backlog = Backlog{}
	s.backlogMu.Unlock()
	head, err := s.store.Head(ctx)
	if err != nil {
		return false, err
	}
	if err := s.proj.WaitFor(ctx, head, s.cfg.ReadTimeout); err != nil {
		return false, err
	}
	indexed := s.follower.wait(ctx, head, s.cfg.ReadTimeout)
	var accounts, backups []string
	if indexed {
		now := s.clock.Now()
		accounts, backups = s.dueAccounts.take(now), s.dueBackups.take(now)
	} else {
		if accounts, err = s.read.WorkAccounts(ctx); err != nil {
			return false, err
		}
		if backups, err = s.read.OpenBackups(ctx); err != nil {
			return false, err
		}
	}
	errs := s.each(ctx, accounts, func(id string) error {
		if err := s.workDueAccount(ctx, id, indexed); err != nil {
			return fmt.Errorf("account %s: %w", id, err)
		}
		return nil
	})
	errs = append(errs, s.each(ctx, backups, func(id string) error {
		if err := s.workDueBackup(ctx, id, indexed); err != nil {
			return fmt.Errorf("backup %s: %w", id, err)
		}
		return nil
	})...)
	errs = append(errs, s.reconcileTopups(ctx))
	return true, errors.Join(errs...)
}

// each runs fn for every id, Config.Concurrency at a time, and returns
// the errors.
func (s *Worker) each(ctx context.Context, ids []string, fn func(id string) error) []error {
	var (
		next atomic.Int64
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range min(s.cfg.Concurrency, len(ids)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(ids); i = int(next.Add(1)) - 1 {
				if err := fn(ids[i]); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// workDueAccount works an account a pass found due, and, when it was taken
// from the due-time index, tells the index when it is due next (at once
// after a failure).
func (s *Worker) workDueAccount(ctx context.Context, id string, indexed bool) error {
	unlock := s.lockAccount(id)
	defer unlock()
	if err := ctx.Err(); err != nil {
		if indexed {
			s.dueAccounts.release(id)
		}
		return err
	}
	d, err := s.workAccountLocked(ctx, id)
	if indexed {
		switch {
		case !d.State.Registered && (err == nil || errors.Is(err, domain.ErrNotFound)):
			// No account (yet): its first event makes it due again.
			s.dueAccounts.done(id, "", d.Version, time.Time{}, true)
			err = nil
		case err != nil:
			s.dueAccounts.release(id)
		default:
			next, live := s.nextDue(d.State, s.now(id))
			s.dueAccounts.done(id, "", d.Version, next.Add(-s.ownOffset(id)), !live)
		}
	}
	return err
}

// workDueBackup is workDueAccount for a backup.
func (s *Worker) workDueBackup(ctx context.Context, id string, indexed bool) error {
	cur, err := s.backups.Load(ctx, id)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if indexed {
			s.dueBackups.release(id)
		}
		return err
	}
	owner := cur.State.AccountID
	unlock := s.lockAccount(owner)
	defer unlock()
	err = s.workBackupLocked(ctx, id)
	if !indexed {
		return err
	}
	if err == nil {
		cur, err = s.backups.Load(ctx, id)
	}
	if err != nil {
		s.dueBackups.release(id)
		return err
	}
	b := cur.State
	switch b.Status {
	case domain.BackupPending:
		s.dueBackups.done(id, owner, cur.Version, s.now(owner).Add(s.cfg.PollInterval).Add(-s.ownOffset(owner)), false)
	case domain.BackupAvailable, domain.BackupError:
		s.dueBackups.done(id, owner, cur.Version, b.ExpiresAt.Add(-s.ownOffset(owner)), false)
	default:
		s.dueBackups.done(id, owner, cur.Version, time.Time{}, true)
	}
	return nil
}

// nextDue is when, in the account's time, the account has work next, as
// its state at now says (the work mirrors workAccountLocked): at once for
// a server in transition (at the next poll), the end of a billable
// server's paid hour, a suspended server's retention. live is false when
// no server may ever need work again (until an event says otherwise).
func (s *Worker) nextDue(a domain.Account, now time.Time) (next time.Time, live bool) {
	soon := now.Add(s.cfg.PollInterval)
	for _, id := range a.ServerOrder {
		srv := a.Servers[id]
		if !srv.Live() {
			continue
		}
		live = true
		var at time.Time
		switch {
		case srv.Status == domain.StatusProvisioning && srv.InstanceID == "",
			srv.Status == domain.StatusSuspended && srv.InstanceID != "" && !srv.Halted,
			srv.Halted && (srv.Status == domain.StatusActive || srv.Status == domain.StatusProvisioning):
			at = now
		case !srv.Activated && srv.InstanceID != "" &&
			(srv.Status == domain.StatusProvisioning || srv.Status == domain.StatusSuspended),
			srv.Status == domain.StatusDestroying:
			at = soon
		case srv.Status == domain.StatusSuspended:
			at = srv.SuspendedAt.Add(domain.SuspendedRetention)
		case srv.Billable():
			at = srv.BilledUntil
		default:
			continue
		}
		if srv.Billable() && srv.BilledUntil.Before(at) {
			at = srv.BilledUntil
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next, live
}

// step runs a command of the background work; a state error means the world
// moved on (the customer destroyed the server meanwhile) and is not a failure.
func (s *Worker) step(ctx context.Context, accountID string, cmd domain.Command, causation string) error {
	_, err := s.try(ctx, accountID, cmd, causation)
	return err
}

// try is step, reporting whether the command was accepted rather than
// skipped because the world moved on (or another worker got there first).
func (s *Worker) try(ctx context.Context, accountID string, cmd domain.Command, causation string) (bool, error) {
	_, err := s.accounts.Run(ctx, accountID, cmd, metaFor(causation))
	if errors.Is(err, domain.ErrInvalidState) {
		s.log.Info("background step skipped", "account", accountID, "reason", err)
		return false, nil
	}
	return err == nil, err
}

// othersAttempt reports whether srv's (of the account) last provisioning attempt was started
// by another worker (or by this process before it restarted) less than
// Config.ProvisionLease ago: that worker's call to the provider may still be
// under way, so the instance is neither looked up nor created again yet.
// This process's own attempts are over by the time it looks again (passes
// do not overlap), so it retries them at once.
func (s *Worker) othersAttempt(accountID string, srv domain.Server) bool {
	if s.cfg.ProvisionLease <= 0 || srv.Attempts == 0 {
		return false
	}
	s.mu.Lock()
	mine := s.started[srv.ID] == srv.Attempts
	s.mu.Unlock()
	return !mine && s.now(accountID).Before(srv.ProvisionStartedAt.Add(s.cfg.ProvisionLease))
}

// setStarted remembers the provisioning attempt this process started on a
// server (0 forgets the server).
func (s *Worker) setStarted(serverID string, attempt int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if attempt == 0 {
		delete(s.started, serverID)
		return
	}
	s.started[serverID] = attempt
}

// workAccountLocked does the account's work due by its time, its work
// lock held, and returns the account as the last step left it.
func (s *Worker) workAccountLocked(ctx context.Context, id string) (app.Decided[domain.Account], error) {
	cur, err := s.accounts.Load(ctx, id)
	if err != nil {
		return cur, err
	}
	st := cur.State
	now := s.now(id)
	s.backlogMu.Lock()
	s.backlog.account(st, now)
	s.backlogMu.Unlock()
	var errs []error
	for _, sid := range st.ServerOrder {
		srv := *st.Servers[sid]
		var err error
		switch {
		case srv.Status == domain.StatusProvisioning && srv.InstanceID == "":
			err = s.provision(ctx, id, srv)
		case srv.Status == domain.StatusSuspended && !now.Before(srv.SuspendedAt.Add(domain.SuspendedRetention)):
			err = s.step(ctx, id, domain.ExpireSuspended{ServerID: srv.ID}, "suspension")
		case srv.Status == domain.StatusSuspended && srv.InstanceID != "" && !srv.Halted:
			err = s.halt(ctx, id, srv)
		case srv.Halted && (srv.Status == domain.StatusActive || srv.Status == domain.StatusProvisioning):
			err = s.start(ctx, id, srv)
		case !srv.Activated && srv.InstanceID != "" &&
			(srv.Status == domain.StatusProvisioning || srv.Status == domain.StatusSuspended):
			if s.due(srv.ID, now) {
				err = s.pollInstance(ctx, id, srv)
			}
		case srv.Status == domain.StatusDestroying:
			if s.due(srv.ID, now) {
				err = s.destroyInstance(ctx, id, srv)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("server %s: %w", sid, err))
		}
	}
	d, err := s.accounts.Run(ctx, id, domain.Settle{}, metaFor("biller"))
	if err != nil {
		errs = append(errs, err)
	}
	return d, errors.Join(errs...)
}

// provision creates the server's instance: the intent is recorded first, and
// after any failed or interrupted attempt the provider is asked whether the
// instance exists before it is asked to create it again. The attempt is
// named in StartProvision, so a worker that decided on a stale state is
// refused rather than creating a second instance, and another worker's
// attempt is left alone for the lease (othersAttempt).
func (s *Worker) provision(ctx context.Context, accountID string, srv domain.Server) error {
	if srv.Attempts > 0 {
		if s.othersAttempt(accountID, srv) {
			return nil
		}
		inst, err := s.cloud.FindInstance(ctx, srv.ID)
		if err == nil {
			return s.step(ctx, accountID, domain.RecordInstance{ServerID: srv.ID, InstanceID: inst.ID}, "provisioner")
		}
		if !errors.Is(err, domain.ErrNoInstance) {
			return fmt.Errorf("look up instance: %w", err)
		}
		if srv.Attempts >= s.cfg.ProvisionAttempts {
			s.setStarted(srv.ID, 0)
			return s.step(ctx, accountID, domain.FailDeploy{ServerID: srv.ID,
				Reason: fmt.Sprintf("provider did not create the instance after %d attempts", srv.Attempts)}, "provisioner")
		}
	}
	attempt := srv.Attempts + 1
	if ok, err := s.try(ctx, accountID, domain.StartProvision{ServerID: srv.ID, Attempt: attempt}, "provisioner"); !ok {
		return err
	}
	s.setStarted(srv.ID, attempt)
	spec := domain.InstanceSpec{Tag: srv.ID, Label: srv.Label, Plan: srv.Plan, Region: srv.Region, Account: accountID}
	for _, k := range srv.SSHKeys {
		spec.SSHKeys = append(spec.SSHKeys, k.Key)
	}
	if srv.BackupID != "" {
		b, err := s.backups.Load(ctx, srv.BackupID)
		if err != nil {
			return err
		}
		spec.SnapshotID = b.State.SnapshotID
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	inst, err := s.cloud.CreateInstance(cctx, spec)
	cancel()
	var refused *domain.RefusedError
	switch {
	case errors.As(err, &refused):
		// Nothing was created and asking again will not help: the deploy
		// has failed for good, with the provider's reason.
		s.setStarted(srv.ID, 0)
		s.log.Warn("the provider refused a deploy", "server", srv.ID, "plan", srv.Plan, "region", srv.Region, "reason", refused.Reason)
		return s.step(ctx, accountID, domain.FailDeploy{ServerID: srv.ID, Reason: refused.Reason}, "provisioner")
	case errors.Is(err, domain.ErrUnauthorized):
		// Nothing was created; an operator must fix the credentials. The
		// lookup by tag on the next pass is harmless.
		return fmt.Errorf("create instance (attempt %d): %w", attempt, err)
	case err != nil:
		// An unknown outcome: the next pass looks the instance up before
		// trying again.
		return fmt.Errorf("create instance (attempt %d): %w", attempt, err)
	}
	sealed := ""
	if inst.RootPassword != "" && s.sealer != nil {
		if sealed, err = s.sealer.Seal(inst.RootPassword); err != nil {
			return fmt.Errorf("seal the root password: %w", err)
		}
	}
	recorded, err := s.try(ctx, accountID, domain.RecordInstance{ServerID: srv.ID, InstanceID: inst.ID, SealedRootPassword: sealed}, "provisioner")
	if err != nil {
		return err
	}
	s.setStarted(srv.ID, 0)
	if !recorded {
		s.dropOrphan(ctx, accountID, srv.ID, inst.ID)
	}
	return nil
}

// dropOrphan deletes an instance this worker created that its server did
// not take: the server was destroyed meanwhile, or took another worker's
// instance (this worker was paused past the lease). Nothing would ever
// delete it otherwise.
func (s *Worker) dropOrphan(ctx context.Context, accountID, serverID, instanceID string) {
	cur, err := s.accounts.Load(ctx, accountID)
	if err != nil {
		s.log.Warn("could not check an instance the server did not take", "instance", instanceID, "err", err)
		return
	}
	if srv, ok := cur.State.Server(serverID); ok && srv.InstanceID == instanceID {
		return // another worker found it by its tag and recorded it
	}
	s.log.Warn("deleting an instance its server did not take", "server", serverID, "instance", instanceID)
	if err := s.cloud.DeleteInstance(ctx, instanceID); err != nil && !errors.Is(err, domain.ErrNoInstance) {
		s.log.Warn("could not delete an instance its server did not take", "instance", instanceID, "err", err)
	}
}

// due reports whether the provider should be asked about a server (or a
// backup) at now, its account's time, and if so notes that it is being
// asked.
func (s *Worker) due(serverID string, now time.Time) bool {
	if s.cfg.PollInterval <= 0 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if last, ok := s.polled[serverID]; ok && now.Before(last.Add(s.cfg.PollInterval)) {
		return false
	}
	s.polled[serverID] = now
	return true
}

// halt powers off the instance of a suspended server ("off but
// recoverable"); halting is idempotent, so an unknown outcome is retried.
func (s *Worker) halt(ctx context.Context, accountID string, srv domain.Server) error {
	err := s.cloud.HaltInstance(ctx, srv.InstanceID)
	if errors.Is(err, domain.ErrNoInstance) {
		s.log.Warn("a suspended server's instance is gone", "server", srv.ID, "instance", srv.InstanceID)
		err = nil
	}
	if err != nil {
		return fmt.Errorf("halt instance: %w", err)
	}
	return s.step(ctx, accountID, domain.RecordHalt{ServerID: srv.ID}, "suspension")
}

// start powers on the instance of a resumed server.
func (s *Worker) start(ctx context.Context, accountID string, srv domain.Server) error {
	err := s.cloud.StartInstance(ctx, srv.InstanceID)
	if errors.Is(err, domain.ErrNoInstance) {
		s.log.Warn("a resumed server's instance is gone", "server", srv.ID, "instance", srv.InstanceID)
		err = nil
	}
	if err != nil {
		return fmt.Errorf("start instance: %w", err)
	}
	return s.step(ctx, accountID, domain.RecordStart{ServerID: srv.ID}, "suspension")
}

func (s *Worker) pollInstance(ctx context.Context, accountID string, srv domain.Server) error {
	inst, err := s.cloud.Instance(ctx, srv.InstanceID)
	switch {
	case errors.Is(err, domain.ErrNoInstance):
		return s.step(ctx, accountID, domain.FailDeploy{ServerID: srv.ID, Reason: "instance vanished at the provider"}, "provisioner")
	case err != nil:
		return fmt.Errorf("poll instance: %w", err)
	}
	switch inst.Status {
	case domain.InstanceActive:
		return s.step(ctx, accountID, domain.Activate{ServerID: srv.ID, IPv4: inst.IPv4, HostKeys: inst.HostKeyFingerprints}, "provisioner")
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

func (s *Worker) destroyInstance(ctx context.Context, accountID string, srv domain.Server) error {
	if srv.InstanceID == "" {
		if srv.Attempts == 0 {
			return s.step(ctx, accountID, domain.CompleteDestroy{ServerID: srv.ID}, "destroyer")
		}
		if s.othersAttempt(accountID, srv) {
			return nil // the instance may still appear: destroy it then
		}
		s.setStarted(srv.ID, 0)
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
