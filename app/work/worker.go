// Package work is the background work of CryptoVPS: process managers that
// react to what the log says is due, ask the cloud provider, and record
// the outcome as commands through the same runners the API uses.
// Provisioning (intent recorded first, reconcile by tag), destroying,
// billing and suspension, backups and their expiry, and the sandbox clock.
// One process leads the work at a time (Leadership).
package work

import (
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// Config tunes the background work.
type Config struct {
	// ProvisionAttempts is how many times the provider is asked to create an
	// instance before the deploy is failed (and refunded).
	ProvisionAttempts int
	// ReadTimeout bounds how long a pass waits for the read model to catch
	// up with the log.
	ReadTimeout time.Duration
	// ProvisionLease is how long, in sandbox (service clock) time, a
	// provisioning attempt started by another worker is left alone before
	// this one looks the instance up and retries: the other worker's call to
	// the provider may still be under way. Zero retries at once, which is
	// right only when no other worker can exist (the embedded store).
	ProvisionLease time.Duration
	// PollInterval is how often, in service-clock time, the provider is
	// asked about one server in transition (provisioning): a real cloud is
	// not asked once a second per server. Zero asks at every pass (the
	// sandbox, whose clock jumps).
	PollInterval time.Duration
	// Concurrency is how many accounts (and backups) a pass works at
	// once, so that their appends share the event store's commits
	// (64 when zero). Each account's own work stays in order.
	Concurrency int
}

// Deps are what the work runs on.
type Deps struct {
	Accounts  *app.Accounts
	Backups   *app.Backups
	Clocks    *app.Clocks
	Store     eventstore.Store
	Read      projections.Reader
	Projector *projections.Projector
	Clock     domain.Clock
	// Sandbox is the movable clock in sandbox mode (nil otherwise): what
	// AdvanceClock moves.
	Sandbox MovableClock
	Cloud   domain.Provider
	Log     *slog.Logger
	// Sealer seals the root passwords the provider sets before they are
	// recorded; nil records none.
	Sealer *app.Sealer
	// Leadership elects the process that does the work; nil means
	// SoleWorker (this process is the only one).
	Leadership Leadership

	// Payments is the processor whose invoices the top-up reconcile loop
	// re-reads (topups.go); nil reconciles nothing.
	Payments domain.Payments
	// Observer is told how the work goes (metrics); nil: nobody.
	Observer Observer
	// LocalProjector says that Projector applies every event of the log in
	// this process (its read model is this process's alone, as the
	// embedded one): Follow then takes the events from it (Observe)
	// instead of reading and decoding the log a second time.
	LocalProjector bool
}

// Worker does the background work. It is safe for concurrent use.
type Worker struct {
	accounts *app.Accounts
	backups  *app.Backups
	clocks   *app.Clocks
	store    eventstore.Store
	read     projections.Reader
	proj     *projections.Projector
	clock    domain.Clock
	sandbox  MovableClock
	cloud    domain.Provider
	sealer   *app.Sealer
	log      *slog.Logger
	lead     Leadership
	obs      Observer
	cfg      Config

	// mu guards started (per server, the provisioning attempt this process
	// started last, which it may retry at once) and polled (when this
	// process last asked the provider about a server).
	mu      sync.Mutex
	started map[string]int
	polled  map[string]time.Time

	// work serialises passes of background work in this process, and
	// guards round.
	work sync.Mutex
	// accountLocks serialise the work on one account in this process (a
	// pass and an account's own clock move), striped by account id.
	accountLocks [64]sync.Mutex
	// round is the last round of work this process recorded, and
	// clockVersion the clock stream's version that round began with.
	round        Round
	clockVersion int64
	// backlog is what the current pass has found to do so far, guarded
	// by backlogMu (a pass works accounts concurrently).
	backlogMu sync.Mutex
	backlog   Backlog
	// dueAccounts and dueBackups say what is due when, fed by Follow
	// (follower says how far): a pass looks only at what is due.
	dueAccounts, dueBackups *dueIndex
	follower                follower
	// local: the index is fed by the projector (Deps.LocalProjector).
	local bool
	// kick asks the background loop for a pass now.
	kick chan struct{}
	// topups is the top-up reconcile loop's state (topups.go).
	topups topupWork
}

// lockAccount takes the account's work lock and returns its release.
func (s *Worker) lockAccount(id string) (unlock func()) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	mu := &s.accountLocks[h.Sum32()%uint32(len(s.accountLocks))]
	mu.Lock()
	return mu.Unlock
}

// now is the account's time (its own sandbox clock, or the service's).
func (s *Worker) now(accountID string) time.Time {
	return domain.AccountNow(s.clock, accountID)
}

// ownOffset is how far the account's own sandbox clock is ahead of the
// shared one: what turns an instant of its time into one of the shared
// clock the due-time index orders by.
func (s *Worker) ownOffset(accountID string) time.Duration {
	if s.sandbox == nil || accountID == "" {
		return 0
	}
	return s.sandbox.AccountOffset(accountID)
}

// New returns a Worker.
func New(d Deps, cfg Config) *Worker {
	if cfg.ProvisionAttempts <= 0 {
		cfg.ProvisionAttempts = 5
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 5 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 64
	}
	lead := d.Leadership
	if lead == nil {
		lead = SoleWorker{}
	}
	var obs Observer = noObserver{}
	if d.Observer != nil {
		obs = d.Observer
	}
	w := &Worker{accounts: d.Accounts, backups: d.Backups, clocks: d.Clocks, store: d.Store, read: d.Read,
		proj: d.Projector, clock: d.Clock, sandbox: d.Sandbox, cloud: d.Cloud, sealer: d.Sealer, log: d.Log,
		lead: lead, obs: obs, cfg: cfg, started: map[string]int{}, polled: map[string]time.Time{}, kick: make(chan struct{}, 1),
		dueAccounts: newDueIndex(), dueBackups: newDueIndex()}
	w.topups.pay = d.Payments
	if d.LocalProjector && d.Projector != nil {
		w.local = true
		d.Projector.Observe(w.observe)
	}
	return w
}
