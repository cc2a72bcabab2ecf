// Package memory is the embedded default read model: every view is kept in
// process memory, folded from the log by the same Evolve functions the
// domain decides with, and rebuilt from the log at each start; but history
// the API pages through (the ledger) is read from the log, where it is
// kept, not held twice (ledger.go).
package memory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// Model is an in-memory projections.Model, safe for concurrent use.
type Model struct {
	mu         sync.RWMutex
	checkpoint eventstore.Position
	accounts   map[string]*domain.Account
	backups    map[string]*domain.Backup
	// backupsOf lists each account's backup ids in creation order.
	backupsOf map[string][]string
	// log is where the ledger is read from; ledgers indexes each
	// account's ledger transactions in it (ledger.go).
	log     Log
	ledgers map[string]*ledgerIndex
	// folded is, per account and backup stream, the version and position
	// of its last event applied: what the runners start from (State).
	folded map[string]foldedAt
}

type foldedAt struct {
	version uint64
	pos     eventstore.Position
	// tx is the version of the last ledger transaction applied, plus one
	// (zero: none): the model does not keep the hash chain, whose head a
	// runner starting from the model reads from the log (AccountState).
	tx uint64
}

// New returns an empty model that serves the ledger from log, the log it
// is folded from.
func New(log Log) *Model {
	m := &Model{log: log}
	m.reset()
	return m
}

func (m *Model) reset() {
	m.checkpoint = eventstore.Position{}
	m.accounts = map[string]*domain.Account{}
	m.backups = map[string]*domain.Backup{}
	m.backupsOf = map[string][]string{}
	m.ledgers = map[string]*ledgerIndex{}
	m.folded = map[string]foldedAt{}
}

// Reset empties the model.
func (m *Model) Reset(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reset()
	return nil
}

// Checkpoint is the position of the last applied event.
func (m *Model) Checkpoint(context.Context) (eventstore.Position, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.checkpoint, nil
}

// Apply folds a batch. It decodes every event before changing anything, so a
// batch with an undecodable event leaves the model as it was.
func (m *Model) Apply(ctx context.Context, batch []eventstore.Event) error {
	decoded, err := m.Decode(batch)
	if err != nil {
		return err
	}
	return m.ApplyDecoded(ctx, batch, decoded)
}

// ledgerView is what the model reads of a LedgerPosted: what Evolve reads
// of one (domain/account.go: the postings, for the customer's amount and
// the compute revenue's, the kind, the server and the end of the hour
// charged), nothing more. The ledger the API pages through is read from
// the log (ledger.go) and the hash chain is not kept (AccountState), so the
// ids, times and hashes of a transaction, a good part of the cost of
// decoding a million of them, are skipped.
type ledgerView struct {
	Kind     domain.TxKind    `json:"kind"`
	Postings []domain.Posting `json:"postings"`
	ServerID string           `json:"serverId"`
	To       *time.Time       `json:"to"`
}

var ledgerType = domain.LedgerPosted{}.EventType()

// Decode decodes the events the model folds (projections.Decode), ledger
// transactions only as far as Evolve reads them (ledgerView): accounts
// here carry no LastHash.
func (m *Model) Decode(batch []eventstore.Event) ([]domain.Event, error) {
	decoded := make([]domain.Event, len(batch))
	var v ledgerView // one for the batch: it escapes to the decoder
	for i := range batch {
		ev := &batch[i]
		if !projections.Folded(ev.Stream) {
			continue
		}
		if ev.Type == ledgerType && ev.Data == nil {
			v = ledgerView{}
			if err := ev.Decode(&v); err != nil {
				if _, full := projections.DecodeEvent(ev); full != nil {
					err = full // its error as every reader reports it
				}
				return nil, fmt.Errorf("event %s at %s: %w", ev.ID, ev.Position, err)
			}
			tx := domain.LedgerPosted{Kind: v.Kind, Postings: v.Postings, ServerID: v.ServerID, To: v.To}
			decoded[i] = tx
			continue
		}
		e, err := projections.DecodeEvent(ev)
		if err != nil {
			return nil, fmt.Errorf("event %s at %s: %w", ev.ID, ev.Position, err)
		}
		decoded[i] = e
	}
	return decoded, nil
}

