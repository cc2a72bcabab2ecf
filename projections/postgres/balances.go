package postgres

import (
	"context"
	"fmt"

	"github.com/cryptovps/cryptovps/projections"
)

// NegativeBalances counts the accounts whose balance is below zero: a
// violation of the billing rules, watched by the metrics (it must stay 0).
func (m *Model) NegativeBalances(ctx context.Context) (int, error) {
	var n int
	if err := m.pool.QueryRow(ctx, `SELECT count(*) FROM accounts WHERE balance < 0`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count negative balances: %w: %w", projections.ErrUnavailable, err)
	}
	return n, nil
}
