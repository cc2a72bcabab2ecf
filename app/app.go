// Package app is the application layer: one small handler per use case,
// each turning a request into a domain command run by the one Runner (load,
// decide, append with optimistic concurrency), and answering with what was
// decided and where it stands in the log. The background work is package
// app/work; the finance tools are app/audit and app/replay.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// Config is the part of the service configuration the use cases need.
type Config struct {
	// SignupCredit is credited to each new account.
	SignupCredit domain.Money
	// ServerLimit is a new account's limit of live servers.
	ServerLimit int
	// ReadTimeout bounds how long a write waits for the read model to show it.
	ReadTimeout time.Duration
}

// Deps are the adapters and runners the use cases work with.
type Deps struct {
	Accounts  *Accounts
	Backups   *Backups
	Projector *projections.Projector
	Cloud     domain.Provider
	Payments  domain.Payments
	Hasher    *Hasher
	Catalog   domain.Catalog
	Clock     domain.Clock
	Log       *slog.Logger
	// Sealer opens the secrets sealed in the log (root passwords).
	Sealer *Sealer
	// Personal seals and opens personal data with per-account keys, and
	// finds accounts by email.
	Personal *Personal
	// Work is told when a command leaves background work to do; nil
	// tells nobody.
	Work interface{ Kick() }
	// Wall is the real time, which ages Idempotency-Keys (the service
	// clock may be the sandbox's, which an advance moves by days); nil is
	// WallClock.
	Wall domain.Clock

	// Credentials keeps the password and API-key hashes, outside the log.
	Credentials domain.Credentials
}

// Service runs the customers' and operators' commands. It is safe for
// concurrent use.
type Service struct {
	Deps
	cfg Config
}

// New returns a Service.
func New(d Deps, cfg Config) *Service {
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if d.Wall == nil {
		d.Wall = WallClock{}
	}
	return &Service{Deps: d, cfg: cfg}
}

func (s *Service) kick() {
	if s.Work != nil {
		s.Work.Kick()
	}
}

// WaitFor waits, at most the read timeout, until the read model shows the
// log up to pos. When it does not, the error says where the write is
// (NotVisibleError), so the client can read it later from any process.
func (s *Service) WaitFor(ctx context.Context, pos eventstore.Position) error {
	// Almost always the read model is there already: answer without the
	// timers a wait needs (this runs on every authenticated request).
	if pos.IsZero() || !s.Projector.Applied().Less(pos) {
		return nil
	}
	if err := s.Projector.WaitFor(ctx, pos, s.cfg.ReadTimeout); err != nil {
		return &NotVisibleError{Position: pos, Err: err}
	}
	return nil
}

// NotVisibleError is a write that is in the log at Position but not yet in
// the read model: it stands, and a read given Position shows it once the
// read model gets there.
type NotVisibleError struct {
	Position eventstore.Position
	Err      error
}

func (e *NotVisibleError) Error() string { return e.Err.Error() }
func (e *NotVisibleError) Unwrap() error { return e.Err }

// Known is the log position of the account's last event as this process
// knows it (its own writes, its background work's), read from memory: what
// a read waits for to show everything this process did on the account.
func (s *Service) Known(accountID string) eventstore.Position {
	return s.Accounts.Known(accountID)
}

// Written is where a command's events landed: what a read of its result
// waits for.
type Written struct {
	Position eventstore.Position
}