// ApplyDecoded folds a batch decoded ahead (projections.Decode).
func (m *Model) ApplyDecoded(_ context.Context, batch []eventstore.Event, decoded []domain.Event) error {
	if len(batch) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range batch {
		ev := &batch[i]
		if !m.checkpoint.Less(ev.Position) || decoded[i] == nil {
			continue
		}
		prefix, id := domain.StreamID(ev.Stream)
		f := m.folded[ev.Stream]
		f.version, f.pos = ev.Version, ev.Position
		_, isTx := decoded[i].(domain.LedgerPosted)
		if isTx {
			f.tx = ev.Version + 1
		}
		m.folded[ev.Stream] = f
		switch prefix {
		case domain.AccountStreamPrefix:
			// Every event is folded, Idempotency-Keys and their kept answers
			// too, although no query reads them: the account runners start
			// from this fold (AccountState) and keep only a few states of
			// their own, so the fold must be the domain's, whole. The keys
			// are held once, here.
			a, ok := m.accounts[id]
			if !ok {
				n := domain.NewAccount(id)
				a = &n
				m.accounts[id] = a
			}
			if isTx {
				m.indexLedger(id, a, &batch[i])
			}
			*a = domain.Evolve(*a, decoded[i])
		case domain.BackupStreamPrefix:
			b, ok := m.backups[id]
			if !ok {
				b = &domain.Backup{}
				m.backups[id] = b
			}
			was := b.Exists()
			*b = domain.EvolveBackup(*b, decoded[i])
			if !was && b.Exists() {
				m.backupsOf[b.AccountID] = append(m.backupsOf[b.AccountID], id)
			}
		}
	}
	if last := batch[len(batch)-1].Position; m.checkpoint.Less(last) {
		m.checkpoint = last
	}
	return nil
}

// AccountState is a copy of the account as the model folded it (with the
// domain's Evolve, as the runners do), and the version and position of the
// last event of its stream the model applied: the runners' head start for
// an account they do not keep (app.Runner.SetSource), so the process holds
// one copy of every account, not two. The model does not decode the ledger's
// hash chain (Decode), so the state has no LastHash: reread is the version
// of the account's last ledger transaction, which the runner reads again
// from the log for its hash (the version after version when there is
// none). ok is false for an account the model has no event of.
func (m *Model) AccountState(id string) (a domain.Account, version int64, pos eventstore.Position, reread int64, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st, found := m.accounts[id]
	f, applied := m.folded[domain.AccountStream(id)]
	if !found || !applied {
		return domain.Account{}, 0, eventstore.Position{}, 0, false
	}
	reread = int64(f.version) + 1
	if f.tx > 0 {
		reread = int64(f.tx) - 1
	}
	return st.Clone(), int64(f.version), f.pos, reread, true
}

// BackupState is AccountState for a backup.
func (m *Model) BackupState(id string) (b domain.Backup, version int64, pos eventstore.Position, reread int64, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	st, found := m.backups[id]
	f, applied := m.folded[domain.BackupStream(id)]
	if !found || !applied {
		return domain.Backup{}, 0, eventstore.Position{}, 0, false
	}
	c := *st
	c.Restores = slices.Clone(st.Restores)
	return c, int64(f.version), f.pos, int64(f.version) + 1, true
}

func (m *Model) account(id string) (*domain.Account, error) {
	a, ok := m.accounts[id]
	if !ok || !a.Registered {
		return nil, fmt.Errorf("account %s: %w", id, projections.ErrNotFound)
	}
	return a, nil
}

// Account returns the account's view.
func (m *Model) Account(_ context.Context, id string) (projections.AccountView, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, err := m.account(id)
	if err != nil {
		return projections.AccountView{}, err
	}
	return projections.AccountView{
		ID: a.ID, Email: a.Email, Forgotten: a.Forgotten, Balance: a.Balance, HourlySpend: a.HourlySpend(),
		Suspended: a.Suspended, ServerLimit: a.ServerLimit, CreatedAt: a.CreatedAt,
	}, nil
}

// PersonalData lists the accounts with a plain email, and the forgotten
// ones, by id.
func (m *Model) PersonalData(context.Context) ([]projections.PersonalRecord, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []projections.PersonalRecord{}
	for id, a := range m.accounts {
		if a.Registered && (a.Email.Plain != "" || a.Forgotten) {
			out = append(out, projections.PersonalRecord{AccountID: id, Plain: a.Email.Plain, Forgotten: a.Forgotten})
		}
	}
	slices.SortFunc(out, func(x, y projections.PersonalRecord) int { return strings.Compare(x.AccountID, y.AccountID) })
	return out, nil
}

