package audit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// DefaultGrace is how long after an hour starts the biller may still not
// have charged it without that being a violation.
const DefaultGrace = time.Hour

// Check numbers a rule of the audit, as the package documentation lists them.
type Check int

// The checks.
const (
	CheckDecode Check = iota
	CheckBalanced
	CheckNonNegative
	CheckBilling
	CheckRefunds
	CheckHashChain
	CheckReadModel
	CheckTopups
	numChecks
)

var checkNames = [numChecks]string{"decode", "balanced", "non-negative", "billing", "refunds", "hash-chain", "read-model", "topups"}

func (c Check) String() string {
	if c < 0 || c >= numChecks {
		return fmt.Sprintf("check(%d)", int(c))
	}
	return checkNames[c]
}

// Checks lists every check in order, for reports.
func Checks() []Check {
	out := make([]Check, numChecks)
	for i := range out {
		out[i] = Check(i)
	}
	return out
}

// Ref names one stored event, the way an operator finds it again.
type Ref struct {
	ID       uuid.UUID           `json:"id"`
	Stream   string              `json:"stream"`
	Version  uint64              `json:"version"`
	Position eventstore.Position `json:"position"`
}

func (r Ref) String() string {
	return fmt.Sprintf("event %s %s v%d @%s", r.ID, r.Stream, r.Version, r.Position)
}

func refOf(ev *eventstore.Event) Ref {
	return Ref{ID: ev.ID, Stream: ev.Stream, Version: ev.Version, Position: ev.Position}
}

// Violation is one broken rule, naming the event that breaks it.
type Violation struct {
	Check Check `json:"check"`
	// Event is the offending event: the transaction, or for a missing hour
	// the event that made it billable, or for an unrefunded deploy its
	// ServerFailed.
	Event Ref `json:"event"`
	// Other is a second event involved, such as the first charge of an
	// hour charged twice.
	Other     *Ref   `json:"other,omitempty"`
	AccountID string `json:"accountId,omitempty"`
	ServerID  string `json:"serverId,omitempty"`
	// From and To bound the hours concerned, for billing violations.
	From    time.Time `json:"from,omitzero"`
	To      time.Time `json:"to,omitzero"`
	Message string    `json:"message"`
}

func (v Violation) String() string {
	s := fmt.Sprintf("[%d %s] %s: %s", int(v.Check), v.Check, v.Event, v.Message)
	if v.Other != nil {
		s += " (see " + v.Other.String() + ")"
	}
	return s
}

// KindTotal counts the transactions of one kind and the money they moved
// (the sum of their positive postings).
type KindTotal struct {
	Kind   domain.TxKind
	Count  int64
	Amount domain.Money
}

// LedgerTotal is the final balance of a ledger account; customer accounts
// are summed into one line, "customer:*", with Accounts saying how many.
type LedgerTotal struct {
	Account  string
	Accounts int
	Balance  domain.Money
}

// Report is the outcome of an audit.
type Report struct {
	Events       int64
	Accounts     int
	Servers      int
	Transactions int64
	// ChargedHours counts charges; RequiredHours the billable hours that had
	// to be charged by the end of the log.
	ChargedHours  int64
	RequiredHours int64
	FailedDeploys int
	First, Last   eventstore.Position
	// Oldest and Newest are the earliest and latest domain times in the
	// log; Newest minus the grace decides which open hours were due.
	Oldest, Newest time.Time
	Grace          time.Duration
	Kinds          []KindTotal
	Totals         []LedgerTotal
	// Trial is the sum of every posting: zero when the books balance.
	Trial      domain.Money
	Violations []Violation
	// ReadModel says what check 6 compared ("" when it did not run), and
	// ReadModelSkipped why it did not run, if it was asked to.
	ReadModel        string
	ReadModelSkipped string
	// Balances is the fold of the ledger per customer account id, the
	// numbers check 6 compares a read model against.
	Balances map[string]domain.Money `json:"-"`
}

// Count returns how many violations of c the report holds.
func (r *Report) Count(c Check) int {
	n := 0
	for _, v := range r.Violations {
		if v.Check == c {
			n++
		}
	}
	return n
}

