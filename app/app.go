// Package app is the application layer: it turns requests into domain
// commands, loads the aggregate from the event store, decides, appends with
// optimistic concurrency (retrying on conflicts), and runs the background
// work (provisioning, destroying, billing, backups) against the provider.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// Errors the API branches on, beyond the domain's.
var (
	ErrBadCredentials = errors.New("invalid email or password")
	ErrInvalidEmail   = errors.New("invalid email address")
	ErrWeakPassword   = errors.New("password must be 8 to 256 characters")
	ErrUnknownPlan    = errors.New("unknown plan")
	ErrUnknownRegion  = errors.New("unknown region")
	ErrContention     = errors.New("too much contention on the account, retry")
)

// Config is the part of the service configuration the application uses.
type Config struct {
	// SignupCredit is credited to each new account.
	SignupCredit domain.Money
	// ServerLimit is a new account's limit of live servers.
	ServerLimit int
	// ProvisionAttempts is how many times the provider is asked to create an
	// instance before the deploy is failed (and refunded).
	ProvisionAttempts int
	// ReadTimeout bounds how long a write waits for the read model to show it.
	ReadTimeout time.Duration
	// ProvisionLease is how long, in sandbox (service clock) time, a
	// provisioning attempt started by another worker is left alone before
	// this one looks the instance up and retries: the other worker's call to
	// the provider may still be under way. Zero retries at once, which is
	// right only when no other worker can exist (the embedded store).
	ProvisionLease time.Duration
}

// Service is the application. It is safe for concurrent use.
type Service struct {
	store   eventstore.Store
	read    projections.Reader
	proj    *projections.Projector
	clock   domain.Clock
	cloud   domain.Provider
	pay     domain.Payments
	hasher  *Hasher
	catalog domain.Catalog
	cfg     Config
	log     *slog.Logger

	mu    sync.Mutex
	cache map[string]cachedAccount

	// lead says whether this process does the background work.
	lead Leadership
	// started holds, per server, the provisioning attempt this process
	// started last (guarded by mu): its own attempts it may retry at once.
	started map[string]int

	// work serialises passes of background work in this process, and
	// guards the fields below.
	work sync.Mutex
	// round is the last round of work this process recorded.
	round Round
	// clockNext is the version of the sandbox clock stream to read next.
	clockNext uint64
	// kick asks the background loop for a pass now.
	kick chan struct{}
}

type cachedAccount struct {
	state   domain.Account
	version int64
	// position is where the event at version is in the global log: what a
	// read waits for to show everything done on the account.
	position eventstore.Position
}

// Deps are the adapters a Service runs on.
type Deps struct {
	Store     eventstore.Store
	Read      projections.Reader
	Projector *projections.Projector
	Clock     domain.Clock
	Cloud     domain.Provider
	Payments  domain.Payments
	Hasher    *Hasher
	Catalog   domain.Catalog
	Log       *slog.Logger
	// Leadership elects the process that does the background work; nil
	// means SoleWorker (this process is the only one).
	Leadership Leadership
}

// New returns a Service.
func New(d Deps, cfg Config) *Service {
	if cfg.ProvisionAttempts <= 0 {
		cfg.ProvisionAttempts = 5
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	lead := d.Leadership
	if lead == nil {
		lead = SoleWorker{}
	}
	return &Service{store: d.Store, read: d.Read, proj: d.Projector, clock: d.Clock, cloud: d.Cloud,
		pay: d.Payments, hasher: d.Hasher, catalog: d.Catalog, cfg: cfg, log: d.Log,
		cache: map[string]cachedAccount{}, lead: lead, started: map[string]int{}, kick: make(chan struct{}, 1)}
}

// Catalog is what can be deployed.
func (s *Service) Catalog() domain.Catalog { return s.catalog }

// Now is the service's clock.
func (s *Service) Now() time.Time { return s.clock.Now() }

// Reader is the read side.
func (s *Service) Reader() projections.Reader { return s.read }

// accountNamespace derives account ids from emails: one email, one stream,
// so registering is a single append that fails if the stream exists.
var accountNamespace = uuid.MustParse("9d3c8f5e-2a41-4b7f-8e0d-6c1a5b2f9e47")

// AccountID is the id of the account registered with email.
func AccountID(email string) string {
	return uuid.NewSHA1(accountNamespace, []byte(email)).String()
}

// NormalizeEmail checks an email address and lower-cases it.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if len(e) > 254 || e == "" {
		return "", ErrInvalidEmail
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Address != e || addr.Name != "" {
		return "", ErrInvalidEmail
	}
	at := strings.LastIndexByte(e, '@')
	if at < 1 || !strings.Contains(e[at+1:], ".") || strings.ContainsAny(e, " \"()<>[]\\,;:") {
		return "", ErrInvalidEmail
	}
	return e, nil
}

