package memory

// The ledger rows' part of a read-model snapshot (snapshot.go): kept apart
// so that it goes with the rows should the model stop holding the ledger.

import (
	"fmt"
	"maps"

	json "github.com/goccy/go-json"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// takeLedger copies the ledger under the model's read lock: an account's
// rows are only ever appended to, so its slice as it is now is a copy.
func (c *copyState) takeLedger(m *Model) {
	c.ledger = make(map[string][]row, len(m.ledger))
	for id, rows := range m.ledger {
		c.ledger[id] = rows[:len(rows):len(rows)]
	}
	c.odd = maps.Clone(m.odd)
}

func (c *copyState) putLedger(m *Model) {
	m.ledger, m.odd = c.ledger, c.odd
}

// encodeLedger writes: count of accounts, each its id, count of rows and
// rows; then count of odd entries, each as JSON.
func (c *copyState) encodeLedger(w *writer) error {
	w.u64(uint64(len(c.ledger)))
	for id, rows := range c.ledger {
		w.str(id)
		w.u64(uint64(len(rows)))
		for _, r := range rows {
			w.u64(r.pos.Commit)
			w.u64(r.pos.Prepare)
			w.b = append(w.b, r.kind, r.flags)
			if r.flags&isOdd != 0 {
				continue
			}
			w.str(r.amount.String())
			w.str(r.balance.String())
			w.u64(uint64(r.at))
			w.u64(uint64(r.from))
			w.u64(uint64(r.to))
			w.b = append(w.b, r.tx[:]...)
			w.b = append(w.b, r.server[:]...)
			w.b = append(w.b, r.topup[:]...)
		}
		w.spill()
	}
	w.u64(uint64(len(c.odd)))
	for _, e := range c.odd {
		data, err := json.Marshal(e)
		if err != nil {
			return err
		}
		w.u32(uint32(len(data)))
		w.b = append(w.b, data...)
		w.spill()
	}
	return nil
}

func (c *copyState) decodeLedger(r *reader) error {
	n := r.count(12)
	c.ledger = make(map[string][]row, n)
	for range n {
		id := r.str()
		rows := make([]row, r.count(18))
		for i := range rows {
			x := &rows[i]
			x.pos.Commit, x.pos.Prepare = r.u64(), r.u64()
			kf := r.bytes(2)
			if kf == nil {
				return r.err
			}
			x.kind, x.flags = kf[0], kf[1]
			if x.flags&isOdd != 0 {
				continue
			}
			if err := x.amount.UnmarshalText(r.bytes(int(r.u32()))); err != nil {
				return err
			}
			if err := x.balance.UnmarshalText(r.bytes(int(r.u32()))); err != nil {
				return err
			}
			x.at, x.from, x.to = int64(r.u64()), int64(r.u64()), int64(r.u64())
			copy(x.tx[:], r.bytes(16))
			copy(x.server[:], r.bytes(16))
			copy(x.topup[:], r.bytes(16))
			if r.err != nil {
				return r.err
			}
		}
		c.ledger[id] = rows
	}
	n = r.count(4)
	c.odd = make(map[eventstore.Position]projections.LedgerEntry, n)
	for range n {
		var e projections.LedgerEntry
		if err := json.Unmarshal(r.bytes(int(r.u32())), &e); err != nil {
			return fmt.Errorf("odd entry: %w", err)
		}
		c.odd[e.Position] = e
	}
	return r.err
}