// OK reports whether no rule was broken.
func (r *Report) OK() bool { return len(r.Violations) == 0 }

// Options tune an audit. The zero value audits with the default grace.
type Options struct {
	// Grace is how long after an hour starts it may still be uncharged in a
	// period open at the end of the log. Zero means DefaultGrace; a negative
	// value means none (every started hour is due).
	Grace time.Duration
	// Now replaces the log's newest time as the moment hours are due by;
	// replay uses it to look at an account as it was.
	Now time.Time
	// BalancesAt, if set, has the fold keep every account's balance as of
	// that position, for check 6 against a read model whose checkpoint it
	// is (a shared read model that is not at the end of the log).
	BalancesAt eventstore.Position
}

type kindTotal struct {
	count  int64
	amount sum
}

// account is what the audit keeps per account stream.
type account struct {
	id         string
	registered bool
	lastHash   string
	// last is the account's last event, what a read-model mismatch names.
	last Ref
}

// Auditor folds the log event by event. It is not safe for concurrent use;
// Run parallelises the decoding in front of it, not the fold.
type Auditor struct {
	opts   Options
	report Report

	accounts map[string]*account
	servers  map[string]*server
	order    []*server           // servers in deploy order, for a stable report
	balances map[string]*balance // per ledger account
	kinds    map[domain.TxKind]*kindTotal
	// newest and oldest are times of the shared sandbox clock: an
	// account's event time less the account's own clock offset (own) at
	// that point of the log.
	newest   time.Time
	oldest   time.Time
	own      map[string]time.Duration
	owners   map[string]string // backup id -> its account
	finished bool
	// captured are the balances at opts.BalancesAt, once the fold is there.
	captured map[string]domain.Money
	// topups checks that every top-up credit matches one settled invoice,
	// credited once.
	topups *domain.TopupCredits
}

// New returns an Auditor that has seen no event.
func New(opts Options) *Auditor {
	if opts.Grace == 0 {
		opts.Grace = DefaultGrace
	}
	if opts.Grace < 0 {
		opts.Grace = 0
	}
	return &Auditor{
		topups:   domain.NewTopupCredits(),
		opts:     opts,
		accounts: map[string]*account{},
		servers:  map[string]*server{},
		balances: map[string]*balance{},
		kinds:    map[domain.TxKind]*kindTotal{},
		own:      map[string]time.Duration{},
		owners:   map[string]string{},
	}
}

// prepared is an event with everything about it that does not depend on
// other events already worked out, so that it can be done in parallel.
type prepared struct {
	ev eventstore.Event
	// e is the domain event, nil for an event of another stream or an
	// undecodable one (err). For a LedgerPosted, isTx is set and tx holds
	// a copy with what the audit works out from it alone; e is kept as
	// decoded, so that the read model gets the same value without boxing
	// it again.
	e    domain.Event
	tx   ledgerTx
	isTx bool
	err  error
}

func isDomainStream(stream string) bool {
	return strings.HasPrefix(stream, domain.AccountStreamPrefix) ||
		strings.HasPrefix(stream, domain.BackupStreamPrefix) || stream == domain.ClockStream
}

// prepare decodes ev into p and runs the checks that look at it alone. p
// is reused memory: every field is set.
func prepare(p *prepared, ev *eventstore.Event) {
	*p = prepared{}
	if isDomainStream(ev.Stream) {
		p.e, p.err = projections.DecodeEvent(ev)
		if tx, ok := p.e.(domain.LedgerPosted); ok {
			p.isTx = true
			p.tx.set(tx)
		}
	}
	// The fold keeps references to events; the payload is not needed any
	// more and is by far their largest part.
	p.ev = *ev
	p.ev.DropPayload()
}

// Apply folds a batch of events, in log order. It is the projection entry
// point; Run does the same with the decoding spread over the CPUs.
func (a *Auditor) Apply(batch []eventstore.Event) {
	var p prepared
	for i := range batch {
		prepare(&p, &batch[i])
		a.fold(&p)
	}
}

func (a *Auditor) violate(v Violation) {
	a.report.Violations = append(a.report.Violations, v)
}

