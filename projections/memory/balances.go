package memory

import "context"

// NegativeBalances counts the accounts whose balance is below zero: a
// violation of the billing rules, watched by the metrics (it must stay 0).
func (m *Model) NegativeBalances(context.Context) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, a := range m.accounts {
		if a.Balance.Sign() < 0 {
			n++
		}
	}
	return n, nil
}
