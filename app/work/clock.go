package work

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
)

// MovableClock is a clock the sandbox can move forward: the one every
// account shares, and each account's own on top of it.
type MovableClock interface {
	domain.AccountClock
	Offset() time.Duration
	SetOffset(time.Duration)
	AccountOffset(accountID string) time.Duration
	// SetAccountOffset moves an account's own clock (never backwards) and
	// reports whether it moved.
	SetAccountOffset(accountID string, d time.Duration) bool
}

// ClockOffset replays the sandbox clock stream: the offset to start with.
func ClockOffset(ctx context.Context, clocks *app.Clocks) (time.Duration, error) {
	st, err := LoadClock(ctx, clocks)
	return st.OffsetDuration(), err
}

// LoadClock replays the sandbox clock stream: the shared offset and every
// account's own, to start with.
func LoadClock(ctx context.Context, clocks *app.Clocks) (domain.SandboxClock, error) {
	cur, err := clocks.Load(ctx, "")
	if err != nil {
		return domain.SandboxClock{}, fmt.Errorf("read sandbox clock: %w", err)
	}
	return cur.State, nil
}

// SetClock moves clock to the offsets st records (never backwards), and
// reports whether the shared clock moved and which accounts' own did.
func SetClock(clock MovableClock, st domain.SandboxClock) (shared bool, accounts []string) {
	if off := st.OffsetDuration(); off > clock.Offset() {
		clock.SetOffset(off)
		shared = true
	}
	for id := range st.Accounts {
		if clock.SetAccountOffset(id, st.AccountOffset(id)) {
			accounts = append(accounts, id)
		}
	}
	return shared, accounts
}

// Clock is the account's sandbox time.
func (s *Worker) Clock(accountID string) (app.ClockView, error) {
	clock := s.sandbox
	if clock == nil {
		return app.ClockView{}, errors.New("the clock can be moved only in sandbox mode")
	}
	return app.ClockView{Now: clock.NowFor(accountID), Offset: clock.AccountOffset(accountID), SharedOffset: clock.Offset()}, nil
}

// AdvanceAccountClock moves one account's own sandbox clock forward (POST
// /sandbox/clock/advance) and returns once everything of that account due
// by its new time has happened: its work pending now is done first (so a
// deploy accepted a moment ago is already at the provider), the move is
// recorded as an event, then the account's work due by then is done (up to
// four passes over it while they change the log: a destroy requested in
// the first completes a few seconds later) and the read model has caught
// up. No other account is looked at, billed or expired.
//
// A move is bounded: 1 second to domain.MaxAdvance, and no more than
// domain.MaxAdvanceCharges hourly charges made due at once on the account
// (counted, before anything is done, on the account as this process knows
// it); a longer move is refused with a 400 saying how far the account can
// move now, and nothing is done or recorded. With at most a few events per server and backup
// besides its charges, one request appends a bounded number of events.
//
// The work is the leader's, as for AdvanceClock: a process that does not
// lead waits for a round of the leader's that began with the move in the
// log (the leader reads the clock stream at the start of every round).
func (s *Worker) AdvanceAccountClock(ctx context.Context, accountID string, seconds int64, meta eventstore.Metadata) (app.ClockView, error) {
	clock := s.sandbox
	if clock == nil {
		return app.ClockView{}, errors.New("the clock can be moved only in sandbox mode")
	}
	if err := domain.CheckAdvance(seconds); err != nil {
		return app.ClockView{}, err // out of bounds: nothing to wait for
	}
	unlock := s.lockAccount(accountID)
	defer unlock()
	// The bound first, so that a refused move changes nothing. Hours due
	// now and not charged yet count too: the move would charge them.
	cur, err := s.accounts.Load(ctx, accountID)
	if err != nil {
		return app.ClockView{}, err
	}
	now := clock.NowFor(accountID)
	if n := cur.State.ChargesDue(now.Add(time.Duration(seconds) * time.Second)); n > domain.MaxAdvanceCharges {
		return app.ClockView{}, domain.ErrAdvanceTooLarge(n, cur.State.MaxAdvanceSeconds(now))
	}
	head, err := s.store.Head(ctx)
	if err != nil {
		return app.ClockView{}, err
	}
	if err := s.settleAccount(ctx, accountID, Round{Head: head, ClockOffset: clock.Offset()}, 1); err != nil {
		if errors.Is(err, errNoRound) {
			err = fmt.Errorf("%w: the background work did not catch up before the clock advance", domain.ErrBusy)
		}
		return app.ClockView{}, err
	}
	// The move adds to the account's offset the stream last recorded,
	// expecting the stream's version: two moves at once add up.
	d, err := s.clocks.Run(ctx, "", domain.AdvanceClock{Seconds: seconds, AccountID: accountID}, meta)
	if err != nil {
		return app.ClockView{}, err
	}
	clock.SetAccountOffset(accountID, d.State.AccountOffset(accountID))
	if err := s.settleAccount(ctx, accountID, Round{Head: d.Position, ClockOffset: clock.Offset()}, 4); err != nil {
		if errors.Is(err, errNoRound) {
			return app.ClockView{}, fmt.Errorf("%w: the clock advanced, but the background work did not catch up in time", projections.ErrLagging)
		}
		if !errors.Is(err, context.Canceled) {
			s.log.Warn("background work during an account's clock advance", "account", accountID, "err", err)
		}
	}
	head, err = s.store.Head(ctx)
	if err != nil {
		return app.ClockView{}, err
	}
	view, err := s.Clock(accountID)
	if err != nil {
		return app.ClockView{}, err
	}
	return view, s.proj.WaitFor(ctx, head, s.cfg.ReadTimeout)
}