// eventTime is the domain time of an event: when it happened in the
// service's clock (for an account's event, the account's clock). A clock
// advance moves that clock to At + Seconds, and work due by then is done
// right after it.
func eventTime(e domain.Event) time.Time {
	switch e := e.(type) {
	case domain.ClockAdvanced:
		return e.At.Add(time.Duration(e.Seconds) * time.Second)
	case domain.AccountClockAdvanced:
		return e.At.Add(time.Duration(e.Seconds) * time.Second)
	case domain.AccountEmailSealed:
		// How the log keeps an old account's email, recorded when a server
		// of a newer version starts: it says nothing of the account's
		// time, so it does not make hours due.
		return time.Time{}
	}
	return e.OccurredAt()
}

// ownerOf is the account whose clock an event's time is on ("" for the
// shared clock), noting whose clock moved and which account a backup is
// for as the fold goes.
func (a *Auditor) ownerOf(ev *eventstore.Event, e domain.Event) string {
	prefix, id := domain.StreamID(ev.Stream)
	switch prefix {
	case domain.AccountStreamPrefix:
		return id
	case domain.BackupStreamPrefix:
		if r, ok := e.(domain.BackupRequested); ok {
			a.owners[id] = r.AccountID
		}
		return a.owners[id]
	}
	if c, ok := e.(domain.AccountClockAdvanced); ok {
		a.own[c.AccountID] = max(a.own[c.AccountID], time.Duration(c.Offset)*time.Second)
		return c.AccountID
	}
	return ""
}

// EventTime is the domain time of an event (for a clock advance, the time it
// moved to); replay filters on it.
func EventTime(e domain.Event) time.Time { return eventTime(e) }

func (a *Auditor) fold(p *prepared) {
	ev := &p.ev
	if a.captured == nil && !a.opts.BalancesAt.IsZero() && a.opts.BalancesAt.Less(ev.Position) {
		a.capture()
	}
	a.report.Events++
	if a.report.First.IsZero() {
		a.report.First = ev.Position
	}
	a.report.Last = ev.Position
	if p.err != nil {
		a.violate(Violation{Check: CheckDecode, Event: refOf(ev), Message: p.err.Error()})
		return
	}
	if p.e == nil {
		return
	}
	t := time.Time{}
	var owner string
	if p.isTx {
		t = p.tx.At
		_, owner = domain.StreamID(ev.Stream)
	} else {
		t = eventTime(p.e)
		owner = a.ownerOf(ev, p.e)
	}
	if !t.IsZero() {
		// On the shared clock: an account's own moves do not make other
		// accounts' hours due.
		t = t.Add(-a.own[owner])
		if t.After(a.newest) {
			a.newest = t
		}
		if a.oldest.IsZero() || t.Before(a.oldest) {
			a.oldest = t
		}
	}
	prefix, id := domain.StreamID(ev.Stream)
	if prefix != domain.AccountStreamPrefix {
		if p.isTx {
			// Money moves only on account streams, where the chain and the
			// read models see it; a transaction anywhere else is neither.
			a.violate(Violation{Check: CheckDecode, Event: refOf(ev),
				Message: "a ledger transaction outside an account stream: no chain or balance covers it"})
		}
		return
	}
	acct := a.accounts[id]
	if acct == nil {
		acct = &account{id: id}
		a.accounts[id] = acct
	}
	acct.last = refOf(ev)
	for _, msg := range a.topups.Observe(id, p.e) {
		a.violate(Violation{Check: CheckTopups, Event: refOf(ev), AccountID: id, Message: msg})
	}
	if p.isTx {
		a.ledger(ev, acct, &p.tx)
		return
	}
	switch e := p.e.(type) {
	case domain.AccountRegistered:
		acct.registered = true
	case domain.ServerDeployed:
		a.deployed(ev, acct, e)
	case domain.ServerSuspended:
		a.lifecycle(ev, e.ServerID, func(s *server) { s.closePeriod(ev, e.At, false, "was suspended") })
	case domain.ServerResumed:
		a.lifecycle(ev, e.ServerID, func(s *server) { s.openPeriod(ev, e.At) })
	case domain.ServerDestroyRequested:
		a.lifecycle(ev, e.ServerID, func(s *server) { s.closePeriod(ev, e.At, true, "was deleted") })
	case domain.ServerFailed:
		a.lifecycle(ev, e.ServerID, func(s *server) {
			s.closePeriod(ev, e.At, true, "failed to deploy")
			if s.failed == nil {
				r := refOf(ev)
				s.failed = &r
			}
		})
	}
}