// Register opens an account and returns its id.
func (s *Service) Register(ctx context.Context, email, password string, meta eventstore.Metadata) (string, Written, error) {
	email, err := domain.NormalizeEmail(email)
	err = errors.Join(err, domain.CheckPassword("password", password))
	if err != nil {
		return "", Written{}, mergeInvalid(err)
	}
	id, err := s.newAccountID(ctx, email)
	if err != nil {
		return "", Written{}, err
	}
	// A cheap check first so a taken email does not cost a hash.
	if cur, err := s.Accounts.Load(ctx, id); err != nil {
		return "", Written{}, err
	} else if cur.State.Registered {
		return "", Written{}, domain.ErrEmailTaken
	}
	hash, err := s.Hasher.Hash(ctx, password)
	if err != nil {
		return "", Written{}, err
	}
	sealed, err := s.Personal.SealEmail(ctx, id, email)
	if err != nil {
		return "", Written{}, err
	}
	meta.Actor = "account:" + id
	// The hash is stored first, under a ref of this registration's own,
	// and the registration names it: cut in between, nothing names the
	// hash; and of two registrations of one email, the one the log takes
	// names its own.
	ref := uuid.NewString()
	if err := s.Credentials.PutPassword(ctx, id, ref, hash); err != nil {
		return "", Written{}, fmt.Errorf("store the password of %s: %w", id, err)
	}
	d, err := s.Accounts.Run(ctx, id, domain.Register{AccountID: id, SealedEmail: sealed, CredentialRef: ref,
		ServerLimit: s.cfg.ServerLimit, SignupCredit: s.cfg.SignupCredit}, meta)
	if err != nil {
		s.forgetPassword(ref)
		return "", Written{}, err
	}
	return id, Written{d.Position}, s.WaitFor(ctx, d.Position)
}

// mergeInvalid folds several validation errors into one naming every field,
// so a client learns all that is wrong with a request at once.
func mergeInvalid(err error) error {
	fields := map[string]string{}
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var de *domain.Error
		if errors.As(e, &de) {
			for k, v := range de.Fields {
				fields[k] = v
			}
		}
	}
	walk(err)
	if len(fields) == 0 {
		return err
	}
	return domain.Invalid(fields)
}

// Authenticated is who checked credentials speak for: the account, and the
// token version its access tokens are issued at.
type Authenticated struct {
	AccountID    string
	TokenVersion int
}

// Login checks credentials and returns the account. Unknown email and
// wrong password are the same error, after the same amount of work.
func (s *Service) Login(ctx context.Context, email, password string) (Authenticated, error) {
	id, err := s.loginAccount(ctx, email)
	if errors.Is(err, domain.ErrNotFound) || len(password) > 1024 {
		_, _ = s.Hasher.Verify(ctx, "", password)
		return Authenticated{}, domain.ErrBadCredentials
	}
	if err != nil {
		return Authenticated{}, err
	}
	cur, err := s.Accounts.Load(ctx, id)
	if err != nil {
		return Authenticated{}, err
	}
	hash, err := s.passwordHash(ctx, cur.State)
	if err != nil {
		return Authenticated{}, err
	}
	ok, err := s.Hasher.Verify(ctx, hash, password)
	if err != nil {
		return Authenticated{}, err
	}
	if !ok || !cur.State.Registered || cur.State.Forgotten {
		return Authenticated{}, domain.ErrBadCredentials
	}
	// The answer shows the account from the read model: let it catch up
	// with a registration made through another process.
	return Authenticated{AccountID: id, TokenVersion: cur.State.TokenVersion}, s.WaitFor(ctx, cur.Position)
}

// account is the account's authoritative state, from the event store.
func (s *Service) account(ctx context.Context, id string) (domain.Account, error) {
	cur, err := s.Accounts.Load(ctx, id)
	if err != nil {
		return domain.Account{}, err
	}
	if !cur.State.Registered {
		return domain.Account{}, fmt.Errorf("account %s: %w", id, domain.ErrNotFound)
	}
	return cur.State, nil
}

// ServerRequest is one server to deploy, as the customer asked for it: its
// keys given inline, or by the ids of keys stored on the account (none of
// either: every stored key).
type ServerRequest struct {
	Label     string
	Plan      string
	Region    string
	SSHKeys   []domain.SSHKey
	SSHKeyIDs []string
}

// Deployed is what a deploy accepted: its servers as they were accepted.
type Deployed struct {
	Servers []domain.Server
	// Replayed is set when an Idempotency-Key matched an earlier deploy.
	Replayed bool
	Written
}