// load returns the account's current state and stream version, reading only
// the events the cache has not seen.
func (s *Service) load(ctx context.Context, id string) (domain.Account, int64, error) {
	c, err := s.loadCached(ctx, id)
	return c.state, c.version, err
}

// loadCached is load with the position of the account's last event.
func (s *Service) loadCached(ctx context.Context, id string) (cachedAccount, error) {
	s.mu.Lock()
	c, ok := s.cache[id]
	s.mu.Unlock()
	if !ok {
		c = cachedAccount{state: domain.NewAccount(id), version: eventstore.NoStream}
	}
	events, err := s.store.ReadStream(ctx, domain.AccountStream(id), uint64(c.version+1))
	if err != nil {
		return cachedAccount{}, fmt.Errorf("load account %s: %w", id, err)
	}
	if len(events) == 0 {
		return c, nil
	}
	st := c.state.Clone()
	for _, ev := range events {
		e, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			return cachedAccount{}, fmt.Errorf("load account %s: %w", id, err)
		}
		st = domain.Evolve(st, e)
	}
	last := events[len(events)-1]
	c = cachedAccount{state: st, version: int64(last.Version), position: last.Position}
	s.remember(id, c)
	return c, nil
}

func (s *Service) remember(id string, c cachedAccount) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.cache[id]; !ok || old.version < c.version {
		s.cache[id] = c
	}
}

func proposals(events []domain.Event, meta eventstore.Metadata) ([]eventstore.Proposed, error) {
	out := make([]eventstore.Proposed, len(events))
	for i, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
		}
		out[i] = eventstore.Proposed{ID: uuid.New(), Type: e.EventType(), Data: b, Meta: meta}
	}
	return out, nil
}

