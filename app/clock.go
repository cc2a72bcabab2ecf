package app

import "time"

// ClockView is an account's sandbox time: what GET /sandbox/clock shows.
type ClockView struct {
	// Now is the account's time.
	Now time.Time
	// Offset is how far the account moved its own clock.
	Offset time.Duration
	// SharedOffset is how far the operator moved every account's clock.
	SharedOffset time.Duration
}
