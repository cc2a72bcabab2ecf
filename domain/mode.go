package domain

import (
	"fmt"
	"time"
)

// ModeStream records which upstreams a log was written against. Real and
// simulated money or servers must never mix in one log, so a process whose
// mode differs from the recorded one refuses to start.
const ModeStream = "deployment-mode"

// Upstream names: the simulated default and the real services.
const (
	UpstreamSandbox = "sandbox"
	UpstreamVultr   = "vultr"
	UpstreamBTCPay  = "btcpay"
)

// Mode is the cloud and the payment processor a deployment runs against.
type Mode struct {
	Cloud    string `json:"cloud"`
	Payments string `json:"payments"`
}

// Sandbox reports whether both upstreams are simulated.
func (m Mode) Sandbox() bool { return m.Cloud == UpstreamSandbox && m.Payments == UpstreamSandbox }

func (m Mode) String() string { return "cloud=" + m.Cloud + " payments=" + m.Payments }

// ModeRecorded fixes the mode of a log.
type ModeRecorded struct {
	Mode
	At time.Time `json:"at"`
}

func (ModeRecorded) EventType() string       { return "ModeRecorded" }
func (e ModeRecorded) OccurredAt() time.Time { return e.At }

// RecordedMode is the state of the mode stream.
type RecordedMode struct {
	Mode     Mode
	Recorded bool
}

// RecordMode asks that the log be in Mode.
type RecordMode struct{ Mode }

// DecideMode records the first mode and refuses any other one afterwards.
func DecideMode(s RecordedMode, c RecordMode, now time.Time) ([]Event, error) {
	if !s.Recorded {
		return []Event{ModeRecorded{Mode: c.Mode, At: now}}, nil
	}
	if s.Mode != c.Mode {
		return nil, Errorf(CodeInvalidState, "this log was written in mode %s; refusing to start in mode %s (use another data dir or event store)", s.Mode, c.Mode)
	}
	return nil, nil
}

// EvolveMode folds the mode stream.
func EvolveMode(s RecordedMode, e Event) RecordedMode {
	if r, ok := e.(ModeRecorded); ok && !s.Recorded {
		return RecordedMode{Mode: r.Mode, Recorded: true}
	}
	return s
}

// ValidMode checks the upstream names of a mode.
func ValidMode(m Mode) error {
	if m.Cloud != UpstreamSandbox && m.Cloud != UpstreamVultr {
		return fmt.Errorf("cloud %q: sandbox or vultr", m.Cloud)
	}
	if m.Payments != UpstreamSandbox && m.Payments != UpstreamBTCPay {
		return fmt.Errorf("payments %q: sandbox or btcpay", m.Payments)
	}
	return nil
}