func (a *Auditor) ledger(ev *eventstore.Event, acct *account, tx *ledgerTx) {
	a.report.Transactions++
	ref := refOf(ev)

	// 5: the chain continues from the stored hash, whatever the verdict,
	// so one bad event is one violation.
	if tx.PrevHash != acct.lastHash {
		a.violate(Violation{Check: CheckHashChain, Event: ref, AccountID: acct.id,
			Message: fmt.Sprintf("prevHash %s does not link to the previous transaction's hash %s (a transaction was dropped, inserted or reordered)",
				short(tx.PrevHash), short(acct.lastHash))})
	}
	if !tx.hashOK {
		a.violate(Violation{Check: CheckHashChain, Event: ref, AccountID: acct.id,
			Message: fmt.Sprintf("hash %s does not match the transaction's content (it was edited after it was sealed)", short(tx.Hash))})
	}
	acct.lastHash = tx.Hash

	// 1
	if tx.sum.Sign() != 0 {
		a.violate(Violation{Check: CheckBalanced, Event: ref, AccountID: acct.id,
			Message: fmt.Sprintf("%s %s: postings sum to %s, not 0", tx.Kind, tx.TxID, show(tx.sum))})
	}

	// Totals, and 2: balances in log order.
	k := a.kinds[tx.Kind]
	if k == nil {
		k = &kindTotal{}
		a.kinds[tx.Kind] = k
	}
	k.count++
	k.amount.add(tx.moved)
	var buf [4]*balance
	touched := buf[:0]
	for _, po := range tx.Postings {
		bal := a.balance(po.Account)
		bal.add(po.Amount)
		if strings.HasPrefix(po.Account, "customer:") && !slices.Contains(touched, bal) {
			touched = append(touched, bal)
		}
	}
	// A balance is a state between transactions, so it is checked once the
	// whole transaction is posted.
	for _, bal := range touched {
		if bal.sign() >= 0 {
			bal.negative = false
			continue
		}
		if !bal.negative {
			bal.negative = true
			a.violate(Violation{Check: CheckNonNegative, Event: ref, AccountID: strings.TrimPrefix(bal.account, "customer:"),
				Message: fmt.Sprintf("%s %s takes %s to %s", tx.Kind, tx.TxID, bal.account, show(bal.value()))})
		}
	}

	switch tx.Kind {
	case domain.TxCharge:
		a.charge(ev, acct, tx)
	case domain.TxRefund:
		a.refund(ev, acct, tx)
	}
}

// balance is the running balance of a ledger account in log order.
type balance struct {
	sum
	account string
	// negative: a customer account below zero since a violation said so.
	negative bool
}

// balance is the balance of a ledger account.
func (a *Auditor) balance(account string) *balance {
	b := a.balances[account]
	if b == nil {
		b = &balance{account: account}
		a.balances[account] = b
	}
	return b
}

// balanceOf is a ledger account's balance as a report shows it (zero for
// an account without a transaction).
func (a *Auditor) balanceOf(account string) domain.Money {
	if s := a.balances[account]; s != nil {
		return shown(s.value())
	}
	return shown(domain.Zero())
}

