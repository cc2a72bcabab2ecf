package work

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cryptovps/cryptovps/app"
	"github.com/cryptovps/cryptovps/domain"
)

// The top-up reconcile loop: webhooks get lost, so the leader re-reads
// from the processor the invoices of top-ups whose outcome is still open,
// and applies them through the same rules as a webhook (app.Reconcile).
// A top-up therefore settles even if every webhook was lost, and a
// restart loses nothing: what is open is read from the read model, and
// only the spacing of the reads is kept in memory.
const (
	// TopupRecheck spaces the reads of a PENDING or PROCESSING invoice,
	// and the look-ups of an OPENING top-up's invoice.
	TopupRecheck = time.Minute
	// TopupLateRecheck spaces the reads of an EXPIRED invoice, for
	// TopupLateWindow after its expiry: BTCPay keeps watching an expired
	// invoice's addresses that long, and a payment after expiry is
	// reported then (held for review).
	TopupLateRecheck = 10 * time.Minute
	TopupLateWindow  = 24 * time.Hour
)

// topupWork is the loop's state: the processor, when this process last
// read each top-up's invoice, and when it last looked for top-ups to read.
type topupWork struct {
	pay     domain.Payments
	mu      sync.Mutex
	read    map[string]time.Time
	scanned time.Time
}

// topupScanEvery spaces the looks for top-ups to reconcile (in service
// clock time): no invoice is read more often than TopupRecheck, so looking
// at every pass (every second) only scanned every account's top-ups for
// nothing, the largest part of the work's cost when nothing is due.
const topupScanEvery = TopupRecheck / 6

// scan reports whether the loop should look for top-ups at now, and notes
// the look.
func (w *topupWork) scan(now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.scanned.IsZero() && !now.Before(w.scanned) && now.Sub(w.scanned) < topupScanEvery {
		return false
	}
	w.scanned = now
	return true
}

// due reports whether the top-up's invoice should be read at now, and
// notes the read.
func (w *topupWork) due(t domain.Topup, now time.Time) bool {
	every := TopupRecheck
	switch t.Status {
	case domain.TopupStatusOpening, domain.TopupStatusPending, domain.TopupStatusProcessing:
	case domain.TopupStatusExpired:
		if !t.Requested || now.Sub(t.ExpiresAt) > TopupLateWindow {
			return false
		}
		every = TopupLateRecheck
	default:
		return false
	}
	// A new top-up is left to the request opening it and to the webhooks
	// (the fast path) for a while: the loop is the backstop, so its first
	// read comes a recheck interval after the top-up was created.
	if now.Sub(t.CreatedAt) < TopupRecheck {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.read == nil {
		w.read = map[string]time.Time{}
	}
	if last, ok := w.read[t.ID]; ok && now.Sub(last) < every && !now.Before(last) {
		return false
	}
	w.read[t.ID] = now
	return true
}

// prune forgets the reads of top-ups no longer read (settled, or past
// their late window), so the spacing kept stays small.
func (w *topupWork) prune(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, last := range w.read {
		if now.Sub(last) > TopupLateWindow+time.Hour {
			delete(w.read, id)
		}
	}
}

// reconcileTopups is the loop's pass. A processor that cannot be reached
// fails the pass's top-ups only: they are read again next time.
func (s *Worker) reconcileTopups(ctx context.Context) error {
	if s.topups.pay == nil {
		return nil
	}
	now := s.clock.Now()
	if !s.topups.scan(now) {
		return nil
	}
	s.topups.prune(now)
	accounts, err := s.read.TopupAccounts(ctx, now.Add(-TopupLateWindow))
	if err != nil {
		return fmt.Errorf("top-ups to reconcile: %w", err)
	}
	var errs []error
	for _, id := range accounts {
		cur, err := s.accounts.Load(ctx, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, tid := range cur.State.TopupOrder {
			t := *cur.State.Topups[tid]
			if !s.topups.due(t, now) {
				continue
			}
			err := app.Reconcile(ctx, s.accounts, s.topups.pay, id, t, now, metaFor("reconcile:topup:"+t.ID))
			if errors.Is(err, domain.ErrInvalidState) {
				s.log.Info("top-up reconcile skipped", "account", id, "topup", t.ID, "reason", err)
				err = nil
			}
			if err != nil {
				// Read again at the next spacing, not the next pass: a
				// processor that is down is not asked every second.
				errs = append(errs, fmt.Errorf("top-up %s: %w", t.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}
