package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/projections"
)

// Each read is a single statement, so it sees one consistent snapshot even
// while a batch is being applied.

// Account returns the account's view; its hourly spend is summed from the
// servers billed now.
func (m *Model) Account(ctx context.Context, id string) (projections.AccountView, error) {
	v := projections.AccountView{ID: id}
	var balance, spend string
	var limit, createdNs int32
	var created pgtype.Timestamptz
	err := m.pool.QueryRow(ctx, `SELECT a.email, a.sealed_email, a.forgotten, a.balance::text, a.suspended, a.server_limit,
			a.created_at, a.created_at_ns, coalesce((SELECT sum(s.hourly_price) FROM servers s
				WHERE s.account_id = a.id AND s.status IN ('PROVISIONING', 'ACTIVE')), 0)::text
		FROM accounts a WHERE a.id = $1 AND a.registered`, id).
		Scan(&v.Email.Plain, &v.Email.Sealed, &v.Forgotten, &balance, &v.Suspended, &limit, &created, &createdNs, &spend)
	if errors.Is(err, pgx.ErrNoRows) {
		return projections.AccountView{}, fmt.Errorf("account %s: %w", id, projections.ErrNotFound)
	}
	if err != nil {
		return projections.AccountView{}, classify(ctx, "read account", err)
	}
	if v.Balance, err = domain.ParseMoney(balance); err != nil {
		return projections.AccountView{}, fmt.Errorf("account %s: balance: %w", id, err)
	}
	if v.HourlySpend, err = domain.ParseMoney(spend); err != nil {
		return projections.AccountView{}, fmt.Errorf("account %s: hourly spend: %w", id, err)
	}
	v.ServerLimit, v.CreatedAt = int(limit), joinTime(created, createdNs)
	return v, nil
}

// Session is what authenticating a request needs of the account: one row.
func (m *Model) Session(ctx context.Context, accountID, apiKeyID string) (projections.SessionView, error) {
	var v projections.SessionView
	var version int32
	err := m.pool.QueryRow(ctx, `SELECT token_version, forgotten,
			$2 <> '' AND api_keys @> jsonb_build_array(jsonb_build_object('id', $2::text))
		FROM accounts WHERE id = $1 AND registered`, accountID, apiKeyID).Scan(&version, &v.Forgotten, &v.KeyLive)
	if errors.Is(err, pgx.ErrNoRows) {
		return projections.SessionView{}, fmt.Errorf("account %s: %w", accountID, projections.ErrNotFound)
	}
	if err != nil {
		return projections.SessionView{}, classify(ctx, "read session", err)
	}
	v.TokenVersion = int(version)
	return v, nil
}

// APIKeys lists the account's API keys, oldest first.
func (m *Model) APIKeys(ctx context.Context, accountID string) ([]domain.APIKey, error) {
	var out []domain.APIKey
	err := m.pool.QueryRow(ctx, `SELECT api_keys FROM accounts WHERE id = $1 AND registered`, accountID).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("account %s: %w", accountID, projections.ErrNotFound)
	}
	if err != nil {
		return nil, classify(ctx, "read API keys", err)
	}
	if out == nil {
		out = []domain.APIKey{}
	}
	return out, nil
}

// PersonalData lists the accounts with a plain email, and the forgotten
// ones, by id.
func (m *Model) PersonalData(ctx context.Context) ([]projections.PersonalRecord, error) {
	rows, err := m.pool.Query(ctx, `SELECT id, email, forgotten FROM accounts
		WHERE registered AND (email <> '' OR forgotten) ORDER BY id`)
	if err != nil {
		return nil, classify(ctx, "read personal data", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (projections.PersonalRecord, error) {
		var p projections.PersonalRecord
		return p, r.Scan(&p.AccountID, &p.Plain, &p.Forgotten)
	})
	if err != nil {
		return nil, classify(ctx, "read personal data", err)
	}
	if out == nil {
		out = []projections.PersonalRecord{}
	}
	return out, nil
}

// SSHKeys lists the keys stored on the account.
func (m *Model) SSHKeys(ctx context.Context, accountID string) ([]domain.StoredKey, error) {
	var out []domain.StoredKey
	err := m.pool.QueryRow(ctx, `SELECT ssh_keys FROM accounts WHERE id = $1 AND registered`, accountID).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("account %s: %w", accountID, projections.ErrNotFound)
	}
	if err != nil {
		return nil, classify(ctx, "read ssh keys", err)
	}
	if out == nil {
		out = []domain.StoredKey{}
	}
	return out, nil
}

