package domain

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Account is the state of an account stream: the customer, its ledger
// balance, its servers and top-ups.
type Account struct {
	ID string
	// Email is the email as the events hold it (sealed, or plain in an
	// account not migrated yet); empty once Forgotten.
	Email      StoredEmail
	Registered bool
	// Forgotten: the owner or an operator had the account forgotten; its
	// data key is destroyed.
	Forgotten     bool
	Suspended     bool
	SuspendReason string
	ServerLimit   int
	CreatedAt     time.Time
	// Balance is the sum of the postings on the customer's ledger account.
	Balance Money
	// LastHash is the hash of the last ledger transaction: the next chains to it.
	LastHash    string
	Servers     map[string]*Server
	ServerOrder []string
	Topups      map[string]*Topup
	TopupOrder  []string
	// Idempotency are the Idempotency-Keys the account remembers, oldest
	// first in IdempotencyOrder.
	Idempotency      map[string]IdempotencyRecord
	IdempotencyOrder []string
	// LimitRequests are the account's asks for a higher limit, in
	// LimitOrder.
	LimitRequests map[string]LimitRequest
	LimitOrder    []string
	// Keys are the SSH keys stored on the account, in KeyOrder.
	Keys     map[string]StoredKey
	KeyOrder []string
	// CredentialRef is where the credential store keeps the account's
	// password hash ("" for an account an older build registered: its
	// hash is under LegacyRef, moved there from LegacyPasswordHash, the
	// copy that build wrote into the log, which is ignored from then on).
	CredentialRef      string
	LegacyPasswordHash string
	// TokenVersion counts password changes: an access token carries the
	// version it was issued at and is void once it moved on.
	TokenVersion int
	// APIKeys are the account's API keys, in APIKeyOrder.
	APIKeys     map[string]APIKey
	APIKeyOrder []string
}

// NewAccount is the state of an account stream with no events.
func NewAccount(id string) Account {
	return Account{
		ID: id, Servers: map[string]*Server{}, Topups: map[string]*Topup{},
		Idempotency: map[string]IdempotencyRecord{}, LimitRequests: map[string]LimitRequest{},
		Keys: map[string]StoredKey{}, APIKeys: map[string]APIKey{},
	}
}

// Clone is a deep copy, so a decision can fold tentative events without
// touching the state it was given.
func (a Account) Clone() Account {
	c := a
	c.Servers = make(map[string]*Server, len(a.Servers))
	for id, s := range a.Servers {
		cp := *s
		c.Servers[id] = &cp
	}
	c.ServerOrder = append([]string(nil), a.ServerOrder...)
	c.Topups = make(map[string]*Topup, len(a.Topups))
	for id, t := range a.Topups {
		cp := *t
		c.Topups[id] = &cp
	}
	c.TopupOrder = append([]string(nil), a.TopupOrder...)
	c.Idempotency = maps.Clone(a.Idempotency)
	if c.Idempotency == nil {
		c.Idempotency = map[string]IdempotencyRecord{}
	}
	c.IdempotencyOrder = slices.Clone(a.IdempotencyOrder)
	c.LimitRequests = maps.Clone(a.LimitRequests)
	if c.LimitRequests == nil {
		c.LimitRequests = map[string]LimitRequest{}
	}
	c.LimitOrder = slices.Clone(a.LimitOrder)
	c.Keys = maps.Clone(a.Keys)
	if c.Keys == nil {
		c.Keys = map[string]StoredKey{}
	}
	c.KeyOrder = slices.Clone(a.KeyOrder)
	c.APIKeys = maps.Clone(a.APIKeys)
	if c.APIKeys == nil {
		c.APIKeys = map[string]APIKey{}
	}
	c.APIKeyOrder = slices.Clone(a.APIKeyOrder)
	return c
}

// LiveServers counts the servers that hold a slot of the limit (HoldsSlot).
func (a Account) LiveServers() int {
	n := 0
	for _, s := range a.Servers {
		if s.HoldsSlot() {
			n++
		}
	}
	return n
}

