package domain

import "time"

// Clock tells the time. Production uses wall time; the sandbox a clock that
// can be moved forward.
type Clock interface {
	Now() time.Time
}
