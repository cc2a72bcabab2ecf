package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// Apply folds a batch in one transaction: it locks the checkpoint row, skips
// every event at or before it (a redelivery, or events another process has
// applied meanwhile), loads the rows the rest touch, folds the events into
// them with domain.Evolve and domain.EvolveBackup, writes the changed rows
// and the ledger, and moves the checkpoint. Either all of it commits or none.
func (m *Model) Apply(ctx context.Context, batch []eventstore.Event) error {
	decoded, err := projections.Decode(batch)
	if err != nil {
		return err
	}
	return m.apply(ctx, decodedBatch{events: batch, decoded: decoded})
}

// Decode decodes what ApplyDecoded needs (projections.Decode): the model
// takes catch-ups decoded on every core (projections.DecodedApplier).
func (m *Model) Decode(batch []eventstore.Event) ([]domain.Event, error) {
	return projections.Decode(batch)
}

// ApplyDecoded is Apply for a batch Decode decoded.
func (m *Model) ApplyDecoded(ctx context.Context, batch []eventstore.Event, decoded []domain.Event) error {
	return m.apply(ctx, decodedBatch{events: batch, decoded: decoded})
}

// decodedBatch is a batch with its domain events (nil for streams the read
// models do not follow, such as the sandbox clock).
type decodedBatch struct {
	events  []eventstore.Event
	decoded []domain.Event
}

// carried is the state a rebuild keeps from batch to batch: it is the only
// writer of tables it started empty, so the rows a batch touches are the
// ones earlier batches left here, and need not be read back.
type carried struct {
	accounts map[string]*domain.Account
	backups  map[string]*domain.Backup
	created  map[key]eventstore.Position
	// ledger and posting are the sizes of the last batch's COPY streams:
	// the next one's buffers start that big rather than growing to it.
	ledger, posting int
}

func newCarried() *carried {
	return &carried{accounts: map[string]*domain.Account{}, backups: map[string]*domain.Backup{},
		created: map[key]eventstore.Position{}}
}

// apply folds a decoded batch in one transaction, reading the rows it
// touches from the tables.
func (m *Model) apply(ctx context.Context, d decodedBatch) error {
	batch, decoded := d.events, d.decoded
	if len(batch) == 0 {
		return nil
	}
	last := batch[len(batch)-1].Position
	if err := fitsBigint(last); err != nil {
		return err
	}
	tx, checkpoint, err := m.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if !checkpoint.Less(last) {
		return nil // everything was applied already
	}
	f := newFold()
	for i, ev := range batch {
		if checkpoint.Less(ev.Position) && decoded[i] != nil {
			f.plan(ev, decoded[i])
		}
	}
	if err := f.load(ctx, tx); err != nil {
		return err
	}
	for i, ev := range batch {
		if checkpoint.Less(ev.Position) && decoded[i] != nil {
			f.apply(ev, decoded[i])
		}
	}
	if err := f.done().write(ctx, tx); err != nil {
		return err
	}
	return m.finish(ctx, tx, last)
}

// foldCarried folds a rebuild's batch into carry, without the database:
// what it returns is the batch's writes, taken from the rows as they are
// now, so the next batch can be folded while this one is written.
func foldCarried(d decodedBatch, carry *carried) (*folded, error) {
	if err := fitsBigint(d.events[len(d.events)-1].Position); err != nil {
		return nil, err
	}
	f := newFold()
	f.created = carry.created
	f.ledger.reserve(carry.ledger)
	f.posting.reserve(carry.posting)
	for i, ev := range d.events {
		if d.decoded[i] != nil {
			f.plan(ev, d.decoded[i])
		}
	}
	f.carry(carry)
	for i, ev := range d.events {
		if d.decoded[i] != nil {
			f.apply(ev, d.decoded[i])
		}
	}
	carry.ledger, carry.posting = len(f.ledger.buf), len(f.posting.buf)
	return f.done(), nil
}

// applyFolded writes a rebuild's folded batch, the events after from up to
// last, in one transaction. The checkpoint must be at from: a rebuild is the
// only writer of its tables, and anything else there is an error, not
// events to skip.
func (m *Model) applyFolded(ctx context.Context, w *folded, from, last eventstore.Position) error {
	tx, checkpoint, err := m.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if checkpoint != from {
		return fmt.Errorf("postgres read model: checkpoint at %s, the rebuild wrote up to %s: another process writes the read model", checkpoint, from)
	}
	if err := w.write(ctx, tx); err != nil {
		return err
	}
	return m.finish(ctx, tx, last)
}

func fitsBigint(p eventstore.Position) error {
	if p.Commit > math.MaxInt64 || p.Prepare > math.MaxInt64 {
		return fmt.Errorf("position %s does not fit a bigint", p)
	}
	return nil
}