// HourlySpend is the sum of the hourly prices of the servers billed now.
func (a Account) HourlySpend() Money {
	sum := Zero()
	for _, id := range a.ServerOrder {
		if s := a.Servers[id]; s.Billable() {
			sum = sum.Add(s.HourlyPrice)
		}
	}
	return sum
}

// Server returns one server of the account.
func (a Account) Server(id string) (Server, bool) {
	s, ok := a.Servers[id]
	if !ok {
		return Server{}, false
	}
	return *s, true
}

// Evolve folds one event into the account. It takes ownership of a (its maps
// are updated in place); Clone first to keep the original.
func Evolve(a Account, e Event) Account {
	switch e := e.(type) {
	case AccountRegistered:
		a.ID, a.Email, a.LegacyPasswordHash = e.AccountID, StoredEmail{Plain: e.Email, Sealed: e.SealedEmail}, e.PasswordHash
		a.CredentialRef = e.CredentialRef
		a.Registered, a.ServerLimit, a.CreatedAt = true, e.ServerLimit, e.At
	case AccountEmailSealed:
		a.Email = StoredEmail{Sealed: e.SealedEmail}
	case AccountForgotten:
		a.Forgotten, a.Email, a.LegacyPasswordHash, a.CredentialRef = true, StoredEmail{}, "", ""
	case AccountSuspended:
		a.Suspended, a.SuspendReason = true, e.Reason
	case AccountUnsuspended:
		a.Suspended, a.SuspendReason = false, ""
	case ServerLimitSet:
		a.ServerLimit = e.Limit
	case TopupCreated:
		a.Topups[e.TopupID] = &Topup{
			ID: e.TopupID, Amount: e.Amount, Currency: e.Currency, PayAddress: e.PayAddress,
			ProviderRef: e.ProviderRef, Status: TopupStatusPending, CreatedAt: e.At,
		}
		a.TopupOrder = append(a.TopupOrder, e.TopupID)
	case TopupRequested, TopupOpenFailed:
		a = evolveIdempotency(evolveTopup(a, e), e)
	case TopupPaid, TopupInvoiced, TopupStatusChanged, TopupReviewClosed:
		a = evolveTopup(a, e)
	case IdempotencyKeyUsed, IdempotencyAnswerRecorded:
		a = evolveIdempotency(a, e)
	case LimitRequested, LimitRequestDecided:
		a = evolveLimit(a, e)
	case SSHKeyAdded, SSHKeyRemoved:
		a = evolveKey(a, e)
	case PasswordChanged, APIKeyCreated, APIKeyDeleted:
		a = evolveCredentials(a, e)
	case LedgerPosted:
		a.Balance = a.Balance.Add(e.CustomerAmount(a.ID))
		a.LastHash = e.Hash
		if s, ok := a.Servers[e.ServerID]; ok {
			switch e.Kind {
			case TxCharge:
				s.Charged = s.Charged.Add(e.AmountFor(LedgerRevenueCompute))
				if e.To != nil {
					s.BilledUntil = *e.To
				}
			case TxRefund:
				s.Charged = s.Charged.Add(e.AmountFor(LedgerRevenueCompute))
			}
		}
	case ServerDeployed:
		s := evolveServer(Server{}, e)
		a.Servers[e.ServerID] = &s
		a.ServerOrder = append(a.ServerOrder, e.ServerID)
	case ServerProvisionStarted, ServerInstanceCreated, ServerActivated, ServerFailed,
		ServerSuspended, ServerResumed, ServerDestroyRequested, ServerDestroyed,
		ServerRootPasswordShown, ServerInstanceHalted, ServerInstanceStarted:
		id := e.(ServerEvent).ServerOf()
		if s, ok := a.Servers[id]; ok {
			*s = evolveServer(*s, e)
		}
	}
	return a
}

