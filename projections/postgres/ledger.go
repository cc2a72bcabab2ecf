package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// Ledger lists the account's ledger transactions newest first. The running
// balance is summed over the customer's postings in log order, the same fold
// the balance is.
func (m *Model) Ledger(ctx context.Context, accountID string, before eventstore.Position, limit int) ([]projections.LedgerEntry, error) {
	if _, err := m.Account(ctx, accountID); err != nil {
		return nil, err
	}
	commit, prepare := int64(before.Commit), int64(before.Prepare)
	if before.IsZero() {
		commit, prepare = -1, -1
	}
	rows, err := m.pool.Query(ctx, `
		WITH customer AS (
			SELECT t.log_commit, t.log_prepare, t.tx_id, t.kind, t.server_id, t.hour_from, t.hour_to, t.topup_id,
				t.created_at, t.created_at_ns, t.hour_from_ns, t.hour_to_ns, coalesce(sum(p.amount), 0) AS amount
			FROM ledger_transactions t
			LEFT JOIN postings p ON p.log_commit = t.log_commit AND p.log_prepare = t.log_prepare AND p.account = $2
			WHERE t.account_id = $1
			GROUP BY t.log_commit, t.log_prepare
		), running AS (
			SELECT *, sum(amount) OVER (ORDER BY log_commit, log_prepare) AS balance_after FROM customer
		)
		SELECT log_commit, log_prepare, tx_id, kind, amount::text, balance_after::text, created_at, created_at_ns,
			coalesce(server_id, ''), hour_from, hour_from_ns, hour_to, hour_to_ns, coalesce(topup_id, '')
		FROM running
		WHERE $3 < 0 OR (log_commit, log_prepare) < ($3, $4)
		ORDER BY log_commit DESC, log_prepare DESC
		LIMIT $5`, accountID, domain.CustomerLedger(accountID), commit, prepare, limit)
	if err != nil {
		return nil, classify(ctx, "read ledger", err)
	}
	defer rows.Close()
	out := []projections.LedgerEntry{}
	for rows.Next() {
		var e projections.LedgerEntry
		var c, p int64
		var kind, amount, after string
		var created, from, to pgtype.Timestamptz
		var createdNs, fromNs, toNs int32
		if err := rows.Scan(&c, &p, &e.TxID, &kind, &amount, &after, &created, &createdNs, &e.ServerID, &from, &fromNs,
			&to, &toNs, &e.TopupID); err != nil {
			return nil, classify(ctx, "read ledger", err)
		}
		e.Position, e.Kind = eventstore.Position{Commit: uint64(c), Prepare: uint64(p)}, domain.TxKind(kind)
		e.CreatedAt = joinTime(created, createdNs)
		if e.Amount, err = domain.ParseMoney(amount); err != nil {
			return nil, fmt.Errorf("ledger %s: amount: %w", e.TxID, err)
		}
		if e.BalanceAfter, err = domain.ParseMoney(after); err != nil {
			return nil, fmt.Errorf("ledger %s: balance: %w", e.TxID, err)
		}
		e.From, e.To = optTime(from, fromNs), optTime(to, toNs)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, "read ledger", err)
	}
	return out, nil
}

func optTime(t pgtype.Timestamptz, ns int32) *time.Time {
	if !t.Valid {
		return nil
	}
	u := joinTime(t, ns)
	return &u
}