// begin starts a batch's transaction and locks the checkpoint, returning it.
func (m *Model) begin(ctx context.Context) (pgx.Tx, eventstore.Position, error) {
	tx, err := m.pool.Begin(ctx)
	if err != nil {
		return nil, eventstore.Position{}, classify(ctx, "begin", err)
	}
	var cpCommit, cpPrepare int64
	start := &pgx.Batch{}
	// Losing the last commits in a crash is harmless here: the checkpoint
	// is lost with them and the events are applied again. Not waiting for
	// the WAL flush makes each batch cheaper.
	start.Queue("SET LOCAL synchronous_commit = off")
	// FOR UPDATE serialises the projectors of several processes: the second
	// one waits, then sees the checkpoint the first moved and skips.
	start.Queue("SELECT log_commit, log_prepare FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
		Projection).QueryRow(func(r pgx.Row) error { return r.Scan(&cpCommit, &cpPrepare) })
	if err := tx.SendBatch(ctx, start).Close(); err != nil {
		tx.Rollback(context.Background())
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, eventstore.Position{}, fmt.Errorf("postgres read model: no checkpoint row %q: schema not migrated?", Projection)
		}
		return nil, eventstore.Position{}, classify(ctx, "lock checkpoint", err)
	}
	return tx, eventstore.Position{Commit: uint64(cpCommit), Prepare: uint64(cpPrepare)}, nil
}