// Commands on an account stream.
type (
	// Command is decided by Decide.
	Command interface{ accountCommand() }

	// Register opens the account with an optional signup credit.
	// SealedEmail is the email sealed with the account's data key: the log
	// never holds it in plain. Its password hash is in the credential store
	// already, under CredentialRef.
	Register struct {
		AccountID     string
		SealedEmail   string
		CredentialRef string
		ServerLimit   int
		SignupCredit  Money
	}
	// Deploy accepts one or more servers, charging each its first hour.
	Deploy struct {
		Servers []ServerSpec
		Idem    Idem
		Bulk    bool
	}
	// Destroy stops billing a server and has it destroyed.
	Destroy struct{ ServerID string }
	// Settle charges every hour due by now, in time order, suspending servers
	// the balance cannot cover, and resumes suspended servers it can.
	Settle struct{}
	// StartProvision records the intent to create the server's instance as
	// attempt number Attempt: the worker names the attempt it is about to
	// make (the server's Attempts + 1 as it saw them), so a worker acting
	// on a stale state, such as a paused old leader, is refused with a
	// StateError instead of creating a second instance. Zero names no
	// attempt and starts the next one (operator tools, tests).
	StartProvision struct {
		ServerID string
		Attempt  int
	}
	// RecordInstance records the provider's instance id, and the root
	// password it set, already sealed.
	RecordInstance struct{ ServerID, InstanceID, SealedRootPassword string }
	// ShowRootPassword records that the owner is shown the root password:
	// once, within RootPasswordWindow of the instance's creation.
	ShowRootPassword struct{ ServerID string }
	// RecordHalt records that a suspended server's instance is powered off.
	RecordHalt struct{ ServerID string }
	// RecordStart records that a resumed server's instance is powered on.
	RecordStart struct{ ServerID string }
	// ExpireSuspended has a server destroyed that stayed suspended for
	// SuspendedRetention: a halted instance still costs us.
	ExpireSuspended struct{ ServerID string }
	// Activate marks the instance running with its address and, when the
	// provider told them, its SSH host key fingerprints.
	Activate struct {
		ServerID, IPv4 string
		HostKeys       []string
	}
	// FailDeploy marks a deploy failed and refunds what it was charged.
	FailDeploy struct{ ServerID, Reason string }
	// CompleteDestroy records that the instance is gone.
	CompleteDestroy struct{ ServerID string }
	// CreateTopup records a top-up invoice.
	CreateTopup struct {
		TopupID, Currency, PayAddress, ProviderRef string
		Amount                                     Money
	}
	// PayTopup credits a paid top-up.
	PayTopup struct{ TopupID string }
	// Suspend puts the account on an abuse hold.
	Suspend struct{ Reason, Actor string }
	// Unsuspend lifts the hold.
	Unsuspend struct{ Reason, Actor string }
	// SetLimit changes the account's server limit.
	SetLimit struct {
		Limit int
		Actor string
	}
)

// ServerSpec is one server of a Deploy, with ids and prices already resolved
// by the caller from the catalog.
type ServerSpec struct {
	ID          string
	Label       string
	Plan        string
	Region      string
	HourlyPrice Money
	SSHKeys     []SSHKey
	BackupID    string
}

func (Register) accountCommand()         {}
func (ShowRootPassword) accountCommand() {}
func (RecordHalt) accountCommand()       {}
func (RecordStart) accountCommand()      {}
func (ExpireSuspended) accountCommand()  {}
func (Deploy) accountCommand()           {}
func (Destroy) accountCommand()          {}
func (Settle) accountCommand()           {}
func (StartProvision) accountCommand()   {}
func (RecordInstance) accountCommand()   {}
func (Activate) accountCommand()         {}
func (FailDeploy) accountCommand()       {}
func (CompleteDestroy) accountCommand()  {}
func (CreateTopup) accountCommand()      {}
func (PayTopup) accountCommand()         {}
func (Suspend) accountCommand()          {}
func (Unsuspend) accountCommand()        {}
func (SetLimit) accountCommand()         {}