// execAccount decides cmd on the account and appends the result, deciding
// again on a fresh state whenever another writer got there first.
func (s *Service) execAccount(ctx context.Context, id string, cmd domain.Command, meta eventstore.Metadata) (domain.Account, eventstore.Position, error) {
	for attempt := 0; attempt < 64; attempt++ {
		st, version, err := s.load(ctx, id)
		if err != nil {
			return domain.Account{}, eventstore.Position{}, err
		}
		now := s.clock.Now()
		events, err := domain.Decide(st, cmd, now)
		if err != nil {
			return st, eventstore.Position{}, err
		}
		if len(events) == 0 {
			return st, eventstore.Position{}, nil
		}
		props, err := proposals(events, meta)
		if err != nil {
			return st, eventstore.Position{}, err
		}
		res, err := s.store.Append(ctx, domain.AccountStream(id), version, props)
		if errors.Is(err, eventstore.ErrWrongVersion) {
			// Another writer changed the account: back off a little, with
			// jitter so contenders spread out, and decide again.
			wait := time.Duration(rand.IntN(1+attempt*2)) * time.Millisecond
			select {
			case <-ctx.Done():
				return st, eventstore.Position{}, ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		if err != nil {
			return st, eventstore.Position{}, fmt.Errorf("append to account %s: %w", id, err)
		}
		st = st.Clone()
		for _, e := range events {
			st = domain.Evolve(st, e)
		}
		s.remember(id, cachedAccount{state: st, version: int64(res.Version), position: res.Position})
		return st, res.Position, nil
	}
	return domain.Account{}, eventstore.Position{}, ErrContention
}

// WaitFor waits until the read model shows the write at pos.
func (s *Service) WaitFor(ctx context.Context, pos eventstore.Position) error {
	if pos.IsZero() {
		return nil
	}
	return s.proj.WaitFor(ctx, pos, s.cfg.ReadTimeout)
}

// AwaitAccount waits, at most the read timeout, until the read model has
// applied the account's last event, so that a read shows every write made
// on the account, also by another API process sharing the event store and
// the read model. The position comes from the event store (the stream read
// on from the cached version), not from what this process remembers of its
// own writes.
func (s *Service) AwaitAccount(ctx context.Context, accountID string) error {
	c, err := s.loadCached(ctx, accountID)
	if err != nil {
		return err
	}
	return s.WaitFor(ctx, c.position)
}

// AwaitLog waits, at most the read timeout, until the read model has applied
// the log up to its head now: for reads of what the account's stream does
// not record (its backups, each a stream of its own).
func (s *Service) AwaitLog(ctx context.Context) error {
	head, err := s.store.Head(ctx)
	if err != nil {
		return err
	}
	return s.WaitFor(ctx, head)
}

// Register opens an account and returns its id.
func (s *Service) Register(ctx context.Context, email, password string, meta eventstore.Metadata) (string, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return "", err
	}
	if n := len([]rune(password)); n < 8 || n > 256 {
		return "", ErrWeakPassword
	}
	id := AccountID(email)
	// A cheap check first so a taken email does not cost a hash.
	if st, _, err := s.load(ctx, id); err != nil {
		return "", err
	} else if st.Registered {
		return "", domain.ErrEmailTaken
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return "", err
	}
	meta.Actor = "account:" + id
	_, pos, err := s.execAccount(ctx, id, domain.Register{AccountID: id, Email: email, PasswordHash: hash,
		ServerLimit: s.cfg.ServerLimit, SignupCredit: s.cfg.SignupCredit}, meta)
	if err != nil {
		return "", err
	}
	return id, s.WaitFor(ctx, pos)
}

// Login checks credentials and returns the account id. Unknown email and
// wrong password are the same error, after the same amount of work.
func (s *Service) Login(ctx context.Context, email, password string) (string, error) {
	email, err := NormalizeEmail(email)
	if err != nil || len(password) > 1024 {
		_, _ = s.hasher.Verify(ctx, "", password)
		return "", ErrBadCredentials
	}
	id := AccountID(email)
	c, err := s.loadCached(ctx, id)
	if err != nil {
		return "", err
	}
	ok, err := s.hasher.Verify(ctx, c.state.PasswordHash, password)
	if err != nil {
		return "", err
	}
	if !ok || !c.state.Registered {
		return "", ErrBadCredentials
	}
	// The answer shows the account from the read model: let it catch up
	// with a registration made through another process.
	return id, s.WaitFor(ctx, c.position)
}

// Account returns the account's state from the event store (authoritative).
func (s *Service) Account(ctx context.Context, id string) (domain.Account, error) {
	st, _, err := s.load(ctx, id)
	if err != nil {
		return domain.Account{}, err
	}
	if !st.Registered {
		return domain.Account{}, fmt.Errorf("account %s: %w", id, domain.ErrNotFound)
	}
	return st, nil
}

// ServerRequest is one server to deploy, as the customer asked for it.
type ServerRequest struct {
	Label   string
	Plan    string
	Region  string
	SSHKeys []domain.SSHKey
}

// DeployResult names the servers a deploy accepted.
type DeployResult struct {
	ServerIDs []string
	// Replayed is set when an Idempotency-Key matched an earlier deploy.
	Replayed bool
}

// Idempotency carries a request's Idempotency-Key and a hash of what it asked.
type Idempotency struct {
	Key         string
	RequestHash string
}

func (s *Service) specs(reqs []ServerRequest, backupID string) ([]domain.ServerSpec, error) {
	specs := make([]domain.ServerSpec, len(reqs))
	for i, r := range reqs {
		plan, ok := s.catalog.Plan(r.Plan)
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownPlan, r.Plan)
		}
		if _, ok := s.catalog.Region(r.Region); !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownRegion, r.Region)
		}
		specs[i] = domain.ServerSpec{ID: uuid.NewString(), Label: r.Label, Plan: plan.ID, Region: r.Region,
			HourlyPrice: plan.HourlyPrice, SSHKeys: r.SSHKeys, BackupID: backupID}
	}
	return specs, nil
}

