package memory

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// row is one ledger transaction as the model keeps it: fixed size, with
// no string or pointer of its own (ids are the 16 bytes of their UUID,
// times nanoseconds since 1970), so that a ledger held for the API to page
// through costs about 160 bytes a transaction rather than a copy of the
// event. A transaction that does not fit (an id that is not a UUID, a
// kind the model does not know, a time out of range) is kept whole in
// Model.odd instead.
type row struct {
	pos             eventstore.Position
	amount, balance domain.Money
	at, from, to    int64
	tx, server      uuid.UUID
	topup           uuid.UUID
	kind            uint8
	flags           uint8
}

const (
	hasFrom uint8 = 1 << iota
	hasTo
	hasServer
	hasTopup
	isOdd
)

// kinds are the ledger kinds a row can say; 0 is none.
var kinds = [...]domain.TxKind{"", domain.TxSignupCredit, domain.TxTopup, domain.TxCharge, domain.TxRefund}

func kindIndex(k domain.TxKind) uint8 {
	for i, v := range kinds {
		if i > 0 && v == k {
			return uint8(i)
		}
	}
	return 0
}

// nanos is t as nanoseconds since 1970, and whether it fits.
func nanos(t time.Time) (int64, bool) {
	y := t.Year()
	if y < 1700 || y > 2260 {
		return 0, false
	}
	return t.UnixNano(), true
}

func ids(s string) (uuid.UUID, bool) {
	u, err := uuid.Parse(s)
	if err != nil || u.String() != s {
		return uuid.UUID{}, false
	}
	return u, true
}

// newRow compacts an entry, or reports that it does not fit.
func newRow(e projections.LedgerEntry) (row, bool) {
	r := row{pos: e.Position, amount: e.Amount, balance: e.BalanceAfter, kind: kindIndex(e.Kind)}
	ok := r.kind != 0
	var fits bool
	r.at, fits = nanos(e.CreatedAt)
	ok = ok && fits
	r.tx, fits = ids(e.TxID)
	ok = ok && fits
	if e.ServerID != "" {
		r.server, fits = ids(e.ServerID)
		r.flags |= hasServer
		ok = ok && fits
	}
	if e.TopupID != "" {
		r.topup, fits = ids(e.TopupID)
		r.flags |= hasTopup
		ok = ok && fits
	}
	if e.From != nil {
		r.from, fits = nanos(*e.From)
		r.flags |= hasFrom
		ok = ok && fits
	}
	if e.To != nil {
		r.to, fits = nanos(*e.To)
		r.flags |= hasTo
		ok = ok && fits
	}
	return r, ok
}

func (r row) entry() projections.LedgerEntry {
	e := projections.LedgerEntry{Position: r.pos, TxID: r.tx.String(), Kind: kinds[r.kind], Amount: r.amount,
		BalanceAfter: r.balance, CreatedAt: time.Unix(0, r.at).UTC()}
	if r.flags&hasServer != 0 {
		e.ServerID = r.server.String()
	}
	if r.flags&hasTopup != 0 {
		e.TopupID = r.topup.String()
	}
	if r.flags&hasFrom != 0 {
		t := time.Unix(0, r.from).UTC()
		e.From = &t
	}
	if r.flags&hasTo != 0 {
		t := time.Unix(0, r.to).UTC()
		e.To = &t
	}
	return e
}

// addLedger keeps a ledger transaction of the account.
func (m *Model) addLedger(id string, e projections.LedgerEntry) {
	r, ok := newRow(e)
	if !ok {
		r = row{pos: e.Position, flags: isOdd}
		m.odd[e.Position] = e
	}
	m.ledger[id] = append(m.ledger[id], r)
}

// Ledger lists the account's ledger transactions newest first: those
// strictly before the position before (zero: from the newest), at most
// limit.
func (m *Model) Ledger(_ context.Context, accountID string, before eventstore.Position, limit int) ([]projections.LedgerEntry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if _, err := m.account(accountID); err != nil {
		return nil, err
	}
	all := m.ledger[accountID]
	// Rows are in log order: find the first at or after before.
	end := len(all)
	if !before.IsZero() {
		end = sort.Search(len(all), func(i int) bool { return !all[i].pos.Less(before) })
	}
	out := make([]projections.LedgerEntry, 0, min(limit, end, math.MaxInt32))
	for i := end - 1; i >= 0 && len(out) < limit; i-- {
		if all[i].flags&isOdd != 0 {
			out = append(out, m.odd[all[i].pos])
			continue
		}
		out = append(out, all[i].entry())
	}
	return out, nil
}