// txNamespace makes ledger transaction ids deterministic: the same hour of
// the same server always has the same id, so a doubled charge is visible.
var txNamespace = uuid.MustParse("5b0f2a7e-8c1d-4d0e-9a51-3f6c2b9e7d10")

func txID(parts ...string) string {
	return uuid.NewSHA1(txNamespace, []byte(strings.Join(parts, "|"))).String()
}

// decision folds the events it emits into a private copy of the state, so
// later rules in the same command see the effect of earlier ones.
type decision struct {
	s      Account
	events []Event
}

func newDecision(a Account) *decision { return &decision{s: a.Clone()} }

func (d *decision) emit(e Event) {
	if tx, ok := e.(LedgerPosted); ok {
		e = tx.sealed(d.s.LastHash)
	}
	d.s = Evolve(d.s, e)
	d.events = append(d.events, e)
}

// settle charges every due hour in time order; an hour the balance cannot
// cover suspends its server at that hour.
func (d *decision) settle(now time.Time) {
	for {
		var due *Server
		for _, id := range d.s.ServerOrder {
			s := d.s.Servers[id]
			if s.Billable() && !s.BilledUntil.After(now) && (due == nil || s.BilledUntil.Before(due.BilledUntil)) {
				due = s
			}
		}
		if due == nil {
			return
		}
		hour := due.BilledUntil
		if d.s.Balance.Cmp(due.HourlyPrice) < 0 {
			d.emit(ServerSuspended{ServerID: due.ID, Reason: "insufficient balance", At: hour})
			continue
		}
		d.emit(d.charge(*due, hour))
	}
}

func (d *decision) charge(s Server, hour time.Time) LedgerPosted {
	end := hour.Add(time.Hour)
	tx := transfer(TxCharge, txID("charge", s.ID, hour.UTC().Format(time.RFC3339Nano)),
		LedgerRevenueCompute, CustomerLedger(d.s.ID), s.HourlyPrice, hour)
	tx.ServerID, tx.From, tx.To = s.ID, &hour, &end
	return tx
}

// resume brings suspended servers back, oldest first, while the balance
// covers their current hour, and charges that hour.
func (d *decision) resume(now time.Time) {
	for _, id := range d.s.ServerOrder {
		s := d.s.Servers[id]
		if s.Status != StatusSuspended || d.s.Balance.Cmp(s.HourlyPrice) < 0 {
			continue
		}
		d.emit(ServerResumed{ServerID: id, At: now})
		d.settle(now)
	}
}

func (d *decision) server(id string) (*Server, error) {
	s, ok := d.s.Servers[id]
	if !ok {
		return nil, fmt.Errorf("server %s: %w", id, ErrNotFound)
	}
	return s, nil
}

// Decide turns a command on an account into the events that record it, or
// an error saying why it cannot be done. It is pure: now is the decision time.
func Decide(a Account, cmd Command, now time.Time) ([]Event, error) {
	events, _, err := DecideFolded(a, cmd, now)
	return events, err
}

