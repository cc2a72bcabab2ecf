package audit

import (
	"strings"

	"github.com/cryptovps/cryptovps/domain"
)

// ledgerTx is a LedgerPosted with what the audit works out from it alone,
// before the fold and in parallel with other events: whether its hash is
// the one its content makes, what its postings sum to, how much money it
// moves (its positive postings) and how much of that into revenue:compute.
type ledgerTx struct {
	domain.LedgerPosted
	hashOK  bool
	sum     domain.Money
	moved   domain.Money
	revenue domain.Money
}

// set makes t the ledgerTx of tx.
func (t *ledgerTx) set(tx domain.LedgerPosted) {
	var sum, moved, revenue total
	for _, p := range tx.Postings {
		sum.add(p.Amount)
		if p.Amount.Sign() > 0 {
			moved.add(p.Amount)
		}
		if p.Account == domain.LedgerRevenueCompute {
			revenue.add(p.Amount)
		}
	}
	*t = ledgerTx{LedgerPosted: tx, hashOK: tx.HashOK(), sum: sum.m, moved: moved.m, revenue: revenue.m}
}

// total adds amounts up, taking the first one as it is: every Money
// operation allocates, and most sums here have one or two terms.
type total struct {
	m    domain.Money
	some bool
}

func (t *total) add(m domain.Money) {
	if t.some {
		t.m = t.m.Add(m)
		return
	}
	t.m, t.some = m, true
}

// show prints an amount the way the audit's reports and the ledger export
// always have: every decimal it needs and at least two ("0.50", "0.014",
// "0.00"), whatever trailing zeros the arithmetic kept.
func show(m domain.Money) string {
	whole, frac, _ := strings.Cut(m.String(), ".")
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	if strings.Trim(whole, "-0") == "" && strings.Trim(frac, "0") == "" {
		whole = "0" // no negative zero
	}
	return whole + "." + frac
}

// shown is m in the form show prints, for the totals of a report.
func shown(m domain.Money) domain.Money { return domain.MustMoney(show(m)) }