// specs prices the requested servers from the catalog; an unknown plan or
// region is refused naming the field, and so is a plan the cloud cannot
// provide in the region now (sold out), before anything is charged.
func (s *Service) specs(ctx context.Context, reqs []ServerRequest, backupID string) ([]domain.ServerSpec, error) {
	specs := make([]domain.ServerSpec, len(reqs))
	for i, r := range reqs {
		spec, err := s.Catalog.Spec(r.Plan, r.Region)
		if err != nil {
			return nil, err
		}
		spec.ID, spec.Label, spec.SSHKeys, spec.BackupID = uuid.NewString(), r.Label, r.SSHKeys, backupID
		specs[i] = spec
	}
	// One bulk asks for one plan in one region: one question to the cloud.
	if len(specs) > 0 {
		if err := s.available(ctx, specs[0].Plan, specs[0].Region); err != nil {
			return nil, err
		}
	}
	return specs, nil
}

// CheckAvailable refuses (naming planId) a plan the cloud says it cannot
// provide in the region now.
func (s *Service) CheckAvailable(ctx context.Context, plan, region string) error {
	return s.available(ctx, plan, region)
}

// available refuses a plan the cloud says it cannot provide in the region.
func (s *Service) available(ctx context.Context, plan, region string) error {
	plans, err := s.Cloud.AvailablePlans(ctx, region)
	if err != nil {
		return fmt.Errorf("%w: cannot ask the cloud whether %s is available in %s: %v", domain.ErrBusy, plan, region, err)
	}
	if !slices.Contains(plans, plan) {
		return domain.InvalidField("planId", fmt.Sprintf("plan %s is not available in region %s right now: see GET /regions for what is", plan, region))
	}
	return nil
}

// Availability lists the plans the cloud can provide in each region now.
func (s *Service) Availability(ctx context.Context) (map[string][]string, error) {
	out := make(map[string][]string, len(s.Catalog.Regions))
	for _, r := range s.Catalog.Regions {
		plans, err := s.Cloud.AvailablePlans(ctx, r.ID)
		if err != nil {
			return nil, fmt.Errorf("%w: availability in %s: %v", domain.ErrBusy, r.ID, err)
		}
		out[r.ID] = plans
	}
	return out, nil
}

// RevealRootPassword shows the owner the root password the cloud set for a
// server: once (the showing is recorded before it is shown, so two requests
// cannot both see it) and only within domain.RootPasswordWindow. ok is false
// when there is nothing (more) to show. A password this process cannot open
// (its --secrets-key is not the one that sealed it) is not shown and stays
// showable, and the misconfiguration is logged.
func (s *Service) RevealRootPassword(ctx context.Context, accountID, serverID string, meta eventstore.Metadata) (password string, ok bool, err error) {
	cur, err := s.Accounts.Load(ctx, accountID)
	if err != nil {
		return "", false, err
	}
	srv, found := cur.State.Server(serverID)
	if !found || !srv.RootPasswordShowable(s.Now(accountID)) || s.Sealer == nil {
		return "", false, nil
	}
	plain, err := s.Sealer.Open(srv.SealedRootPassword)
	if err != nil {
		s.Log.Error("cannot open a sealed root password: is --secrets-key the same on every process?", "server", serverID, "err", err)
		return "", false, nil
	}
	if _, err := s.Accounts.Run(ctx, accountID, domain.ShowRootPassword{ServerID: serverID}, meta); errors.Is(err, domain.ErrInvalidState) {
		return "", false, nil // another request showed it first
	} else if err != nil {
		return "", false, err
	}
	return plain, true, nil
}

