package audit

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// charged is one charge of a server, kept until the end of the log because
// whether its hour was billable depends on lifecycle events that may come
// later (a suspension dated before it, in a corrupted log). It is compact:
// a long log holds about one per event.
type charged struct {
	slot int64
	id   uuid.UUID
	ver  uint64
	pos  eventstore.Position
}

// period is a run of billable slots, first..last inclusive.
type period struct {
	first, last int64
	open        bool
	opened      Ref
	openedAt    time.Time
	closedAt    time.Time
	closedWhy   string
}

// server is the billing history of one server.
type server struct {
	id, accountID, stream string
	created               time.Time
	price                 domain.Money
	deployed              Ref
	periods               []period
	charges               []charged
	// net is what the server's charges and refunds moved into
	// revenue:compute; charged and refunded are the two sides of it.
	net, charged, refunded sum
	failed                 *Ref
}

func (s *server) slotStart(k int64) time.Time { return s.created.Add(time.Duration(k) * time.Hour) }

// slotContaining is the slot whose hour contains t (0 for t not after the
// creation), the same arithmetic as the domain's hourContaining.
func (s *server) slotContaining(t time.Time) int64 {
	if !t.After(s.created) {
		return 0
	}
	return int64(t.Sub(s.created) / time.Hour)
}

// lastSlotFrom is the last slot starting at or before t, or (strict) before
// t; -1 when there is none.
func (s *server) lastSlotFrom(t time.Time, strict bool) int64 {
	d := t.Sub(s.created)
	if d < 0 || (strict && d == 0) {
		return -1
	}
	k := int64(d / time.Hour)
	if strict && d%time.Hour == 0 {
		k--
	}
	return k
}

func (s *server) openPeriod(ev *eventstore.Event, at time.Time) {
	if n := len(s.periods); n > 0 && s.periods[n-1].open {
		return // already billing: a second resume changes nothing
	}
	s.periods = append(s.periods, period{first: s.slotContaining(at), last: -1, open: true, opened: refOf(ev), openedAt: at})
}

func (s *server) closePeriod(_ *eventstore.Event, at time.Time, inclusive bool, why string) {
	n := len(s.periods)
	if n == 0 || !s.periods[n-1].open {
		return // not billing (say, destroying a suspended server): nothing to close
	}
	p := &s.periods[n-1]
	p.open, p.closedAt, p.closedWhy = false, at, why
	p.last = s.lastSlotFrom(at, !inclusive)
}

