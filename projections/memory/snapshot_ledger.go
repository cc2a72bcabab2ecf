package memory

// The ledger's part of a read-model snapshot (snapshot.go): the sparse
// index of each account's ledger transactions (ledger.go), the ledger
// itself being read from the log.

// takeLedger copies the index under the model's read lock: an account's
// marks are only ever appended to, so its slice as it is now is a copy.
func (c *copyState) takeLedger(m *Model) {
	c.ledgers = make(map[string]*ledgerIndex, len(m.ledgers))
	for id, l := range m.ledgers {
		c.ledgers[id] = &ledgerIndex{n: l.n, marks: l.marks[:len(l.marks):len(l.marks)]}
	}
}

func (c *copyState) putLedger(m *Model) {
	m.ledgers = c.ledgers
}

// encodeLedger writes: count of accounts, each its id, its count of
// transactions, count of marks and marks (version, position, balance).
func (c *copyState) encodeLedger(w *writer) error {
	w.u64(uint64(len(c.ledgers)))
	for id, l := range c.ledgers {
		w.str(id)
		w.u64(l.n)
		w.u64(uint64(len(l.marks)))
		for _, k := range l.marks {
			w.u64(k.version)
			w.u64(k.pos.Commit)
			w.u64(k.pos.Prepare)
			w.str(k.before.String())
		}
		w.spill()
	}
	return nil
}

func (c *copyState) decodeLedger(r *reader) error {
	n := r.count(20)
	c.ledgers = make(map[string]*ledgerIndex, n)
	for range n {
		id := r.str()
		l := &ledgerIndex{n: r.u64()}
		l.marks = make([]mark, r.count(28))
		for i := range l.marks {
			k := &l.marks[i]
			k.version, k.pos.Commit, k.pos.Prepare = r.u64(), r.u64(), r.u64()
			if err := k.before.UnmarshalText(r.bytes(int(r.u32()))); err != nil {
				return err
			}
			if r.err != nil {
				return r.err
			}
		}
		c.ledgers[id] = l
	}
	return r.err
}