func serverView(accountID string, s *domain.Server) projections.ServerView {
	v := projections.ServerView{
		ID: s.ID, AccountID: accountID, Label: s.Label, Status: s.Status, Region: s.Region, Plan: s.Plan,
		HourlyPrice: s.HourlyPrice, BackupID: s.BackupID, CreatedAt: s.CreatedAt, Error: s.Error,
		RootPasswordUntil: s.RootPasswordUntil,
	}
	if s.Status == domain.StatusActive {
		v.IPv4, v.HostKeyFingerprints = s.IPv4, s.HostKeyFingerprints
	}
	for _, k := range s.SSHKeys {
		v.SSHKeys = append(v.SSHKeys, k.Fingerprint)
	}
	return v
}

// Session is what authenticating a request needs of the account.
func (m *Model) Session(_ context.Context, accountID, apiKeyID string) (projections.SessionView, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, err := m.account(accountID)
	if err != nil {
		return projections.SessionView{}, err
	}
	_, live := a.APIKeys[apiKeyID]
	return projections.SessionView{TokenVersion: a.TokenVersion, KeyLive: live, Forgotten: a.Forgotten}, nil
}

// APIKeys lists the account's API keys, oldest first.
func (m *Model) APIKeys(_ context.Context, accountID string) ([]domain.APIKey, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, err := m.account(accountID)
	if err != nil {
		return nil, err
	}
	out := []domain.APIKey{}
	for _, id := range a.APIKeyOrder {
		out = append(out, a.APIKeys[id])
	}
	return out, nil
}

// SSHKeys lists the keys stored on the account.
func (m *Model) SSHKeys(_ context.Context, accountID string) ([]domain.StoredKey, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, err := m.account(accountID)
	if err != nil {
		return nil, err
	}
	out := []domain.StoredKey{}
	for _, id := range a.KeyOrder {
		out = append(out, a.Keys[id])
	}
	return out, nil
}

// LimitRequests lists the account's requests for a higher limit.
func (m *Model) LimitRequests(_ context.Context, accountID string) ([]domain.LimitRequest, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, err := m.account(accountID)
	if err != nil {
		return nil, err
	}
	out := []domain.LimitRequest{}
	for _, id := range a.LimitOrder {
		out = append(out, a.LimitRequests[id])
	}
	return out, nil
}

// PendingLimitRequests lists the requests waiting for an operator.
func (m *Model) PendingLimitRequests(context.Context) ([]projections.PendingLimit, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []projections.PendingLimit{}
	for id, a := range m.accounts {
		if a.Forgotten {
			continue // nobody can be answered any more
		}
		for _, rid := range a.LimitOrder {
			if r := a.LimitRequests[rid]; r.Status == domain.LimitPending {
				out = append(out, projections.PendingLimit{AccountID: id, Email: a.Email, Current: a.ServerLimit, Request: r})
			}
		}
	}
	slices.SortFunc(out, func(x, y projections.PendingLimit) int { return x.Request.CreatedAt.Compare(y.Request.CreatedAt) })
	return out, nil
}

// Billing is the account's balance and what is billed.
func (m *Model) Billing(_ context.Context, accountID string) (projections.BillingView, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, err := m.account(accountID)
	if err != nil {
		return projections.BillingView{}, err
	}
	return projections.BillingView{Balance: a.Balance, HourlySpend: a.HourlySpend(), Billed: a.Billed()}, nil
}

// Servers lists the account's servers that are not destroyed, oldest first.
func (m *Model) Servers(_ context.Context, accountID string) ([]projections.ServerView, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, err := m.account(accountID)
	if err != nil {
		return nil, err
	}
	out := []projections.ServerView{}
	for _, id := range a.ServerOrder {
		if s := a.Servers[id]; s.Status != domain.StatusDestroyed {
			out = append(out, serverView(accountID, s))
		}
	}
	return out, nil
}

// Server returns one of the account's servers.
func (m *Model) Server(_ context.Context, accountID, id string) (projections.ServerView, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, err := m.account(accountID)
	if err != nil {
		return projections.ServerView{}, err
	}
	s, ok := a.Servers[id]
	if !ok {
		return projections.ServerView{}, fmt.Errorf("server %s: %w", id, projections.ErrNotFound)
	}
	return serverView(accountID, s), nil
}

func topupView(accountID string, t *domain.Topup) projections.TopupView {
	v := projections.TopupView{ID: t.ID, AccountID: accountID, Status: t.Status, Amount: t.Amount,
		Currency: t.Currency, PayAddress: t.PayAddress, CreatedAt: t.CreatedAt, PaidAt: t.PaidAt,
		Method: t.Method, CheckoutLink: t.CheckoutLink, ExpiresAt: t.ExpiresAt, Methods: t.Methods,
		Review: t.Review, ReviewOpen: t.NeedsReview()}
	if t.Requested {
		v.InvoiceRef = t.ProviderRef
	}
	return v
}