// LimitRequests lists the account's requests for a higher limit.
func (m *Model) LimitRequests(ctx context.Context, accountID string) ([]domain.LimitRequest, error) {
	var out []domain.LimitRequest
	err := m.pool.QueryRow(ctx, `SELECT limit_requests FROM accounts WHERE id = $1 AND registered`, accountID).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("account %s: %w", accountID, projections.ErrNotFound)
	}
	if err != nil {
		return nil, classify(ctx, "read limit requests", err)
	}
	if out == nil {
		out = []domain.LimitRequest{}
	}
	return out, nil
}

// PendingLimitRequests lists the requests waiting for an operator.
func (m *Model) PendingLimitRequests(ctx context.Context) ([]projections.PendingLimit, error) {
	rows, err := m.pool.Query(ctx, `SELECT id, email, sealed_email, server_limit, limit_requests FROM accounts
		WHERE limit_requests @> '[{"status":"PENDING"}]' AND NOT forgotten`)
	if err != nil {
		return nil, classify(ctx, "read pending limit requests", err)
	}
	defer rows.Close()
	out := []projections.PendingLimit{}
	for rows.Next() {
		var id string
		var email domain.StoredEmail
		var current int32
		var list []domain.LimitRequest
		if err := rows.Scan(&id, &email.Plain, &email.Sealed, &current, &list); err != nil {
			return nil, classify(ctx, "read pending limit requests", err)
		}
		for _, r := range list {
			if r.Status == domain.LimitPending {
				out = append(out, projections.PendingLimit{AccountID: id, Email: email, Current: int(current), Request: r})
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, "read pending limit requests", err)
	}
	slices.SortFunc(out, func(x, y projections.PendingLimit) int { return x.Request.CreatedAt.Compare(y.Request.CreatedAt) })
	return out, nil
}

// Billing is the account's balance and its billed servers, each with when
// its next hour is charged: the end of the last hour charged to it.
func (m *Model) Billing(ctx context.Context, accountID string) (projections.BillingView, error) {
	acct, err := m.Account(ctx, accountID)
	if err != nil {
		return projections.BillingView{}, err
	}
	v := projections.BillingView{Balance: acct.Balance, HourlySpend: acct.HourlySpend}
	rows, err := m.pool.Query(ctx, `SELECT s.hourly_price::text, coalesce(lt.hour_to, s.created_at), coalesce(lt.hour_to_ns, s.created_at_ns)
		FROM servers s LEFT JOIN LATERAL (
			SELECT l.hour_to, l.hour_to_ns FROM ledger_transactions l
			WHERE l.account_id = s.account_id AND l.server_id = s.id AND l.kind = 'charge'
			ORDER BY l.hour_to DESC, l.hour_to_ns DESC LIMIT 1) lt ON true
		WHERE s.account_id = $1 AND s.status IN ('PROVISIONING', 'ACTIVE')
		ORDER BY s.log_commit, s.log_prepare`, accountID)
	if err != nil {
		return projections.BillingView{}, classify(ctx, "read billing", err)
	}
	defer rows.Close()
	for rows.Next() {
		var price string
		var next pgtype.Timestamptz
		var ns int32
		if err := rows.Scan(&price, &next, &ns); err != nil {
			return projections.BillingView{}, classify(ctx, "read billing", err)
		}
		p, err := domain.ParseMoney(price)
		if err != nil {
			return projections.BillingView{}, fmt.Errorf("account %s: hourly price: %w", accountID, err)
		}
		v.Billed = append(v.Billed, domain.Billed{Price: p, Next: joinTime(next, ns)})
	}
	if err := rows.Err(); err != nil {
		return projections.BillingView{}, classify(ctx, "read billing", err)
	}
	return v, nil
}

// serverColumns are read through a LEFT JOIN from the account, so that one
// statement tells a missing account (no row) from an account without the
// server (a row of NULLs).
const serverColumns = `a.id, s.id, s.label, s.status, s.region, s.plan, s.ipv4, s.hourly_price::text, s.ssh_keys,
	s.backup_id, s.created_at, s.created_at_ns, s.error, s.root_password_until, s.host_keys`

// scanServer reads a row of serverColumns; ok is false for the NULL row of
// an account without servers.
func scanServer(rows pgx.Rows) (v projections.ServerView, ok bool, err error) {
	var id, label, status, region, plan, ipv4, price, backupID, failure pgtype.Text
	var keys, hostKeys []string
	var created, pwUntil pgtype.Timestamptz
	var createdNs pgtype.Int4
	if err := rows.Scan(&v.AccountID, &id, &label, &status, &region, &plan, &ipv4, &price, &keys, &backupID,
		&created, &createdNs, &failure, &pwUntil, &hostKeys); err != nil {
		return v, false, err
	}
	if !id.Valid {
		return v, false, nil
	}
	hourly, err := domain.ParseMoney(price.String)
	if err != nil {
		return v, false, fmt.Errorf("server %s: hourly price: %w", id.String, err)
	}
	v.ID, v.Label, v.Status, v.Region, v.Plan = id.String, label.String, domain.ServerStatus(status.String), region.String, plan.String
	v.HourlyPrice, v.BackupID, v.CreatedAt = hourly, backupID.String, joinTime(created, createdNs.Int32)
	v.Error, v.RootPasswordUntil = failure.String, joinTime(pwUntil, 0)
	if v.Status == domain.StatusActive {
		// The address and host keys are shown only while the server runs.
		v.IPv4 = ipv4.String
		if len(hostKeys) > 0 {
			v.HostKeyFingerprints = hostKeys
		}
	}
	if len(keys) > 0 {
		v.SSHKeys = keys
	}
	return v, true, nil
}

// Servers lists the account's servers that are not DESTROYED, oldest first.
func (m *Model) Servers(ctx context.Context, accountID string) ([]projections.ServerView, error) {
	rows, err := m.pool.Query(ctx, `SELECT `+serverColumns+`
		FROM accounts a LEFT JOIN servers s ON s.account_id = a.id AND s.status <> 'DESTROYED'
		WHERE a.id = $1 AND a.registered ORDER BY s.log_commit, s.log_prepare`, accountID)
	if err != nil {
		return nil, classify(ctx, "read servers", err)
	}
	defer rows.Close()
	out, found := []projections.ServerView{}, false
	for rows.Next() {
		found = true
		v, ok, err := scanServer(rows)
		if err != nil {
			return nil, classify(ctx, "read servers", err)
		}
		if ok {
			out = append(out, v)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, "read servers", err)
	}
	if !found {
		return nil, fmt.Errorf("account %s: %w", accountID, projections.ErrNotFound)
	}
	return out, nil
}

// Server returns one of the account's servers, DESTROYED included.
func (m *Model) Server(ctx context.Context, accountID, id string) (projections.ServerView, error) {
	rows, err := m.pool.Query(ctx, `SELECT `+serverColumns+`
		FROM accounts a LEFT JOIN servers s ON s.account_id = a.id AND s.id = $2
		WHERE a.id = $1 AND a.registered`, accountID, id)
	if err != nil {
		return projections.ServerView{}, classify(ctx, "read server", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return projections.ServerView{}, classify(ctx, "read server", err)
		}
		return projections.ServerView{}, fmt.Errorf("account %s: %w", accountID, projections.ErrNotFound)
	}
	v, ok, err := scanServer(rows)
	if err != nil {
		return projections.ServerView{}, classify(ctx, "read server", err)
	}
	if !ok {
		return projections.ServerView{}, fmt.Errorf("server %s: %w", id, projections.ErrNotFound)
	}
	return v, nil
}

const topupColumns = `a.id, t.id, t.status, t.amount::text, t.currency, t.pay_address, t.created_at, t.created_at_ns,
	t.paid_at, t.paid_at_ns, t.requested, t.provider_ref, t.method, t.checkout_link, t.expires_at, t.expires_at_ns,
	t.methods, t.review, t.review_closed`

// shownTopups is the condition of domain.Topup.Visible.
const shownTopups = `t.status NOT IN ('OPENING', 'FAILED')`

func scanTopup(rows pgx.Rows) (v projections.TopupView, ok bool, err error) {
	var id, status, amount, currency, address, ref, method, link, review pgtype.Text
	var created, paid, expires pgtype.Timestamptz
	var createdNs, paidNs, expiresNs pgtype.Int4
	var requested, closed pgtype.Bool
	var methods []byte
	if err := rows.Scan(&v.AccountID, &id, &status, &amount, &currency, &address, &created, &createdNs,
		&paid, &paidNs, &requested, &ref, &method, &link, &expires, &expiresNs, &methods, &review, &closed); err != nil {
		return v, false, err
	}
	if !id.Valid {
		return v, false, nil
	}
	if requested.Bool {
		v.InvoiceRef = ref.String
	}
	v.Method, v.CheckoutLink, v.ExpiresAt = method.String, link.String, joinTime(expires, expiresNs.Int32)
	v.Review, v.ReviewOpen = review.String, review.String != "" && !closed.Bool
	if len(methods) > 0 {
		if err := json.Unmarshal(methods, &v.Methods); err != nil {
			return v, false, fmt.Errorf("top-up %s: methods: %w", id.String, err)
		}
	}
	if !id.Valid {
		return v, false, nil
	}
	amt, err := domain.ParseMoney(amount.String)
	if err != nil {
		return v, false, fmt.Errorf("top-up %s: amount: %w", id.String, err)
	}
	v.ID, v.Status, v.Amount, v.Currency, v.PayAddress = id.String, status.String, amt, currency.String, address.String
	v.CreatedAt, v.PaidAt = joinTime(created, createdNs.Int32), joinTime(paid, paidNs.Int32)
	return v, true, nil
}

// Topups lists the account's top-ups, oldest first.
func (m *Model) Topups(ctx context.Context, accountID string) ([]projections.TopupView, error) {
	rows, err := m.pool.Query(ctx, `SELECT `+topupColumns+`
		FROM accounts a LEFT JOIN topups t ON t.account_id = a.id AND `+shownTopups+`
		WHERE a.id = $1 AND a.registered ORDER BY t.log_commit, t.log_prepare`, accountID)
	if err != nil {
		return nil, classify(ctx, "read top-ups", err)
	}
	defer rows.Close()
	out, found := []projections.TopupView{}, false
	for rows.Next() {
		found = true
		v, ok, err := scanTopup(rows)
		if err != nil {
			return nil, classify(ctx, "read top-ups", err)
		}
		if ok {
			out = append(out, v)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, "read top-ups", err)
	}
	if !found {
		return nil, fmt.Errorf("account %s: %w", accountID, projections.ErrNotFound)
	}
	return out, nil
}

// Topup returns one of the account's top-ups.
func (m *Model) Topup(ctx context.Context, accountID, id string) (projections.TopupView, error) {
	rows, err := m.pool.Query(ctx, `SELECT `+topupColumns+`
		FROM accounts a LEFT JOIN topups t ON t.account_id = a.id AND t.id = $2 AND `+shownTopups+`
		WHERE a.id = $1 AND a.registered`, accountID, id)
	if err != nil {
		return projections.TopupView{}, classify(ctx, "read top-up", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return projections.TopupView{}, classify(ctx, "read top-up", err)
		}
		return projections.TopupView{}, fmt.Errorf("account %s: %w", accountID, projections.ErrNotFound)
	}
	v, ok, err := scanTopup(rows)
	if err != nil {
		return projections.TopupView{}, classify(ctx, "read top-up", err)
	}
	if !ok {
		return projections.TopupView{}, fmt.Errorf("top-up %s: %w", id, projections.ErrNotFound)
	}
	return v, nil
}

// visibleBackups is the condition of domain.Shown at ($2, $3), the instant
// split like the stored times: the comparison is exact to the nanosecond.
// (Every backup is shown until ExpiredShown, 168 hours, after it stopped
// being restorable; a deleted one's expires_at is when it was deleted.)
const visibleBackups = `(expires_at + interval '168 hours', expires_at_ns) > ($2, $3)`

const backupColumns = `id, account_id, server_id, label, status, region, plan, created_at, created_at_ns,
	expires_at, expires_at_ns`

// scanBackup reads a backup row as the customer sees it at now.
func scanBackup(row pgx.Row, now time.Time) (projections.BackupView, error) {
	var v projections.BackupView
	var status string
	var created, expires pgtype.Timestamptz
	var createdNs, expiresNs int32
	if err := row.Scan(&v.ID, &v.AccountID, &v.ServerID, &v.Label, &status, &v.Region, &v.Plan, &created,
		&createdNs, &expires, &expiresNs); err != nil {
		return v, err
	}
	v.CreatedAt, v.ExpiresAt = joinTime(created, createdNs), joinTime(expires, expiresNs)
	v.Status, _ = domain.Shown(domain.BackupStatus(status), v.ExpiresAt, now)
	return v, nil
}

func nowArgs(now time.Time) (time.Time, int32) {
	return now.Truncate(time.Microsecond), int32(now.Nanosecond() % 1000)
}

// Backups lists the account's backups shown at now (domain.Shown), oldest
// first.
func (m *Model) Backups(ctx context.Context, accountID string, now time.Time) ([]projections.BackupView, error) {
	at, ns := nowArgs(now)
	rows, err := m.pool.Query(ctx, `SELECT `+backupColumns+` FROM backups
		WHERE account_id = $1 AND log_commit IS NOT NULL AND `+visibleBackups+`
		ORDER BY log_commit, log_prepare`, accountID, at, ns)
	if err != nil {
		return nil, classify(ctx, "read backups", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (projections.BackupView, error) { return scanBackup(r, now) })
	if err != nil {
		return nil, classify(ctx, "read backups", err)
	}
	if out == nil {
		out = []projections.BackupView{}
	}
	return out, nil
}

// Backup returns one of the account's backups shown at now.
func (m *Model) Backup(ctx context.Context, accountID, id string, now time.Time) (projections.BackupView, error) {
	at, ns := nowArgs(now)
	v, err := scanBackup(m.pool.QueryRow(ctx, `SELECT `+backupColumns+` FROM backups
		WHERE account_id = $1 AND id = $4 AND `+visibleBackups, accountID, at, ns, id), now)
	if errors.Is(err, pgx.ErrNoRows) {
		return projections.BackupView{}, fmt.Errorf("backup %s: %w", id, projections.ErrNotFound)
	}
	if err != nil {
		return projections.BackupView{}, classify(ctx, "read backup", err)
	}
	return v, nil
}

// WorkAccounts lists, in id order, the accounts with a server that is not
// DESTROYED or ERROR.
func (m *Model) WorkAccounts(ctx context.Context) ([]string, error) {
	rows, err := m.pool.Query(ctx, `SELECT DISTINCT account_id FROM servers
		WHERE status NOT IN ('DESTROYED', 'ERROR') ORDER BY account_id`)
	if err != nil {
		return nil, classify(ctx, "read work accounts", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, classify(ctx, "read work accounts", err)
	}
	if len(out) == 0 {
		return nil, nil // as the memory model: no list rather than an empty one
	}
	return out, nil
}

// OpenBackups lists, in id order, the backups still PENDING, AVAILABLE or
// ERROR: to complete, expire or clean up.
func (m *Model) OpenBackups(ctx context.Context) ([]string, error) {
	rows, err := m.pool.Query(ctx, `SELECT id FROM backups
		WHERE status IN ('PENDING', 'AVAILABLE', 'ERROR') ORDER BY id`)
	if err != nil {
		return nil, classify(ctx, "read open backups", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, classify(ctx, "read open backups", err)
	}
	if len(out) == 0 {
		return nil, nil // as the memory model: no list rather than an empty one
	}
	return out, nil
}
