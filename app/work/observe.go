package work

import (
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

// Observer is told how the background work goes, for the metrics: whether
// this process leads it, and how each round went. Its methods must be
// quick; they are called from the work loop.
type Observer interface {
	// Leading is told, before each round, whether this process leads.
	Leading(held bool)
	// Round is told of a finished round: how long it took, what its last
	// pass found to do, and its error.
	Round(took time.Duration, found Backlog, err error)
}

// Backlog is the work a pass found to do.
type Backlog struct {
	// Provisioning counts servers still PROVISIONING.
	Provisioning int
	// BackupsPending counts backups whose snapshot is not complete yet.
	BackupsPending int
	// ChargesDue counts billable hours that have begun and are not charged
	// yet (the biller charges them in this pass).
	ChargesDue int
}

// account adds what the account has waiting at now.
func (b *Backlog) account(a domain.Account, now time.Time) {
	for _, id := range a.ServerOrder {
		s := a.Servers[id]
		if s.Status == domain.StatusProvisioning {
			b.Provisioning++
		}
		if s.Billable() && !s.BilledUntil.After(now) {
			b.ChargesDue += int(now.Sub(s.BilledUntil)/time.Hour) + 1
		}
	}
}

type noObserver struct{}

func (noObserver) Leading(bool)                        {}
func (noObserver) Round(time.Duration, Backlog, error) {}