// DecideFolded is Decide that also returns the state the events leave: the
// decision's own copy of a, with every event it emitted folded in by
// Evolve as it went, so a caller that keeps the state need not copy and
// fold again. a itself is left alone.
func DecideFolded(a Account, cmd Command, now time.Time) ([]Event, Account, error) {
	if _, ok := cmd.(Register); !ok && !a.Registered {
		return nil, Account{}, fmt.Errorf("account %s: %w", a.ID, ErrNotFound)
	}
	if _, ok := cmd.(Register); !ok && a.Forgotten && !forgottenAllows(cmd) {
		return nil, Account{}, fmt.Errorf("account %s: %w", a.ID, ErrAccountForgotten)
	}
	d := newDecision(a)
	var err error
	switch c := cmd.(type) {
	case Register:
		err = d.register(c, now)
	case Deploy:
		err = d.deploy(c, now)
	case Destroy:
		err = d.destroy(c, now)
	case Settle:
		d.settle(now)
		d.resume(now)
	case StartProvision:
		err = d.serverStep(c.ServerID, func(s Server) error { return s.canStartProvision(c.Attempt) }, func(s *Server) Event {
			return ServerProvisionStarted{ServerID: s.ID, Attempt: s.Attempts + 1, At: now}
		})
	case RecordInstance:
		err = d.serverStep(c.ServerID, Server.canRecordInstance, func(*Server) Event {
			return ServerInstanceCreated{ServerID: c.ServerID, InstanceID: c.InstanceID, SealedRootPassword: c.SealedRootPassword, At: now}
		})
	case ShowRootPassword:
		err = d.serverStep(c.ServerID, func(s Server) error { return s.canShowRootPassword(now) }, func(*Server) Event {
			return ServerRootPasswordShown{ServerID: c.ServerID, At: now}
		})
	case RecordHalt:
		err = d.serverStep(c.ServerID, Server.canHalt, func(*Server) Event {
			return ServerInstanceHalted{ServerID: c.ServerID, At: now}
		})
	case RecordStart:
		err = d.serverStep(c.ServerID, Server.canStart, func(*Server) Event {
			return ServerInstanceStarted{ServerID: c.ServerID, At: now}
		})
	case ExpireSuspended:
		err = d.serverStep(c.ServerID, func(s Server) error { return s.canExpireSuspended(now) }, func(*Server) Event {
			return ServerDestroyRequested{ServerID: c.ServerID, At: now}
		})
	case Activate:
		err = d.serverStep(c.ServerID, Server.canActivate, func(*Server) Event {
			return ServerActivated{ServerID: c.ServerID, IPv4: c.IPv4, HostKeyFingerprints: c.HostKeys, At: now}
		})
	case FailDeploy:
		err = d.failDeploy(c, now)
	case CompleteDestroy:
		err = d.serverStep(c.ServerID, Server.canCompleteDestroy, func(*Server) Event {
			return ServerDestroyed{ServerID: c.ServerID, At: now}
		})
	case CreateTopup:
		err = d.createTopup(c, now)
	case PayTopup:
		err = d.payTopup(c, now)
	case RequestTopup, RecordInvoice, FailTopupOpen, ApplyInvoice, CreditTopup, CloseTopupReview:
		err = d.topupCommand(c, now)
	case Suspend:
		if a.Suspended {
			return nil, Account{}, stateError("account "+a.ID, "suspended", "it is already suspended")
		}
		d.emit(AccountSuspended{Reason: c.Reason, Actor: c.Actor, At: now})
	case Unsuspend:
		if !a.Suspended {
			return nil, Account{}, stateError("account "+a.ID, "active", "it is not suspended")
		}
		d.emit(AccountUnsuspended{Reason: c.Reason, Actor: c.Actor, At: now})
	case ClaimIdempotencyKey:
		err = d.claimKey(c, now)
	case RecordIdempotentAnswer:
		err = d.recordAnswer(c, now)
	case AddSSHKey:
		err = d.addKey(c, now)
	case RemoveSSHKey:
		err = d.removeKey(c, now)
	case ChangePassword:
		err = d.changePassword(c, now)
	case CreateAPIKey:
		err = d.createAPIKey(c, now)
	case DeleteAPIKey:
		err = d.deleteAPIKey(c, now)
	case RequestLimit:
		err = d.requestLimit(c, now)
	case DecideLimitRequest:
		err = d.decideLimit(c, now)
	case SealEmail:
		err = d.sealEmail(c, now)
	case Forget:
		err = d.forget(c, now)
	case SetLimit:
		if c.Limit < 0 || c.Limit > MaxServerLimit {
			return nil, Account{}, fmt.Errorf("%w: limit must be between 0 and 10000", ErrInvalid)
		}
		d.emit(ServerLimitSet{Limit: c.Limit, Actor: c.Actor, At: now})
	default:
		return nil, Account{}, fmt.Errorf("%w: unknown command %T", ErrInvalid, cmd)
	}
	if err != nil {
		return nil, Account{}, err
	}
	return d.events, d.s, nil
}

