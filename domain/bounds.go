package domain

import "math"

// How many events one decision may record. A request runs one or two
// commands, so these bound what one request can append to the log; the
// runner refuses a decision over its command's bound (ErrBusy: nothing is
// recorded, retry), so no input and no state makes a request write without
// limit.
//
// What a command records of its own is small and fixed: a registration 2
// (the account and its signup credit), a top-up 1 or 2, a payment 2 (the
// top-up paid and its ledger transaction), a backup, restore record, key,
// limit request or operator decision 1, a deploy 2 per server (the server
// and its first hour) plus 1 for an Idempotency-Key: 3 for one server, 21
// for a bulk of 10. On top of that, a command that moves money or servers
// first settles what is due on the account (charges, suspensions) and a
// credit resumes suspended servers: at most a few events per live server
// while the background biller keeps up, as it does every second. Behind by
// more (it was down, or the clock jumped), a request leaves the catch-up
// to the biller rather than doing it inline.
const (
	// RequestEvents is what any command may record of its own, beyond 2
	// per deployed server: the largest fixed count above, with room.
	RequestEvents = 8
	// CatchUpPerServer is the settlement a command may do inline per live
	// server: a charge, a suspension or a resume and the charge of its
	// hour, a charge for one more hour.
	CatchUpPerServer = 4
	// Unbounded is the bound of the biller's Settle: the background work
	// settles whatever is due, however far behind; no request runs it.
	Unbounded = math.MaxInt
)

// EventBound is the most events a decision of cmd on a may record:
// RequestEvents, plus 2 per server a Deploy asks for, plus
// CatchUpPerServer per live server of the account (PROVISIONING, ACTIVE,
// SUSPENDED), which the server limit bounds in turn. Settle is Unbounded.
func EventBound(a Account, cmd Command) int {
	if _, ok := cmd.(Settle); ok {
		return Unbounded
	}
	n := RequestEvents + CatchUpPerServer*a.LiveServers()
	if d, ok := cmd.(Deploy); ok {
		n += 2 * len(d.Servers)
	}
	return n
}

// BackupEventBound is the most events a decision on a backup records: each
// of its commands records one.
func BackupEventBound(Backup, BackupCommand) int { return RequestEvents }
