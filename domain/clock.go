package domain

import (
	"fmt"
	"time"
)

// ClockAdvanced moves the sandbox clock forward; its stream is replayed at
// start so a restart never moves sandbox time backwards.
type ClockAdvanced struct {
	Seconds int64 `json:"seconds"`
	// Offset is the total offset from wall time after this advance.
	Offset int64     `json:"offsetSeconds"`
	At     time.Time `json:"at"`
}

// MaxAdvance bounds one clock advance, so one call cannot ask for years of
// hourly charges at once.
const MaxAdvance = 31 * 24 * time.Hour

// SandboxClock is the state of the sandbox clock stream: how far sandbox
// time is ahead of wall time.
type SandboxClock struct {
	// Offset is in whole seconds; it only grows.
	Offset int64
}

// OffsetDuration is the offset as a duration.
func (c SandboxClock) OffsetDuration() time.Duration { return time.Duration(c.Offset) * time.Second }

// AdvanceClock moves the sandbox clock forward by Seconds.
type AdvanceClock struct {
	Seconds int64
}

// DecideClock decides a clock advance: 1 second to MaxAdvance, added to the
// offset the stream last recorded, so two advances at once add up.
func DecideClock(c SandboxClock, cmd AdvanceClock, now time.Time) ([]Event, error) {
	// Compare in seconds: seconds*time.Second overflows for huge values and
	// could wrap into the allowed range.
	if cmd.Seconds < 1 || cmd.Seconds > int64(MaxAdvance/time.Second) {
		return nil, InvalidField("seconds", fmt.Sprintf("must be between 1 and %d", int64(MaxAdvance/time.Second)))
	}
	return []Event{ClockAdvanced{Seconds: cmd.Seconds, Offset: c.Offset + cmd.Seconds, At: now}}, nil
}

// EvolveClock folds a clock event into the clock.
func EvolveClock(c SandboxClock, e Event) SandboxClock {
	if a, ok := e.(ClockAdvanced); ok {
		c.Offset = max(c.Offset, a.Offset)
	}
	return c
}