// finish moves the checkpoint to last and commits: the rows and the
// checkpoint move together.
func (m *Model) finish(ctx context.Context, tx pgx.Tx, last eventstore.Position) error {
	if _, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET log_commit = $2, log_prepare = $3, updated_at = now()
		WHERE name = $1`, Projection, int64(last.Commit), int64(last.Prepare)); err != nil {
		return classify(ctx, "move checkpoint", err)
	}
	if m.beforeCommit != nil {
		if err := m.beforeCommit(); err != nil {
			return err
		}
	}
	return classify(ctx, "commit", tx.Commit(ctx))
}

type key struct{ account, id string }

// fold is one batch's working set: the rows its events touch, as loaded,
// then as folded, and the ledger rows it adds.
type fold struct {
	accounts     map[string]*domain.Account
	accountOrder []string
	servers      map[key]bool // servers the batch's server events touch
	serverOrder  []key
	topups       map[key]bool
	topupOrder   []key
	backups      map[string]*domain.Backup
	backupOrder  []string
	// created is where each server, top-up (by account and id) and backup
	// (by id, account empty) was created in the log: lists are in that order.
	created map[key]eventstore.Position
	// ledger and posting are the ledger rows the batch adds, ready to COPY.
	ledger, posting copyRows
	err             error // of encoding them
}

func newFold() *fold {
	return &fold{accounts: map[string]*domain.Account{}, servers: map[key]bool{}, topups: map[key]bool{},
		backups: map[string]*domain.Backup{}, created: map[key]eventstore.Position{}}
}

func topupOf(e domain.Event) (string, bool) { return domain.TopupOf(e) }

// plan notes which rows an event touches, so they are loaded in one go.
// Ledger postings touch no server row: what a server has been charged is
// in the postings, not kept on the server.
func (f *fold) plan(ev eventstore.Event, e domain.Event) {
	prefix, id := domain.StreamID(ev.Stream)
	if prefix == domain.BackupStreamPrefix {
		if _, ok := f.backups[id]; !ok {
			f.backups[id] = nil
			f.backupOrder = append(f.backupOrder, id)
		}
		return
	}
	if _, ok := f.accounts[id]; !ok {
		f.accounts[id] = nil
		f.accountOrder = append(f.accountOrder, id)
	}
	if se, ok := e.(domain.ServerEvent); ok {
		sid := se.ServerOf()
		if k := (key{id, sid}); !f.servers[k] {
			f.servers[k] = true
			f.serverOrder = append(f.serverOrder, k)
		}
	}
	if tid, ok := topupOf(e); ok {
		if k := (key{id, tid}); !f.topups[k] {
			f.topups[k] = true
			f.topupOrder = append(f.topupOrder, k)
		}
	}
}

// load reads the touched rows, in one round trip, into domain state.
// Accounts carry only the servers and top-ups the batch touches: Evolve
// leaves the others alone.
func (f *fold) load(ctx context.Context, tx pgx.Tx) error {
	for _, id := range f.accountOrder {
		a := domain.NewAccount(id)
		f.accounts[id] = &a
	}
	for _, id := range f.backupOrder {
		f.backups[id] = &domain.Backup{}
	}
	b := &pgx.Batch{}
	if len(f.accountOrder) > 0 {
		b.Queue(`SELECT id, email, registered, suspended, suspend_reason, server_limit, balance::text, last_hash,
			created_at, created_at_ns, limit_requests, ssh_keys, sealed_email, forgotten, token_version, api_keys
			FROM accounts WHERE id = ANY($1::text[])`, f.accountOrder).
			Query(func(rows pgx.Rows) error { return f.scanAccounts(rows) })
	}
	if len(f.serverOrder) > 0 {
		accts, ids := keyArrays(f.serverOrder)
		b.Queue(`SELECT s.account_id, s.id, s.label, s.plan, s.region, s.hourly_price::text, s.ssh_keys, s.backup_id,
			s.status, s.ipv4, s.instance_id, s.attempts, s.activated, s.created_at, s.created_at_ns, s.suspended_at,
			s.destroyed_at, s.log_commit, s.log_prepare, s.error, s.root_password_until, s.host_keys
			FROM servers s JOIN unnest($1::text[], $2::text[]) AS k(account_id, id)
			ON s.account_id = k.account_id AND s.id = k.id`, accts, ids).
			Query(func(rows pgx.Rows) error { return f.scanServers(rows) })
	}
	if len(f.topupOrder) > 0 {
		accts, ids := keyArrays(f.topupOrder)
		b.Queue(`SELECT t.account_id, t.id, t.amount::text, t.currency, t.pay_address, t.provider_ref, t.status,
			t.created_at, t.created_at_ns, t.paid_at, t.paid_at_ns, t.log_commit, t.log_prepare,
			t.requested, t.method, t.checkout_link, t.expires_at, t.expires_at_ns, t.methods, t.review,
			t.review_closed, t.credited_by
			FROM topups t JOIN unnest($1::text[], $2::text[]) AS k(account_id, id)
			ON t.account_id = k.account_id AND t.id = k.id`, accts, ids).
			Query(func(rows pgx.Rows) error { return f.scanTopups(rows) })
	}
	if len(f.backupOrder) > 0 {
		b.Queue(`SELECT id, account_id, server_id, instance_id, label, plan, region, status, snapshot_id, restores,
			created_at, created_at_ns, expires_at, expires_at_ns, log_commit, log_prepare
			FROM backups WHERE id = ANY($1::text[])`, f.backupOrder).
			Query(func(rows pgx.Rows) error { return f.scanBackups(rows) })
	}
	if b.Len() == 0 {
		return nil
	}
	return classify(ctx, "load rows", tx.SendBatch(ctx, b).Close())
}

// carry takes the touched rows from a rebuild's state instead of the
// tables; rows new to it start empty, as in an empty table.
func (f *fold) carry(c *carried) {
	for _, id := range f.accountOrder {
		a, ok := c.accounts[id]
		if !ok {
			n := domain.NewAccount(id)
			a = &n
			c.accounts[id] = a
		}
		f.accounts[id] = a
	}
	for _, id := range f.backupOrder {
		b, ok := c.backups[id]
		if !ok {
			b = &domain.Backup{}
			c.backups[id] = b
		}
		f.backups[id] = b
	}
}

func keyArrays(keys []key) (accounts, ids []string) {
	accounts, ids = make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		accounts[i], ids[i] = k.account, k.id
	}
	return accounts, ids
}

func (f *fold) scanAccounts(rows pgx.Rows) error {
	for rows.Next() {
		var id, balance string
		var created pgtype.Timestamptz
		var createdNs int32
		var serverLimit int32
		var limitRequests []domain.LimitRequest
		var keys []domain.StoredKey
		var apiKeys []domain.APIKey
		var tokenVersion int32
		a := domain.NewAccount("")
		if err := rows.Scan(&id, &a.Email.Plain, &a.Registered, &a.Suspended, &a.SuspendReason, &serverLimit, &balance,
			&a.LastHash, &created, &createdNs, &limitRequests, &keys, &a.Email.Sealed, &a.Forgotten,
			&tokenVersion, &apiKeys); err != nil {
			return err
		}
		a.TokenVersion = int(tokenVersion)
		for _, k := range apiKeys {
			a.APIKeys[k.ID] = k
			a.APIKeyOrder = append(a.APIKeyOrder, k.ID)
		}
		for _, k := range keys {
			a.Keys[k.ID] = k
			a.KeyOrder = append(a.KeyOrder, k.ID)
		}
		for _, r := range limitRequests {
			a.LimitRequests[r.ID] = r
			a.LimitOrder = append(a.LimitOrder, r.ID)
		}
		bal, err := domain.ParseMoney(balance)
		if err != nil {
			return fmt.Errorf("account %s: balance: %w", id, err)
		}
		a.ID, a.Balance, a.ServerLimit, a.CreatedAt = id, bal, int(serverLimit), joinTime(created, createdNs)
		*f.accounts[id] = a
	}
	return rows.Err()
}

func (f *fold) scanServers(rows pgx.Rows) error {
	for rows.Next() {
		var s domain.Server
		var accountID, price, status string
		var keys, hostKeys []string
		var attempts, createdNs int32
		var created, suspended, destroyed, pwUntil pgtype.Timestamptz
		var lc, lp int64
		if err := rows.Scan(&accountID, &s.ID, &s.Label, &s.Plan, &s.Region, &price, &keys, &s.BackupID, &status,
			&s.IPv4, &s.InstanceID, &attempts, &s.Activated, &created, &createdNs, &suspended, &destroyed,
			&lc, &lp, &s.Error, &pwUntil, &hostKeys); err != nil {
			return err
		}
		var err error
		if s.HourlyPrice, err = domain.ParseMoney(price); err != nil {
			return fmt.Errorf("server %s: hourly price: %w", s.ID, err)
		}
		for _, fp := range keys {
			s.SSHKeys = append(s.SSHKeys, domain.SSHKey{Fingerprint: fp})
		}
		s.Status, s.Attempts = domain.ServerStatus(status), int(attempts)
		s.CreatedAt, s.SuspendedAt, s.DestroyedAt = joinTime(created, createdNs), joinTime(suspended, 0), joinTime(destroyed, 0)
		s.RootPasswordUntil = joinTime(pwUntil, 0)
		if len(hostKeys) > 0 {
			s.HostKeyFingerprints = hostKeys
		}
		a := f.accounts[accountID]
		a.Servers[s.ID] = &s
		a.ServerOrder = append(a.ServerOrder, s.ID)
		f.created[key{accountID, s.ID}] = eventstore.Position{Commit: uint64(lc), Prepare: uint64(lp)}
	}
	return rows.Err()
}

func (f *fold) scanTopups(rows pgx.Rows) error {
	for rows.Next() {
		var t domain.Topup
		var accountID, amount string
		var created, paid pgtype.Timestamptz
		var createdNs, paidNs int32
		var lc, lp int64
		var expires pgtype.Timestamptz
		var expiresNs int32
		var methods []byte
		if err := rows.Scan(&accountID, &t.ID, &amount, &t.Currency, &t.PayAddress, &t.ProviderRef, &t.Status,
			&created, &createdNs, &paid, &paidNs, &lc, &lp, &t.Requested, &t.Method, &t.CheckoutLink, &expires,
			&expiresNs, &methods, &t.Review, &t.ReviewClosed, &t.CreditedBy); err != nil {
			return err
		}
		t.ExpiresAt = joinTime(expires, expiresNs)
		if err := json.Unmarshal(methods, &t.Methods); err != nil {
			return fmt.Errorf("top-up %s: methods: %w", t.ID, err)
		}
		var err error
		if t.Amount, err = domain.ParseMoney(amount); err != nil {
			return fmt.Errorf("top-up %s: amount: %w", t.ID, err)
		}
		t.CreatedAt, t.PaidAt = joinTime(created, createdNs), joinTime(paid, paidNs)
		a := f.accounts[accountID]
		a.Topups[t.ID] = &t
		a.TopupOrder = append(a.TopupOrder, t.ID)
		f.created[key{accountID, t.ID}] = eventstore.Position{Commit: uint64(lc), Prepare: uint64(lp)}
	}
	return rows.Err()
}

func (f *fold) scanBackups(rows pgx.Rows) error {
	for rows.Next() {
		var b domain.Backup
		var id, status string
		var restores []string
		var created, expires pgtype.Timestamptz
		var createdNs, expiresNs int32
		var lc, lp pgtype.Int8
		if err := rows.Scan(&id, &b.AccountID, &b.ServerID, &b.InstanceID, &b.Label, &b.Plan, &b.Region, &status,
			&b.SnapshotID, &restores, &created, &createdNs, &expires, &expiresNs, &lc, &lp); err != nil {
			return err
		}
		b.Status = domain.BackupStatus(status)
		if len(restores) > 0 {
			b.Restores = restores
		}
		b.CreatedAt, b.ExpiresAt = joinTime(created, createdNs), joinTime(expires, expiresNs)
		if lc.Valid {
			// A backup row created means the stream started with its
			// request: the state's ID is the stream's.
			b.ID = id
			f.created[key{"", id}] = eventstore.Position{Commit: uint64(lc.Int64), Prepare: uint64(lp.Int64)}
		}
		*f.backups[id] = b
	}
	return rows.Err()
}

// apply folds one event into the working set.
func (f *fold) apply(ev eventstore.Event, e domain.Event) {
	prefix, id := domain.StreamID(ev.Stream)
	if prefix == domain.BackupStreamPrefix {
		b := f.backups[id]
		was := b.Exists()
		*b = domain.EvolveBackup(*b, e)
		if k := (key{"", id}); !was && b.Exists() {
			if _, ok := f.created[k]; !ok {
				f.created[k] = ev.Position
			}
		}
		return
	}
	a := f.accounts[id]
	switch e := e.(type) {
	case domain.ServerDeployed:
		if _, ok := f.created[key{id, e.ServerID}]; !ok {
			f.created[key{id, e.ServerID}] = ev.Position
		}
	case domain.TopupCreated:
		if _, ok := f.created[key{id, e.TopupID}]; !ok {
			f.created[key{id, e.TopupID}] = ev.Position
		}
	case domain.TopupRequested:
		if _, ok := f.created[key{id, e.TopupID}]; !ok {
			f.created[key{id, e.TopupID}] = ev.Position
		}
	case domain.LedgerPosted:
		f.addLedger(id, ev.Position, e)
	}
	*a = domain.Evolve(*a, e)
}

func (f *fold) addLedger(accountID string, pos eventstore.Position, tx domain.LedgerPosted) {
	lc, lp := int64(pos.Commit), int64(pos.Prepare)
	_, atNs := splitTime(tx.At)
	l := &f.ledger
	l.row(15)
	l.int8(lc)
	l.int8(lp)
	l.text(tx.TxID)
	l.text(string(tx.Kind))
	l.text(accountID)
	l.textOrNull(tx.ServerID)
	l.timestamptzOrNull(tx.From)
	l.timestamptzOrNull(tx.To)
	l.textOrNull(tx.TopupID)
	l.timestamptz(tx.At)
	l.int4(atNs)
	l.int4(optNs(tx.From))
	l.int4(optNs(tx.To))
	l.text(tx.PrevHash)
	l.text(tx.Hash)
	ps := &f.posting
	for n, p := range tx.Postings {
		ps.row(12)
		ps.int8(lc)
		ps.int8(lp)
		ps.int2(int16(n))
		ps.text(tx.TxID)
		ps.text(string(tx.Kind))
		ps.text(p.Account)
		if err := ps.numeric(p.Amount); err != nil && f.err == nil {
			f.err = fmt.Errorf("ledger transaction %s at %s: %w", tx.TxID, pos, err)
		}
		ps.textOrNull(tx.ServerID)
		ps.timestamptzOrNull(tx.From)
		ps.timestamptzOrNull(tx.To)
		ps.textOrNull(tx.TopupID)
		ps.timestamptz(tx.At)
	}
}

func optNs(t *time.Time) int32 {
	if t == nil {
		return 0
	}
	_, ns := splitTime(*t)
	return ns
}

// numeric converts Money for a binary COPY: the same coefficient and
// exponent, without a trip through its text (the ledger's postings are most
// of a rebuild's rows).
func numeric(m domain.Money) pgtype.Numeric {
	d := m.Decimal()
	n := pgtype.Numeric{Int: d.Coeff.MathBigInt(), Exp: d.Exponent, Valid: true}
	if d.Negative {
		n.Int.Neg(n.Int)
	}
	return n
}

// splitTime is how a time is kept: microseconds in a timestamptz (NULL for
// the zero time) and the nanoseconds below them.
func splitTime(t time.Time) (pgtype.Timestamptz, int32) {
	if t.IsZero() {
		return pgtype.Timestamptz{}, 0
	}
	return pgtype.Timestamptz{Time: t.Truncate(time.Microsecond), Valid: true}, int32(t.Nanosecond() % 1000)
}

func joinTime(ts pgtype.Timestamptz, ns int32) time.Time {
	if !ts.Valid {
		return time.Time{}
	}
	return ts.Time.UTC().Add(time.Duration(ns))
}

// joinLines packs a text[] value into one element of a text[] parameter
// (PostgreSQL has no arrays of arrays of different lengths); the upsert
// splits it again. Its elements, SSH key fingerprints and server ids, are
// never empty and never hold a newline.
func joinLines(ss []string) string { return strings.Join(ss, "\n") }

// folded is what a folded batch writes: the ledger rows as binary COPY
// streams, and the changed rows as one multi-row upsert per table (arrays
// unnested server-side).
type folded struct {
	ledger, posting copyRows
	rows            *pgx.Batch
	err             error // of encoding the ledger
}

// done takes the batch's writes from the folded rows.
func (f *fold) done() *folded {
	b := &pgx.Batch{}
	f.queueAccounts(b)
	f.queueServers(b)
	f.queueTopups(b)
	f.queueBackups(b)
	return &folded{ledger: f.ledger, posting: f.posting, rows: b, err: f.err}
}

// write sends the batch's writes in tx.
func (w *folded) write(ctx context.Context, tx pgx.Tx) error {
	if w.err != nil {
		return w.err
	}
	if err := copyIn(ctx, tx, "ledger_transactions", `log_commit, log_prepare, tx_id, kind, account_id, server_id,
		hour_from, hour_to, topup_id, created_at, created_at_ns, hour_from_ns, hour_to_ns, prev_hash, hash`, &w.ledger); err != nil {
		return err
	}
	if err := copyIn(ctx, tx, "postings", `log_commit, log_prepare, n, tx_id, kind, account, amount, server_id,
		hour_from, hour_to, topup_id, created_at`, &w.posting); err != nil {
		return err
	}
	if w.rows.Len() == 0 {
		return nil
	}
	return classify(ctx, "write rows", tx.SendBatch(ctx, w.rows).Close())
}

func (f *fold) queueAccounts(b *pgx.Batch) {
	n := len(f.accountOrder)
	if n == 0 {
		return
	}
	var (
		emails, reasons, balances, hashes = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		sealed                            = make([]string, n)
		registered, suspended, forgotten  = make([]bool, n), make([]bool, n), make([]bool, n)
		limits, createdNs                 = make([]int32, n), make([]int32, n)
		created                           = make([]pgtype.Timestamptz, n)
		limitRequests, keys               = make([]string, n), make([]string, n)
		tokenVersions, apiKeys            = make([]int32, n), make([]string, n)
	)
	for i, id := range f.accountOrder {
		a := f.accounts[id]
		limitRequests[i], keys[i] = ordered(a.LimitRequests, a.LimitOrder), ordered(a.Keys, a.KeyOrder)
		emails[i], reasons[i], balances[i], hashes[i] = a.Email.Plain, a.SuspendReason, a.Balance.String(), a.LastHash
		sealed[i], forgotten[i] = a.Email.Sealed, a.Forgotten
		registered[i], suspended[i], limits[i] = a.Registered, a.Suspended, int32(a.ServerLimit)
		created[i], createdNs[i] = splitTime(a.CreatedAt)
		tokenVersions[i], apiKeys[i] = int32(a.TokenVersion), ordered(a.APIKeys, a.APIKeyOrder)
	}
	b.Queue(`INSERT INTO accounts (id, email, registered, suspended, suspend_reason, server_limit, balance, last_hash,
			created_at, created_at_ns, limit_requests, ssh_keys, sealed_email, forgotten, token_version, api_keys)
		SELECT id, email, registered, suspended, suspend_reason, server_limit, balance::numeric, last_hash,
			created_at, created_at_ns, limit_requests::jsonb, ssh_keys::jsonb, sealed_email, forgotten, token_version,
			api_keys::jsonb
		FROM unnest($1::text[], $2::text[], $3::bool[], $4::bool[], $5::text[], $6::int[], $7::text[], $8::text[],
			$9::timestamptz[], $10::int[], $11::text[], $12::text[], $13::text[], $14::bool[], $15::int[], $16::text[])
			AS t(id, email, registered, suspended, suspend_reason, server_limit, balance, last_hash, created_at, created_at_ns,
				limit_requests, ssh_keys, sealed_email, forgotten, token_version, api_keys)
		ON CONFLICT (id) DO UPDATE SET email = excluded.email, registered = excluded.registered,
			suspended = excluded.suspended, suspend_reason = excluded.suspend_reason,
			server_limit = excluded.server_limit, balance = excluded.balance, last_hash = excluded.last_hash,
			created_at = excluded.created_at, created_at_ns = excluded.created_at_ns,
			limit_requests = excluded.limit_requests, ssh_keys = excluded.ssh_keys,
			sealed_email = excluded.sealed_email, forgotten = excluded.forgotten,
			token_version = excluded.token_version, api_keys = excluded.api_keys`,
		f.accountOrder, emails, registered, suspended, reasons, limits, balances, hashes, created, createdNs, limitRequests, keys,
		sealed, forgotten, tokenVersions, apiKeys)
}

// ordered is what the account keeps in a map and an order (limit requests,
// SSH keys) as the JSON array its column holds, oldest first.
func ordered[V any](m map[string]V, order []string) string {
	list := make([]V, 0, len(order))
	for _, id := range order {
		list = append(list, m[id])
	}
	b, err := json.Marshal(list)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", list, err)) // plain fields: cannot fail
	}
	return string(b)
}

func (f *fold) queueServers(b *pgx.Batch) {
	var (
		accts, ids, labels, plans, regions, prices, keys, backups, statuses, ips, instances, errs []string
		attempts, createdNs                                                                       []int32
		activated                                                                                 []bool
		created, suspended, destroyed, pwUntil                                                    []pgtype.Timestamptz
		lcs, lps                                                                                  []int64
	)
	var hostKeys []string
	for _, k := range f.serverOrder {
		s, ok := f.accounts[k.account].Servers[k.id]
		if !ok {
			continue // an event about a server the account never had: Evolve ignored it
		}
		pos := f.created[k]
		fps := make([]string, len(s.SSHKeys))
		for i, sk := range s.SSHKeys {
			fps[i] = sk.Fingerprint
		}
		c, cns := splitTime(s.CreatedAt)
		sus, _ := splitTime(s.SuspendedAt)
		des, _ := splitTime(s.DestroyedAt)
		accts, ids, labels, plans, regions = append(accts, k.account), append(ids, s.ID), append(labels, s.Label),
			append(plans, s.Plan), append(regions, s.Region)
		prices, keys, backups = append(prices, s.HourlyPrice.String()), append(keys, joinLines(fps)), append(backups, s.BackupID)
		statuses, ips, instances = append(statuses, string(s.Status)), append(ips, s.IPv4), append(instances, s.InstanceID)
		attempts, activated = append(attempts, int32(s.Attempts)), append(activated, s.Activated)
		created, createdNs, suspended, destroyed = append(created, c), append(createdNs, cns), append(suspended, sus), append(destroyed, des)
		lcs, lps = append(lcs, int64(pos.Commit)), append(lps, int64(pos.Prepare))
		pw, _ := splitTime(s.RootPasswordUntil)
		errs, pwUntil = append(errs, s.Error), append(pwUntil, pw)
		hostKeys = append(hostKeys, joinLines(s.HostKeyFingerprints))
	}
	if len(ids) == 0 {
		return
	}
	b.Queue(`INSERT INTO servers (account_id, id, label, plan, region, hourly_price, ssh_keys, backup_id, status, ipv4,
			instance_id, attempts, activated, created_at, created_at_ns, suspended_at, destroyed_at, log_commit, log_prepare,
			error, root_password_until, host_keys)
		SELECT account_id, id, label, plan, region, hourly_price::numeric,
			CASE WHEN ssh_keys = '' THEN '{}'::text[] ELSE string_to_array(ssh_keys, E'\n') END,
			backup_id, status, ipv4, instance_id, attempts, activated, created_at, created_at_ns, suspended_at,
			destroyed_at, log_commit, log_prepare, error, root_password_until,
			CASE WHEN host_keys = '' THEN '{}'::text[] ELSE string_to_array(host_keys, E'\n') END
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::text[], $11::text[], $12::int[], $13::bool[], $14::timestamptz[], $15::int[],
			$16::timestamptz[], $17::timestamptz[], $18::bigint[], $19::bigint[], $20::text[], $21::timestamptz[],
			$22::text[])
			AS t(account_id, id, label, plan, region, hourly_price, ssh_keys, backup_id, status, ipv4, instance_id,
				attempts, activated, created_at, created_at_ns, suspended_at, destroyed_at, log_commit, log_prepare,
				error, root_password_until, host_keys)
		ON CONFLICT (account_id, id) DO UPDATE SET label = excluded.label, plan = excluded.plan,
			region = excluded.region, hourly_price = excluded.hourly_price, ssh_keys = excluded.ssh_keys,
			backup_id = excluded.backup_id, status = excluded.status, ipv4 = excluded.ipv4,
			instance_id = excluded.instance_id, attempts = excluded.attempts, activated = excluded.activated,
			created_at = excluded.created_at, created_at_ns = excluded.created_at_ns,
			suspended_at = excluded.suspended_at, destroyed_at = excluded.destroyed_at, error = excluded.error,
			root_password_until = excluded.root_password_until, host_keys = excluded.host_keys`,
		accts, ids, labels, plans, regions, prices, keys, backups, statuses, ips, instances, attempts, activated,
		created, createdNs, suspended, destroyed, lcs, lps, errs, pwUntil, hostKeys)
}

func (f *fold) queueTopups(b *pgx.Batch) {
	var (
		accts, ids, amounts, currencies, addresses, refs, statuses []string
		created, paid                                              []pgtype.Timestamptz
		createdNs, paidNs                                          []int32
		lcs, lps                                                   []int64
		requested, closed                                          []bool
		methodIDs, links, methods, reviews, creditors              []string
		expires                                                    []pgtype.Timestamptz
		expiresNs                                                  []int32
	)
	for _, k := range f.topupOrder {
		t, ok := f.accounts[k.account].Topups[k.id]
		if !ok {
			continue
		}
		pos := f.created[k]
		c, cns := splitTime(t.CreatedAt)
		p, pns := splitTime(t.PaidAt)
		accts, ids, amounts, currencies = append(accts, k.account), append(ids, t.ID), append(amounts, t.Amount.String()), append(currencies, t.Currency)
		addresses, refs, statuses = append(addresses, t.PayAddress), append(refs, t.ProviderRef), append(statuses, t.Status)
		created, createdNs, paid, paidNs = append(created, c), append(createdNs, cns), append(paid, p), append(paidNs, pns)
		lcs, lps = append(lcs, int64(pos.Commit)), append(lps, int64(pos.Prepare))
		e, ens := splitTime(t.ExpiresAt)
		ms := []byte("[]")
		if len(t.Methods) > 0 {
			ms, _ = json.Marshal(t.Methods) // strings and decimals: cannot fail
		}
		requested, closed = append(requested, t.Requested), append(closed, t.ReviewClosed)
		methodIDs, links, methods = append(methodIDs, t.Method), append(links, t.CheckoutLink), append(methods, string(ms))
		reviews, creditors = append(reviews, t.Review), append(creditors, t.CreditedBy)
		expires, expiresNs = append(expires, e), append(expiresNs, ens)
	}
	if len(ids) == 0 {
		return
	}
	b.Queue(`INSERT INTO topups (account_id, id, amount, currency, pay_address, provider_ref, status, created_at,
			created_at_ns, paid_at, paid_at_ns, log_commit, log_prepare, requested, method, checkout_link, expires_at,
			expires_at_ns, methods, review, review_closed, credited_by)
		SELECT account_id, id, amount::numeric, currency, pay_address, provider_ref, status, created_at, created_at_ns,
			paid_at, paid_at_ns, log_commit, log_prepare, requested, method, checkout_link, expires_at, expires_at_ns,
			methods::jsonb, review, review_closed, credited_by
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::timestamptz[], $9::int[], $10::timestamptz[], $11::int[], $12::bigint[], $13::bigint[],
			$14::boolean[], $15::text[], $16::text[], $17::timestamptz[], $18::int[], $19::text[], $20::text[],
			$21::boolean[], $22::text[])
			AS t(account_id, id, amount, currency, pay_address, provider_ref, status, created_at, created_at_ns,
				paid_at, paid_at_ns, log_commit, log_prepare, requested, method, checkout_link, expires_at,
				expires_at_ns, methods, review, review_closed, credited_by)
		ON CONFLICT (account_id, id) DO UPDATE SET amount = excluded.amount, currency = excluded.currency,
			pay_address = excluded.pay_address, provider_ref = excluded.provider_ref, status = excluded.status,
			created_at = excluded.created_at, created_at_ns = excluded.created_at_ns,
			paid_at = excluded.paid_at, paid_at_ns = excluded.paid_at_ns, requested = excluded.requested,
			method = excluded.method, checkout_link = excluded.checkout_link, expires_at = excluded.expires_at,
			expires_at_ns = excluded.expires_at_ns, methods = excluded.methods, review = excluded.review,
			review_closed = excluded.review_closed, credited_by = excluded.credited_by`,
		accts, ids, amounts, currencies, addresses, refs, statuses, created, createdNs, paid, paidNs, lcs, lps,
		requested, methodIDs, links, expires, expiresNs, methods, reviews, closed, creditors)
}

func (f *fold) queueBackups(b *pgx.Batch) {
	n := len(f.backupOrder)
	if n == 0 {
		return
	}
	var (
		accts, servers, instances, labels, plans, regions, statuses, snapshots, restores = make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n)
		created, expires     = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
		createdNs, expiresNs = make([]int32, n), make([]int32, n)
		lcs, lps             = make([]pgtype.Int8, n), make([]pgtype.Int8, n)
	)
	for i, id := range f.backupOrder {
		bk := f.backups[id]
		accts[i], servers[i], instances[i], labels[i] = bk.AccountID, bk.ServerID, bk.InstanceID, bk.Label
		plans[i], regions[i], statuses[i], snapshots[i] = bk.Plan, bk.Region, string(bk.Status), bk.SnapshotID
		restores[i] = joinLines(bk.Restores)
		created[i], createdNs[i] = splitTime(bk.CreatedAt)
		expires[i], expiresNs[i] = splitTime(bk.ExpiresAt)
		if pos, ok := f.created[key{"", id}]; ok {
			lcs[i] = pgtype.Int8{Int64: int64(pos.Commit), Valid: true}
			lps[i] = pgtype.Int8{Int64: int64(pos.Prepare), Valid: true}
		}
	}
	b.Queue(`INSERT INTO backups (id, account_id, server_id, instance_id, label, plan, region, status, snapshot_id,
			restores, created_at, created_at_ns, expires_at, expires_at_ns, log_commit, log_prepare)
		SELECT id, account_id, server_id, instance_id, label, plan, region, status, snapshot_id,
			CASE WHEN restores = '' THEN '{}'::text[] ELSE string_to_array(restores, E'\n') END,
			created_at, created_at_ns, expires_at, expires_at_ns, log_commit, log_prepare
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::text[], $11::timestamptz[], $12::int[], $13::timestamptz[], $14::int[], $15::bigint[],
			$16::bigint[])
			AS t(id, account_id, server_id, instance_id, label, plan, region, status, snapshot_id, restores,
				created_at, created_at_ns, expires_at, expires_at_ns, log_commit, log_prepare)
		ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id, server_id = excluded.server_id,
			instance_id = excluded.instance_id, label = excluded.label, plan = excluded.plan,
			region = excluded.region, status = excluded.status, snapshot_id = excluded.snapshot_id,
			restores = excluded.restores, created_at = excluded.created_at, created_at_ns = excluded.created_at_ns,
			expires_at = excluded.expires_at, expires_at_ns = excluded.expires_at_ns,
			log_commit = coalesce(backups.log_commit, excluded.log_commit),
			log_prepare = coalesce(backups.log_prepare, excluded.log_prepare)`,
		f.backupOrder, accts, servers, instances, labels, plans, regions, statuses, snapshots, restores,
		created, createdNs, expires, expiresNs, lcs, lps)
}

// copyIn sends rows to columns of table by one binary COPY.
func copyIn(ctx context.Context, tx pgx.Tx, table, columns string, rows *copyRows) error {
	if rows.rows == 0 {
		return nil
	}
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(rows.stream()),
		"COPY "+pgx.Identifier{table}.Sanitize()+" ("+columns+") FROM STDIN (FORMAT binary)")
	if err != nil {
		return classify(ctx, "copy "+table, err)
	}
	if tag.RowsAffected() != int64(rows.rows) {
		return fmt.Errorf("copy %s: %d rows copied of %d", table, tag.RowsAffected(), rows.rows)
	}
	return nil
}
