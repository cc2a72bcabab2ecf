package pgleader

import (
	"context"
	"errors"
	"fmt"
)

// LeaderKnown reports whether some process leads the background work:
// this one, or another whose session holds LockKey in this database. It is
// what readiness asks; a process that cannot reach the election cannot
// tell, and says so with an error.
func (l *Leader) LeaderKnown(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false, errors.New("leader election: closed")
	}
	if l.held {
		return true, nil
	}
	if l.conn == nil || l.conn.IsClosed() {
		l.drop(ctx, errors.New("connection closed"))
		if err := l.connect(ctx); err != nil {
			return false, err
		}
	}
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	// A bigint advisory lock shows in pg_locks as its high and low 32 bits.
	var known bool
	err := l.conn.QueryRow(qctx, `SELECT EXISTS (SELECT 1 FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND classid::bigint = $1 AND objid::bigint = $2)`, LockKey>>32, LockKey&0xffffffff).Scan(&known)
	if err != nil {
		l.drop(ctx, err)
		return false, fmt.Errorf("leader election: is there a leader: %w", err)
	}
	return known, nil
}