func (d *decision) register(c Register, now time.Time) error {
	if d.s.Registered {
		return ErrEmailTaken
	}
	if c.AccountID == "" || c.SealedEmail == "" || c.SignupCredit.Sign() < 0 {
		return fmt.Errorf("%w: incomplete registration", ErrInvalid)
	}
	d.emit(AccountRegistered{AccountID: c.AccountID, SealedEmail: c.SealedEmail, CredentialRef: c.CredentialRef,
		ServerLimit: c.ServerLimit, At: now})
	if c.SignupCredit.Sign() > 0 {
		d.emit(transfer(TxSignupCredit, txID("signup", c.AccountID), CustomerLedger(c.AccountID), LedgerPromoSignup, c.SignupCredit, now))
	}
	return nil
}

func (d *decision) deploy(c Deploy, now time.Time) error {
	if err := d.s.CheckActive(); err != nil {
		return err
	}
	// A retry is answered first: it names no servers of its own.
	if err := d.keyed(c.Idem); err != nil {
		return err
	}
	if len(c.Servers) == 0 {
		return fmt.Errorf("%w: no server to deploy", ErrInvalid)
	}
	d.settle(now)
	if d.s.LiveServers()+len(c.Servers) > d.s.ServerLimit {
		return fmt.Errorf("%w: %d of %d servers in use (PROVISIONING, ACTIVE and SUSPENDED count), %d more requested: "+
			"destroy a server first (it stops counting at once) or ask for a raise: POST /limit-requests, see /docs/custom-requests",
			ErrServerLimit, d.s.LiveServers(), d.s.ServerLimit, len(c.Servers))
	}
	total := Zero()
	seen := make(map[string]bool, len(c.Servers))
	for _, s := range c.Servers {
		if s.HourlyPrice.Sign() <= 0 || s.ID == "" {
			return fmt.Errorf("%w: server spec without id or price", ErrInvalid)
		}
		if _, exists := d.s.Servers[s.ID]; exists || seen[s.ID] {
			return fmt.Errorf("%w: server id %s already used", ErrInvalid, s.ID)
		}
		seen[s.ID] = true
		total = total.Add(s.HourlyPrice)
	}
	// The balance must cover one hour of every billed server, the new ones
	// included: their first hour is charged now, the others' next hour must
	// still be covered after it, or the fleet is suspended within the hour.
	if need := d.s.HourlySpend().Add(total); d.s.Balance.Cmp(need) < 0 {
		return fmt.Errorf("%w: balance %s does not cover one hour of every server (%s for the new ones, %s for those already billed): "+
			"%s missing, top up first", ErrInsufficientFunds, d.s.Balance.Canonical(), total.Canonical(), d.s.HourlySpend().Canonical(),
			need.Sub(d.s.Balance).Canonical())
	}
	ids := make([]string, 0, len(c.Servers))
	for _, s := range c.Servers {
		d.emit(ServerDeployed{ServerID: s.ID, Label: s.Label, Plan: s.Plan, Region: s.Region,
			HourlyPrice: s.HourlyPrice, SSHKeys: s.SSHKeys, BackupID: s.BackupID, At: now})
		d.emit(d.charge(*d.s.Servers[s.ID], now))
		ids = append(ids, s.ID)
	}
	d.claim(c.Idem, IdempotencyKeyUsed{ServerIDs: ids, Bulk: c.Bulk}, now)
	return nil
}

func (d *decision) destroy(c Destroy, now time.Time) error {
	if err := d.s.CheckActive(); err != nil {
		return err
	}
	s, err := d.server(c.ServerID)
	if err != nil {
		return err
	}
	if err := s.canDestroy(); err != nil {
		return err
	}
	// Hours that began before the DELETE were billable, even if the biller
	// had not charged them yet; none starts after it.
	d.settle(now)
	d.emit(ServerDestroyRequested{ServerID: s.ID, At: now})
	return nil
}