// AdvanceClock moves the sandbox clock every account shares forward (the
// operator's move, POST /admin/sandbox/clock/advance) and returns once
// everything due by the new time has happened: work pending now is done
// first (so a deploy accepted a moment ago is already at the provider), the
// offset is recorded as an event, then everything due is done and the read
// model has caught up. It is bounded by domain.MaxAdvance only: the
// operator moves every account at once, in tests.
//
// The work is the leader's (see Leadership). A process that leads does it
// itself, as a single process always does. One that does not lead waits for
// the leader instead: before recording the advance, for a round of work
// that began with the log at least as it is now; after, for a round that
// began with the advance in the log (the leader reads the clock stream at
// the start of every round, and every process follows it, see Follow; a
// leader's first round after the clock moved repeats passes while they
// change the log, as this method does). Should the lead come to this
// process while it waits (the leader died), it does the work itself.
// Waiting is bounded by four times Config.ReadTimeout: before the advance
// is recorded a timeout is ErrBusy (nothing was written, retry), after it
// projections.ErrLagging (the advance stands, do not retry it).
func (s *Worker) AdvanceClock(ctx context.Context, seconds int64, meta eventstore.Metadata) (time.Time, error) {
	clock := s.sandbox
	if clock == nil {
		return time.Time{}, errors.New("the clock can be moved only in sandbox mode")
	}
	if err := domain.CheckAdvance(seconds); err != nil {
		return time.Time{}, err // out of bounds: nothing to wait for
	}
	s.work.Lock()
	defer s.work.Unlock()
	head, err := s.store.Head(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if err := s.settle(ctx, Round{Head: head, ClockOffset: clock.Offset()}, 1); err != nil {
		if errors.Is(err, errNoRound) {
			err = fmt.Errorf("%w: the background work did not catch up before the clock advance", domain.ErrBusy)
		}
		return time.Time{}, err
	}
	// The advance adds to the offset the stream last recorded, expecting
	// the stream's version: two processes advancing at once add up instead
	// of one overwriting the other.
	d, err := s.clocks.Run(ctx, "", domain.AdvanceClock{Seconds: seconds}, meta)
	if err != nil {
		return time.Time{}, err
	}
	offset, pos := d.State.OffsetDuration(), d.Position
	clock.SetOffset(offset)
	if err := s.settle(ctx, Round{Head: pos, ClockOffset: offset}, 4); err != nil {
		if errors.Is(err, errNoRound) {
			return time.Time{}, fmt.Errorf("%w: the clock advanced, but the background work did not catch up in time", projections.ErrLagging)
		}
		if !errors.Is(err, context.Canceled) {
			s.log.Warn("background work during clock advance", "err", err)
		}
	}
	head, err = s.store.Head(ctx)
	if err != nil {
		return time.Time{}, err
	}
	return clock.Now(), s.proj.WaitFor(ctx, head, s.cfg.ReadTimeout)
}

// errNoRound is settle giving up on the leader.
var errNoRound = errors.New("no round of background work covered the wait")

// settle has the work due by want done: by this process, in up to n passes
// recorded as a round, if it leads; else by waiting until the leader
// records a round that covers want.
func (s *Worker) settle(ctx context.Context, want Round, n int) error {
	return s.leaderOr(ctx, want, func() error {
		start, err := s.store.Head(ctx)
		if err != nil {
			return err
		}
		s.syncClock(ctx)
		off := s.clockOffset()
		complete, err := s.passes(ctx, n)
		if complete {
			s.completed(ctx, Round{Head: start, ClockOffset: off})
		}
		return err
	})
}

// settleAccount is settle for one account, whose work lock the caller
// holds: a leader works that account alone (and its backups), in up to n
// passes while they change the log; it records no round, since it did not
// look at everything.
func (s *Worker) settleAccount(ctx context.Context, accountID string, want Round, n int) error {
	return s.leaderOr(ctx, want, func() error {
		var errs []error
		for range n {
			before, err := s.store.Head(ctx)
			if err != nil {
				return err
			}
			if err := s.proj.WaitFor(ctx, before, s.cfg.ReadTimeout); err != nil {
				return err
			}
			_, err = s.workAccountLocked(ctx, accountID)
			errs = append(errs, err)
			backups, err := s.read.Backups(ctx, accountID, time.Time{})
			if err != nil {
				return errors.Join(append(errs, err)...)
			}
			for _, b := range backups {
				if err := s.workBackupLocked(ctx, b.ID); err != nil {
					errs = append(errs, fmt.Errorf("backup %s: %w", b.ID, err))
				}
			}
			after, err := s.store.Head(ctx)
			if err != nil {
				return errors.Join(append(errs, err)...)
			}
			if after == before {
				break
			}
		}
		return errors.Join(errs...)
	})
}

// leaderOr runs work if this process leads; else it waits until the leader
// records a round that covers want, doing the work itself should the lead
// come to it meanwhile.
func (s *Worker) leaderOr(ctx context.Context, want Round, work func() error) error {
	deadline := time.Now().Add(4 * s.cfg.ReadTimeout)
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for i := 0; ; i++ {
		// The lead is asked at once and then five times a second.
		if i%4 == 0 && s.lead.Held(ctx) {
			return work()
		}
		if r, err := s.lead.LastCompleted(ctx); err == nil && r.covers(want) {
			return nil
		}
		if time.Now().After(deadline) {
			return errNoRound
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
		}
	}
}

// syncClock brings the sandbox clock up to the clock stream, as it is now:
// a leader does this at the start of every round, so that a round that
// began with a clock move in the log works at the moved time even if
// following the log has not delivered the move yet. It returns the clock
// stream's version (which changes with every move); a failure to read is
// logged (the round runs at the time it knows, and the next round reads
// again).
func (s *Worker) syncClock(ctx context.Context) int64 {
	if s.sandbox == nil || s.clocks == nil {
		return 0
	}
	cur, err := s.clocks.Load(ctx, "")
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("sandbox clock: could not read the clock stream", "err", err)
		}
		return 0
	}
	SetClock(s.sandbox, cur.State)
	return cur.Version
}