func short(h string) string {
	if h == "" {
		return `""`
	}
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// Finish runs the checks that need the whole log and returns the report.
// The Auditor must not be fed after Finish.
func (a *Auditor) Finish() *Report {
	if a.finished {
		return &a.report
	}
	a.finished = true
	if a.captured == nil && !a.opts.BalancesAt.IsZero() {
		a.capture()
	}
	r := &a.report
	r.Grace = a.opts.Grace
	r.Newest, r.Oldest = a.newest, a.oldest
	now := a.opts.Now
	if now.IsZero() {
		now = a.newest
	}
	for _, s := range a.order {
		// Hours are due by the server's account's own time.
		a.finishServer(s, now.Add(a.own[s.accountID]))
	}
	r.Servers = len(a.order)
	for _, acct := range a.accounts {
		if acct.registered {
			r.Accounts++
		}
	}
	r.Balances = make(map[string]domain.Money, len(a.accounts))
	for id, acct := range a.accounts {
		if acct.registered {
			r.Balances[id] = a.balanceOf(domain.CustomerLedger(id))
		}
	}
	var trial, customerSum domain.Money
	customers := LedgerTotal{Account: "customer:*"}
	for name, s := range a.balances {
		bal := s.value()
		trial = trial.Add(bal)
		if strings.HasPrefix(name, "customer:") {
			customers.Accounts++
			customerSum = customerSum.Add(bal)
			continue
		}
		r.Totals = append(r.Totals, LedgerTotal{Account: name, Accounts: 1, Balance: shown(bal)})
	}
	r.Trial = shown(trial)
	customers.Balance = shown(customerSum)
	slices.SortFunc(r.Totals, func(x, y LedgerTotal) int { return strings.Compare(x.Account, y.Account) })
	if customers.Accounts > 0 {
		r.Totals = append(r.Totals, customers)
	}
	for kind, k := range a.kinds {
		r.Kinds = append(r.Kinds, KindTotal{Kind: kind, Count: k.count, Amount: shown(k.amount.value())})
	}
	slices.SortFunc(r.Kinds, func(x, y KindTotal) int { return strings.Compare(string(x.Kind), string(y.Kind)) })
	sortViolations(r.Violations)
	return r
}

func sortViolations(vs []Violation) {
	slices.SortStableFunc(vs, func(x, y Violation) int {
		switch {
		case x.Event.Position.Less(y.Event.Position):
			return -1
		case y.Event.Position.Less(x.Event.Position):
			return 1
		}
		return int(x.Check) - int(y.Check)
	})
}

// capture keeps the balances of the accounts registered so far.
func (a *Auditor) capture() {
	a.captured = map[string]domain.Money{}
	for id, acct := range a.accounts {
		if acct.registered {
			a.captured[id] = a.balanceOf(domain.CustomerLedger(id))
		}
	}
}

// accountRef is the last event of an account stream the auditor saw, what a
// read-model mismatch names.
func (a *Auditor) accountRef(id string) Ref {
	if acct := a.accounts[id]; acct != nil {
		return acct.last
	}
	return Ref{Stream: domain.AccountStream(id)}
}

// CheckReadModel is check 6: every registered account's balance in the
// read model must equal the fold of the ledger. The read model must have
// applied exactly the audited log, or (with Options.BalancesAt) exactly the
// log up to BalancesAt. It finishes the audit if need be, adds the
// violations to the report and returns an error only if the read model
// cannot answer.
func (a *Auditor) CheckReadModel(ctx context.Context, name string, rm BalanceReader) error {
	r := a.Finish()
	balances := r.Balances
	if a.captured != nil {
		balances = a.captured
	}
	ids := make([]string, 0, len(balances))
	for id := range balances {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var found []Violation
	for i, id := range ids {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		got, ok, err := rm.Balance(ctx, id)
		if err != nil {
			return fmt.Errorf("read model %s: account %s: %w", name, id, err)
		}
		want := balances[id]
		switch {
		case !ok:
			found = append(found, Violation{Check: CheckReadModel, Event: a.accountRef(id), AccountID: id,
				Message: fmt.Sprintf("the %s read model has no account %s; the ledger says its balance is %s", name, id, want)})
		case got.Cmp(want) != 0:
			found = append(found, Violation{Check: CheckReadModel, Event: a.accountRef(id), AccountID: id,
				Message: fmt.Sprintf("the %s read model shows balance %s, the ledger's fold is %s", name, got, want)})
		}
	}
	r.ReadModel = fmt.Sprintf("%s (%d balances)", name, len(ids))
	if a.captured != nil {
		r.ReadModel = fmt.Sprintf("%s (%d balances at position %s)", name, len(ids), a.opts.BalancesAt)
	}
	r.Violations = append(r.Violations, found...)
	sortViolations(r.Violations)
	return nil
}