func (d *decision) serverStep(id string, allowed func(Server) error, event func(*Server) Event) error {
	s, err := d.server(id)
	if err != nil {
		return err
	}
	if err := allowed(*s); err != nil {
		return err
	}
	d.emit(event(s))
	return nil
}

func (d *decision) failDeploy(c FailDeploy, now time.Time) error {
	s, err := d.server(c.ServerID)
	if err != nil {
		return err
	}
	if err := s.canFail(); err != nil {
		return err
	}
	// The refund is a credit: like a paid top-up, it must not pay for hours
	// that came due before it, so those are settled (or suspend) first.
	d.settle(now)
	d.emit(ServerFailed{ServerID: s.ID, Reason: c.Reason, At: now})
	// It never ran: every hour it was charged goes back.
	if charged := s.Charged; charged.Sign() > 0 {
		tx := transfer(TxRefund, txID("refund", s.ID), CustomerLedger(d.s.ID), LedgerRevenueCompute, charged, now)
		tx.ServerID = s.ID
		d.emit(tx)
	}
	d.resume(now)
	return nil
}

// Top-up limits: the smallest and largest amount one invoice may carry.
var (
	MinTopup = MustMoney("1.00")
	MaxTopup = MustMoney("10000.00")
)

// Currencies a top-up can be paid in.
var Currencies = []string{"BTC", "ETH", "LTC", "USDT", "USDC", "XMR"}

func (d *decision) createTopup(c CreateTopup, now time.Time) error {
	if err := d.s.CheckTopup(c.Amount, c.Currency); err != nil {
		return err
	}
	if _, exists := d.s.Topups[c.TopupID]; exists || c.TopupID == "" {
		return fmt.Errorf("%w: top-up id %q", ErrInvalid, c.TopupID)
	}
	d.emit(TopupCreated{TopupID: c.TopupID, Amount: c.Amount, Currency: c.Currency, PayAddress: c.PayAddress, ProviderRef: c.ProviderRef, At: now})
	return nil
}

// CheckTopup is the rule for a new top-up: an account not on hold, an
// amount in dollars and cents within the limits, a currency we take. Decide
// applies it; the application asks it before opening the processor's
// invoice, so a refused top-up never costs an invoice.
func (a Account) CheckTopup(amount Money, currency string) error {
	if err := a.CheckActive(); err != nil {
		return err
	}
	fields := map[string]string{}
	if amount.Exponent() < -2 || amount.Cmp(MinTopup) < 0 || amount.Cmp(MaxTopup) > 0 {
		fields["amount"] = fmt.Sprintf("a decimal string from %s to %s with at most 2 decimals", MinTopup.Canonical(), MaxTopup.Canonical())
	}
	if !slices.Contains(Currencies, currency) {
		fields["currency"] = "one of " + strings.Join(Currencies, ", ")
	}
	if len(fields) > 0 {
		return Invalid(fields)
	}
	return nil
}

// CheckActive is the abuse-hold rule: an account an operator suspended may
// read but change nothing.
func (a Account) CheckActive() error {
	if a.Suspended {
		return ErrAccountSuspended
	}
	return nil
}

func (d *decision) payTopup(c PayTopup, now time.Time) error {
	t, ok := d.s.Topups[c.TopupID]
	if !ok {
		return fmt.Errorf("top-up %s: %w", c.TopupID, ErrNotFound)
	}
	if t.Status != TopupStatusPending {
		return stateError("top-up "+t.ID, t.Status, "it is already paid")
	}
	if t.Requested {
		return stateError("top-up "+t.ID, t.Status, "it is paid through its invoice (ApplyInvoice)")
	}
	d.settle(now)
	d.emit(TopupPaid{TopupID: t.ID, At: now})
	tx := transfer(TxTopup, txID("topup", t.ID), CustomerLedger(d.s.ID), LedgerCryptoDeposits, t.Amount, now)
	tx.TopupID = t.ID
	d.emit(tx)
	d.resume(now)
	return nil
}
