package memory

import (
	"context"
	"fmt"
	"sort"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// The ledger is served from the log, where it is kept, not held a second
// time here: a page is read from the account's stream. What the model
// keeps per account is a sparse index, one mark every markEvery ledger
// transactions, so that a page deep in a long history starts reading at the
// nearest mark before it, with the balance there, rather than at the start
// of the stream: a page costs its own transactions plus at most markEvery
// more, whatever the length of the history, and the model holds a mark
// (about 64 bytes) per markEvery transactions, about 0.06 bytes each.
const markEvery = 1024

// Log is what the model reads the ledger from: the event log
// (eventstore.Store has it).
type Log interface {
	ReadStreamPage(ctx context.Context, stream string, from uint64, limit int) ([]eventstore.Event, error)
}

// ledgerIndex is the sparse index of an account's ledger transactions.
type ledgerIndex struct {
	n     uint64 // transactions folded
	marks []mark
}

// mark is the place of a ledger transaction in the account's stream and
// the balance before it: where a page can start reading.
type mark struct {
	version uint64
	pos     eventstore.Position
	before  domain.Money
}

// indexLedger notes a ledger transaction of the account about to be folded
// (the account's balance is still the one before it).
func (m *Model) indexLedger(id string, a *domain.Account, ev *eventstore.Event) {
	l := m.ledgers[id]
	if l == nil {
		l = &ledgerIndex{}
		m.ledgers[id] = l
	}
	if l.n%markEvery == 0 {
		l.marks = append(l.marks, mark{version: ev.Version, pos: ev.Position, before: a.Balance})
	}
	l.n++
}

// streamPage is how many events a ledger read asks the log for at a time.
const streamPage = 512

// Ledger lists the account's ledger transactions newest first: those
// strictly before the position before (zero: from the newest), at most
// limit. It reads the log only up to the last event of the account the
// model has folded, so every balance shown is one the model agrees with.
func (m *Model) Ledger(ctx context.Context, accountID string, before eventstore.Position, limit int) ([]projections.LedgerEntry, error) {
	m.mu.RLock()
	if _, err := m.account(accountID); err != nil {
		m.mu.RUnlock()
		return nil, err
	}
	stream := domain.AccountStream(accountID)
	end := m.folded[stream].version + 1
	var marks []mark
	if l := m.ledgers[accountID]; l != nil {
		// Marks are only ever appended: the ones seen here do not change
		// once the lock is released, nor do the events before end.
		marks = l.marks
	}
	m.mu.RUnlock()

	out := []projections.LedgerEntry{}
	// The last mark strictly before before: the newest chunk with a
	// transaction to show.
	j := len(marks) - 1
	if !before.IsZero() {
		j = sort.Search(len(marks), func(i int) bool { return !marks[i].pos.Less(before) }) - 1
	}
	for ; j >= 0 && len(out) < limit; j-- {
		chunk, err := m.chunk(ctx, accountID, marks[j], end, before)
		if err != nil {
			return nil, err
		}
		for i := len(chunk) - 1; i >= 0 && len(out) < limit; i-- {
			e, err := chunk[i].entry(accountID)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		end = marks[j].version
	}
	return out, nil
}

// posted is a ledger transaction of a chunk: its event, and the amount and
// the balance after it, which is all a transaction older than the page
// shown is read for.
type posted struct {
	ev              *eventstore.Event
	amount, balance domain.Money
}

// amountView is what a chunk reads of a transaction to carry the balance.
type amountView struct {
	Postings []domain.Posting `json:"postings"`
}

// entry is the transaction as the ledger shows it.
func (p posted) entry(accountID string) (projections.LedgerEntry, error) {
	e, err := projections.DecodeEvent(p.ev)
	if err != nil {
		return projections.LedgerEntry{}, fmt.Errorf("ledger of %s: event %s at %s: %w", accountID, p.ev.ID, p.ev.Position, err)
	}
	tx, ok := e.(domain.LedgerPosted)
	if !ok {
		return projections.LedgerEntry{}, fmt.Errorf("ledger of %s: event %s at %s is a %T", accountID, p.ev.ID, p.ev.Position, e)
	}
	return projections.LedgerEntry{Position: p.ev.Position, TxID: tx.TxID, Kind: tx.Kind, Amount: p.amount,
		BalanceAfter: p.balance, CreatedAt: tx.At, ServerID: tx.ServerID, From: tx.From, To: tx.To, TopupID: tx.TopupID}, nil
}

// chunk reads the account's ledger transactions from the mark to the
// stream version end (excluded) or the position before (excluded, unless
// zero), oldest first, with the balance after each.
func (m *Model) chunk(ctx context.Context, accountID string, from mark, end uint64, before eventstore.Position) ([]posted, error) {
	stream := domain.AccountStream(accountID)
	balance := from.before
	var out []posted
	for v := from.version; v < end; {
		page, err := m.log.ReadStreamPage(ctx, stream, v, int(min(end-v, streamPage)))
		if err != nil {
			return nil, fmt.Errorf("ledger of %s: %w", accountID, err)
		}
		if len(page) == 0 {
			// The model folded these events from this log: it cannot have
			// lost them.
			return nil, fmt.Errorf("ledger of %s: the log ends at version %d, before %d", accountID, v, end)
		}
		for i := range page {
			ev := &page[i]
			if !before.IsZero() && !ev.Position.Less(before) {
				return out, nil
			}
			if ev.Type != ledgerType {
				continue
			}
			var a amountView
			if err := ev.Decode(&a); err != nil {
				return nil, fmt.Errorf("ledger of %s: event %s at %s: %w", accountID, ev.ID, ev.Position, err)
			}
			amount := domain.LedgerPosted{Postings: a.Postings}.CustomerAmount(accountID)
			balance = balance.Add(amount)
			out = append(out, posted{ev: ev, amount: amount, balance: balance})
		}
		v = page[len(page)-1].Version + 1
	}
	return out, nil
}
