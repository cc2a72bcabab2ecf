package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cryptovps/cryptovps/projections"
)

// TopupAccounts lists, in id order, the accounts with a top-up whose
// invoice may still change.
func (m *Model) TopupAccounts(ctx context.Context, lateSince time.Time) ([]string, error) {
	rows, err := m.pool.Query(ctx, `SELECT DISTINCT account_id FROM topups
		WHERE status IN ('OPENING', 'PENDING', 'PROCESSING')
			OR (status = 'EXPIRED' AND requested AND expires_at >= $1)
		ORDER BY account_id`, lateSince.Truncate(time.Microsecond))
	if err != nil {
		return nil, classify(ctx, "read top-up accounts", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, classify(ctx, "read top-up accounts", err)
	}
	if len(out) == 0 {
		return nil, nil // as the memory model
	}
	return out, nil
}

// ReviewTopups lists the top-ups waiting for an operator, oldest first.
func (m *Model) ReviewTopups(ctx context.Context) ([]projections.TopupView, error) {
	rows, err := m.pool.Query(ctx, `SELECT `+topupColumns+`
		FROM topups t JOIN accounts a ON a.id = t.account_id
		WHERE t.review <> '' AND NOT t.review_closed ORDER BY t.created_at, t.created_at_ns, t.id`)
	if err != nil {
		return nil, classify(ctx, "read top-ups to review", err)
	}
	defer rows.Close()
	out := []projections.TopupView{}
	for rows.Next() {
		v, ok, err := scanTopup(rows)
		if err != nil {
			return nil, classify(ctx, "read top-ups to review", err)
		}
		if ok {
			out = append(out, v)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, classify(ctx, "read top-ups to review", err)
	}
	return out, nil
}

// FindTopup finds a visible top-up by id, whatever its account.
func (m *Model) FindTopup(ctx context.Context, id string) (projections.TopupView, error) {
	rows, err := m.pool.Query(ctx, `SELECT `+topupColumns+`
		FROM topups t JOIN accounts a ON a.id = t.account_id
		WHERE t.id = $1 AND `+shownTopups+` ORDER BY t.log_commit LIMIT 1`, id)
	if err != nil {
		return projections.TopupView{}, classify(ctx, "find top-up", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return projections.TopupView{}, classify(ctx, "find top-up", err)
		}
		return projections.TopupView{}, fmt.Errorf("top-up %s: %w", id, projections.ErrNotFound)
	}
	v, _, err := scanTopup(rows)
	if err != nil {
		return projections.TopupView{}, classify(ctx, "find top-up", err)
	}
	return v, nil
}