// billable reports whether slot k lies in a period and, if not, why.
func (s *server) billable(k int64) (bool, string) {
	why := "before the server was deployed"
	for _, p := range s.periods {
		if k < p.first {
			break
		}
		if p.open || k <= p.last {
			return true, ""
		}
		why = fmt.Sprintf("the server %s at %s", p.closedWhy, fmtTime(p.closedAt))
	}
	return false, why
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (a *Auditor) deployed(ev *eventstore.Event, acct *account, e domain.ServerDeployed) {
	if _, dup := a.servers[e.ServerID]; dup {
		return
	}
	ref := refOf(ev)
	s := &server{id: e.ServerID, accountID: acct.id, stream: ev.Stream, created: e.At, price: e.HourlyPrice, deployed: ref,
		periods: []period{{first: 0, last: -1, open: true, opened: ref, openedAt: e.At}}}
	a.servers[e.ServerID] = s
	a.order = append(a.order, s)
}

func (a *Auditor) lifecycle(_ *eventstore.Event, serverID string, fn func(*server)) {
	if s := a.servers[serverID]; s != nil {
		fn(s)
	}
}

func (a *Auditor) charge(ev *eventstore.Event, acct *account, tx *ledgerTx) {
	// Built only for a violation: most charges have none, and the server
	// id would be one more copy each.
	bad := func(from, to time.Time, format string, args ...any) {
		a.violate(Violation{Check: CheckBilling, Event: refOf(ev), AccountID: acct.id, ServerID: tx.ServerID,
			From: from, To: to, Message: fmt.Sprintf(format, args...)})
	}
	var from, to time.Time
	if tx.From != nil {
		from = *tx.From
	}
	if tx.To != nil {
		to = *tx.To
	}
	s := a.servers[tx.ServerID]
	if s == nil {
		a.report.ChargedHours++
		bad(from, to, "charge %s for server %q, which was never deployed", tx.TxID, tx.ServerID)
		return
	}
	if s.accountID != acct.id {
		bad(from, to, "charge %s on account %s for server %s of account %s", tx.TxID, acct.id, s.id, s.accountID)
	}
	amt := tx.revenue
	s.net.add(amt)
	s.charged.add(amt)
	if tx.From == nil || tx.To == nil {
		a.report.ChargedHours++
		bad(time.Time{}, time.Time{}, "charge %s for server %s does not say which hour it covers", tx.TxID, s.id)
		return
	}
	d := from.Sub(s.created)
	if d < 0 || d%time.Hour != 0 || to.Sub(from) != time.Hour {
		a.report.ChargedHours++
		bad(from, to, "charge %s covers [%s, %s), not one of server %s's billing hours (created %s, hours count from then)",
			tx.TxID, fmtTime(from), fmtTime(to), s.id, fmtTime(s.created))
		return
	}
	if amt.Cmp(s.price) != 0 {
		bad(from, to, "charge %s takes %s into revenue for an hour of server %s priced %s", tx.TxID, show(amt), s.id, show(s.price))
	}
	s.charges = append(s.charges, charged{slot: int64(d / time.Hour), id: ev.ID, ver: ev.Version, pos: ev.Position})
}

func (a *Auditor) refund(ev *eventstore.Event, acct *account, tx *ledgerTx) {
	bad := func(format string, args ...any) {
		a.violate(Violation{Check: CheckRefunds, Event: refOf(ev), AccountID: acct.id, ServerID: tx.ServerID,
			Message: fmt.Sprintf(format, args...)})
	}
	s := a.servers[tx.ServerID]
	if s == nil {
		bad("refund %s for server %q, which was never deployed", tx.TxID, tx.ServerID)
		return
	}
	amt := tx.revenue
	s.net.add(amt)
	s.refunded.add(amt.Neg())
	if s.failed == nil {
		bad("refund %s of %s for server %s, whose deploy had not failed", tx.TxID, show(amt.Neg()), s.id)
	}
}

// finishServer closes checks 3 and 4 for one server once the log is read.
func (a *Auditor) finishServer(s *server, now time.Time) {
	r := &a.report
	r.ChargedHours += int64(len(s.charges))
	slices.SortStableFunc(s.charges, func(x, y charged) int {
		switch {
		case x.slot < y.slot:
			return -1
		case x.slot > y.slot:
			return 1
		}
		return 0
	})
	chargeRef := func(c charged) Ref { return Ref{ID: c.id, Stream: s.stream, Version: c.ver, Position: c.pos} }

	// Charges that are doubled or not billable.
	for i, c := range s.charges {
		from, to := s.slotStart(c.slot), s.slotStart(c.slot+1)
		v := Violation{Check: CheckBilling, Event: chargeRef(c), AccountID: s.accountID, ServerID: s.id, From: from, To: to}
		if i > 0 && s.charges[i-1].slot == c.slot {
			first := i - 1
			for first > 0 && s.charges[first-1].slot == c.slot {
				first--
			}
			other := chargeRef(s.charges[first])
			v.Other = &other
			v.Message = fmt.Sprintf("server %s hour [%s, %s) charged twice", s.id, fmtTime(from), fmtTime(to))
			a.violate(v)
			continue
		}
		if ok, why := s.billable(c.slot); !ok {
			v.Message = fmt.Sprintf("server %s hour [%s, %s) charged but not billable: %s", s.id, fmtTime(from), fmtTime(to), why)
			a.violate(v)
		}
	}

	// Billable hours that are due but not charged, one violation per run.
	lastDue := s.lastSlotFrom(now.Add(-a.opts.Grace), false)
	j := 0
	for _, p := range s.periods {
		hi := p.last
		if p.open {
			hi = lastDue
		}
		if hi < p.first {
			continue
		}
		r.RequiredHours += hi - p.first + 1
		for j < len(s.charges) && s.charges[j].slot < p.first {
			j++
		}
		why := "billable since " + fmtTime(p.openedAt)
		if !p.open {
			why += ", until it " + p.closedWhy + " at " + fmtTime(p.closedAt)
		}
		miss := func(lo, hi int64) { // slots lo..hi-1
			from, to := s.slotStart(lo), s.slotStart(hi)
			a.violate(Violation{Check: CheckBilling, Event: p.opened, AccountID: s.accountID, ServerID: s.id, From: from, To: to,
				Message: fmt.Sprintf("server %s: %d billable hour(s) [%s, %s) not charged (%s each; %s)",
					s.id, hi-lo, fmtTime(from), fmtTime(to), show(s.price), why)})
		}
		// Walk the gaps between charged slots rather than every slot, so
		// a wild timestamp cannot make this loop for years of hours.
		next := p.first
		for ; j < len(s.charges) && s.charges[j].slot <= hi; j++ {
			k := s.charges[j].slot
			if k > next {
				miss(next, k)
			}
			next = max(next, k+1)
		}
		if next <= hi {
			miss(next, hi+1)
		}
	}

	// 4: a failed deploy gives back every cent it was charged.
	if s.failed != nil {
		r.FailedDeploys++
		if s.net.sign() != 0 {
			a.violate(Violation{Check: CheckRefunds, Event: *s.failed, AccountID: s.accountID, ServerID: s.id,
				Message: fmt.Sprintf("deploy of server %s failed: charged %s, refunded %s, %s not given back",
					s.id, show(s.charged.value()), show(s.refunded.value()), show(s.net.value()))})
		}
	}
}

// Hour says what the billing rules make of the hour of serverID starting
// at from, once the log is read: its index counted from the server's
// creation, its price, and whether it is billable and if not why. ok is
// false for an unknown server or a time that does not start one of its
// hours. Replay uses it to say what each charge should have been.
func (a *Auditor) Hour(serverID string, from time.Time) (k int64, price domain.Money, billable bool, why string, ok bool) {
	s := a.servers[serverID]
	if s == nil {
		return 0, domain.Money{}, false, "", false
	}
	d := from.Sub(s.created)
	if d < 0 || d%time.Hour != 0 {
		return 0, shown(s.price), false, "", false
	}
	k = int64(d / time.Hour)
	billable, why = s.billable(k)
	return k, shown(s.price), billable, why, true
}