// Deploy accepts servers for the account.
func (s *Service) Deploy(ctx context.Context, accountID string, reqs []ServerRequest, bulk bool, idem Idempotency, meta eventstore.Metadata) (Deployed, error) {
	// A retry is answered before the catalog and the cloud are asked: the
	// plan may be sold out now, and a retry must not be refused for it.
	if replay, err := s.replayOf(ctx, accountID, idem); err != nil || replay {
		if err != nil {
			return Deployed{}, err
		}
		return s.deploy(ctx, accountID, nil, bulk, idem, meta)
	}
	// Unknown key ids and a plan the cloud cannot provide are named in
	// one 400.
	kerr := s.resolveKeys(ctx, accountID, reqs)
	if kerr != nil && !errors.Is(kerr, domain.ErrInvalid) {
		return Deployed{}, kerr
	}
	specs, err := s.specs(ctx, reqs, "")
	if err := errors.Join(kerr, err); err != nil {
		return Deployed{}, mergeInvalid(err)
	}
	return s.deploy(ctx, accountID, specs, bulk, idem, meta)
}

func (s *Service) deploy(ctx context.Context, accountID string, specs []domain.ServerSpec, bulk bool, idem Idempotency, meta eventstore.Metadata) (Deployed, error) {
	d, err := s.Accounts.Run(ctx, accountID, domain.Deploy{Servers: specs, Idem: s.idem(idem), Bulk: bulk}, meta)
	ids := make([]string, len(specs))
	for i, sp := range specs {
		ids[i] = sp.ID
	}
	var replay *domain.ReplayError
	replayed := errors.As(err, &replay)
	if replayed {
		ids, err = replay.ServerIDs, nil
	}
	if err != nil {
		return Deployed{}, err
	}
	out := Deployed{Replayed: replayed, Written: Written{d.Position}}
	for _, id := range ids {
		srv, ok := d.State.Server(id)
		if !ok {
			return Deployed{}, fmt.Errorf("accepted server %s missing from account state", id)
		}
		out.Servers = append(out.Servers, srv)
	}
	if !replayed {
		s.kick()
	}
	return out, s.WaitFor(ctx, d.Position)
}

// Destroy has a server destroyed; billing stops now.
func (s *Service) Destroy(ctx context.Context, accountID, serverID string, meta eventstore.Metadata) (Written, error) {
	d, err := s.Accounts.Run(ctx, accountID, domain.Destroy{ServerID: serverID}, meta)
	if err != nil {
		return Written{}, err
	}
	s.kick()
	return Written{d.Position}, s.WaitFor(ctx, d.Position)
}

// Operator commands, on an account named by email or id.

func (s *Service) resolve(ctx context.Context, who string) (string, error) {
	if _, err := uuid.Parse(who); err == nil {
		return who, nil
	}
	email, err := domain.NormalizeEmail(who)
	if err != nil {
		return "", err
	}
	return s.Personal.Resolve(ctx, email, s.loadAccount)
}

// AdminAccount returns the account named by email or id.
func (s *Service) AdminAccount(ctx context.Context, who string) (domain.Account, error) {
	id, err := s.resolve(ctx, who)
	if err != nil {
		return domain.Account{}, err
	}
	return s.account(ctx, id)
}

// AdminCommand runs an operator command on the account named by email or id.
func (s *Service) AdminCommand(ctx context.Context, who string, cmd domain.Command, meta eventstore.Metadata) (domain.Account, error) {
	id, err := s.resolve(ctx, who)
	if err != nil {
		return domain.Account{}, err
	}
	d, err := s.Accounts.Run(ctx, id, cmd, meta)
	if err != nil {
		return domain.Account{}, err
	}
	return d.State, s.WaitFor(ctx, d.Position)
}

// CheckActive refuses, for an account on an abuse hold, what the domain
// refuses it: a sandbox clock move is such a change.
func (s *Service) CheckActive(ctx context.Context, accountID string) error {
	st, err := s.account(ctx, accountID)
	if err != nil {
		return err
	}
	return st.CheckActive()
}

// Now is the account's time: its own sandbox clock (which the account can
// move) or the service's.
func (s *Service) Now(accountID string) time.Time {
	return domain.AccountNow(s.Clock, accountID)
}

// WallClock is the real time: the service clock outside the sandbox.
type WallClock struct{}