// Deploy accepts servers for the account.
func (s *Service) Deploy(ctx context.Context, accountID string, reqs []ServerRequest, bulk bool, idem Idempotency, meta eventstore.Metadata) (DeployResult, error) {
	specs, err := s.specs(reqs, "")
	if err != nil {
		return DeployResult{}, err
	}
	return s.deploy(ctx, accountID, specs, bulk, idem, meta)
}

func (s *Service) deploy(ctx context.Context, accountID string, specs []domain.ServerSpec, bulk bool, idem Idempotency, meta eventstore.Metadata) (DeployResult, error) {
	_, pos, err := s.execAccount(ctx, accountID, domain.Deploy{Servers: specs, IdempotencyKey: idem.Key,
		RequestHash: idem.RequestHash, Bulk: bulk}, meta)
	var replay *domain.ReplayError
	if errors.As(err, &replay) {
		return DeployResult{ServerIDs: replay.ServerIDs, Replayed: true}, nil
	}
	if err != nil {
		return DeployResult{}, err
	}
	ids := make([]string, len(specs))
	for i, sp := range specs {
		ids[i] = sp.ID
	}
	s.Kick()
	return DeployResult{ServerIDs: ids}, s.WaitFor(ctx, pos)
}

// Destroy has a server destroyed; billing stops now.
func (s *Service) Destroy(ctx context.Context, accountID, serverID string, meta eventstore.Metadata) error {
	_, pos, err := s.execAccount(ctx, accountID, domain.Destroy{ServerID: serverID}, meta)
	if err != nil {
		return err
	}
	s.Kick()
	return s.WaitFor(ctx, pos)
}

// CreateTopup opens a crypto top-up invoice and returns its id.
func (s *Service) CreateTopup(ctx context.Context, accountID string, amount domain.Money, currency string, meta eventstore.Metadata) (string, error) {
	if err := domain.ValidTopupAmount(amount); err != nil {
		return "", err
	}
	st, err := s.Account(ctx, accountID)
	if err != nil {
		return "", err
	}
	if st.Suspended {
		return "", domain.ErrAccountSuspended
	}
	id := uuid.NewString()
	inv, err := s.pay.CreateInvoice(ctx, id, amount, currency)
	if err != nil {
		return "", fmt.Errorf("payment processor: %w", err)
	}
	_, pos, err := s.execAccount(ctx, accountID, domain.CreateTopup{TopupID: id, Amount: amount, Currency: currency,
		PayAddress: inv.PayAddress, ProviderRef: inv.Ref}, meta)
	if err != nil {
		return "", err
	}
	return id, s.WaitFor(ctx, pos)
}

// PayTopup records a confirmed payment and credits the account.
func (s *Service) PayTopup(ctx context.Context, accountID, topupID string, meta eventstore.Metadata) error {
	_, pos, err := s.execAccount(ctx, accountID, domain.PayTopup{TopupID: topupID}, meta)
	if err != nil {
		return err
	}
	return s.WaitFor(ctx, pos)
}

// Admin: operator commands on an account found by email or id.

func (s *Service) resolve(ctx context.Context, who string) (string, error) {
	if _, err := uuid.Parse(who); err == nil {
		return who, nil
	}
	email, err := NormalizeEmail(who)
	if err != nil {
		return "", err
	}
	return AccountID(email), nil
}

// AdminAccount returns the account named by email or id.
func (s *Service) AdminAccount(ctx context.Context, who string) (domain.Account, error) {
	id, err := s.resolve(ctx, who)
	if err != nil {
		return domain.Account{}, err
	}
	return s.Account(ctx, id)
}

// AdminCommand runs an operator command on the account named by email or id.
func (s *Service) AdminCommand(ctx context.Context, who string, cmd domain.Command, meta eventstore.Metadata) (domain.Account, error) {
	id, err := s.resolve(ctx, who)
	if err != nil {
		return domain.Account{}, err
	}
	st, pos, err := s.execAccount(ctx, id, cmd, meta)
	if err != nil {
		return domain.Account{}, err
	}
	return st, s.WaitFor(ctx, pos)
}