// Topups lists the account's top-ups, oldest first.
func (m *Model) Topups(_ context.Context, accountID string) ([]projections.TopupView, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, err := m.account(accountID)
	if err != nil {
		return nil, err
	}
	out := []projections.TopupView{}
	for _, id := range a.TopupOrder {
		if t := a.Topups[id]; t.Visible() {
			out = append(out, topupView(accountID, t))
		}
	}
	return out, nil
}

// Topup returns one of the account's top-ups.
func (m *Model) Topup(_ context.Context, accountID, id string) (projections.TopupView, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a, err := m.account(accountID)
	if err != nil {
		return projections.TopupView{}, err
	}
	t, ok := a.Topups[id]
	if !ok || !t.Visible() {
		return projections.TopupView{}, fmt.Errorf("top-up %s: %w", id, projections.ErrNotFound)
	}
	return topupView(accountID, t), nil
}

// backupView is the backup as the customer sees it at now (domain.Shown).
func backupView(b *domain.Backup, now time.Time) (projections.BackupView, bool) {
	status, shown := domain.Shown(b.Status, b.ExpiresAt, now)
	return projections.BackupView{ID: b.ID, AccountID: b.AccountID, ServerID: b.ServerID, Label: b.Label,
		Status: status, Region: b.Region, Plan: b.Plan, CreatedAt: b.CreatedAt, ExpiresAt: b.ExpiresAt}, shown
}

// Backups lists the account's backups shown at now, oldest first.
func (m *Model) Backups(_ context.Context, accountID string, now time.Time) ([]projections.BackupView, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []projections.BackupView{}
	for _, id := range m.backupsOf[accountID] {
		if v, shown := backupView(m.backups[id], now); shown {
			out = append(out, v)
		}
	}
	return out, nil
}

// Backup returns one of the account's backups shown at now.
func (m *Model) Backup(_ context.Context, accountID, id string, now time.Time) (projections.BackupView, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	b, ok := m.backups[id]
	if !ok || b.AccountID != accountID {
		return projections.BackupView{}, fmt.Errorf("backup %s: %w", id, projections.ErrNotFound)
	}
	v, shown := backupView(b, now)
	if !shown {
		return projections.BackupView{}, fmt.Errorf("backup %s: %w", id, projections.ErrNotFound)
	}
	return v, nil
}

// WorkAccounts lists accounts with a server that is not DESTROYED or ERROR.
func (m *Model) WorkAccounts(context.Context) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for id, a := range m.accounts {
		for _, s := range a.Servers {
			if s.Live() {
				out = append(out, id)
				break
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// OpenBackups lists backups that are pending or not yet expired.
func (m *Model) OpenBackups(context.Context) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for id, b := range m.backups {
		switch b.Status {
		case domain.BackupPending, domain.BackupAvailable, domain.BackupError:
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

// TopupAccounts lists accounts with a top-up whose invoice may change.
func (m *Model) TopupAccounts(_ context.Context, lateSince time.Time) ([]string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	for id, a := range m.accounts {
		for _, t := range a.Topups {
			if topupOpen(t, lateSince) {
				out = append(out, id)
				break
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func topupOpen(t *domain.Topup, lateSince time.Time) bool {
	switch t.Status {
	case domain.TopupStatusOpening, domain.TopupStatusPending, domain.TopupStatusProcessing:
		return true
	case domain.TopupStatusExpired:
		return t.Requested && !t.ExpiresAt.Before(lateSince)
	}
	return false
}

// ReviewTopups lists the top-ups waiting for an operator, oldest first.
func (m *Model) ReviewTopups(context.Context) ([]projections.TopupView, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []projections.TopupView{}
	for id, a := range m.accounts {
		for _, t := range a.Topups {
			if t.NeedsReview() {
				out = append(out, topupView(id, t))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// FindTopup finds a visible top-up by id.
func (m *Model) FindTopup(_ context.Context, id string) (projections.TopupView, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for aid, a := range m.accounts {
		if t, ok := a.Topups[id]; ok && t.Visible() {
			return topupView(aid, t), nil
		}
	}
	return projections.TopupView{}, fmt.Errorf("top-up %s: %w", id, projections.ErrNotFound)
}

var (
	_ projections.Model          = (*Model)(nil)
	_ projections.DecodedApplier = (*Model)(nil)
)