// Now is the wall time, in UTC, to the millisecond like the sandbox clock.
func (WallClock) Now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// RequestLimit asks the operators for a higher server limit. A retry of a
// keyed request answers the request it repeats (replayed).
func (s *Service) RequestLimit(ctx context.Context, accountID string, limit int, reason string, idem Idempotency, meta eventstore.Metadata) (domain.LimitRequest, bool, Written, error) {
	id := uuid.NewString()
	d, err := s.Accounts.Run(ctx, accountID, domain.RequestLimit{RequestID: id, ServerLimit: limit, Reason: reason, Idem: s.idem(idem)}, meta)
	var replay *domain.ReplayError
	replayed := errors.As(err, &replay)
	if replayed {
		id, err = replay.Ref, nil
	}
	if err != nil {
		return domain.LimitRequest{}, false, Written{}, err
	}
	r, ok := d.State.LimitRequests[id]
	if !ok {
		return domain.LimitRequest{}, false, Written{}, fmt.Errorf("limit request %s missing from account state", id)
	}
	return r, replayed, Written{d.Position}, s.WaitFor(ctx, d.Position)
}

// resolveKeys turns each request's stored key ids (or none: every stored
// key) into the keys to install.
func (s *Service) resolveKeys(ctx context.Context, accountID string, reqs []ServerRequest) error {
	cur, err := s.Accounts.Load(ctx, accountID)
	if err != nil {
		return err
	}
	for i, r := range reqs {
		keys, err := cur.State.DeployKeys(r.SSHKeys, r.SSHKeyIDs)
		if err != nil {
			return err
		}
		reqs[i].SSHKeys, reqs[i].SSHKeyIDs = keys, nil
	}
	return nil
}

// AddSSHKey stores a public key on the account, for its deploys. A retry
// of a keyed request answers the key it stored (replayed).
func (s *Service) AddSSHKey(ctx context.Context, accountID, name string, key domain.SSHKey, idem Idempotency, meta eventstore.Metadata) (domain.StoredKey, bool, Written, error) {
	id := uuid.NewString()
	d, err := s.Accounts.Run(ctx, accountID, domain.AddSSHKey{KeyID: id, Name: name, Key: key, Idem: s.idem(idem)}, meta)
	var replay *domain.ReplayError
	replayed := errors.As(err, &replay)
	if replayed {
		id, err = replay.Ref, nil
	}
	if err != nil {
		return domain.StoredKey{}, false, Written{}, err
	}
	k, ok := d.State.Keys[id]
	if !ok {
		// Only a retry whose first answer was not kept, of a key deleted
		// since, gets here.
		return domain.StoredKey{}, false, Written{}, fmt.Errorf("key %s, stored by this Idempotency-Key, was deleted since: %w", id, domain.ErrNotFound)
	}
	return k, replayed, Written{d.Position}, s.WaitFor(ctx, d.Position)
}

// RemoveSSHKey deletes a stored key; servers that have it keep it.
func (s *Service) RemoveSSHKey(ctx context.Context, accountID, keyID string, meta eventstore.Metadata) (Written, error) {
	d, err := s.Accounts.Run(ctx, accountID, domain.RemoveSSHKey{KeyID: keyID}, meta)
	if err != nil {
		return Written{}, err
	}
	return Written{d.Position}, s.WaitFor(ctx, d.Position)
}

// Problems adds to fields what rule finds wrong with a request on the
// account as it stands (a field named already keeps its problem), so that
// the one 400 of a request names everything wrong with it, the problems
// only the account's state shows included. It writes nothing.
func (s *Service) Problems(ctx context.Context, accountID string, fields map[string]string, rule func(domain.Account) error) {
	st, err := s.account(ctx, accountID)
	if err != nil {
		return
	}
	var de *domain.Error
	if err := rule(st); errors.As(err, &de) && de.Code == domain.CodeInvalid {
		for f, p := range de.Fields {
			if _, named := fields[f]; !named {
				fields[f] = p
			}
		}
	}
}
