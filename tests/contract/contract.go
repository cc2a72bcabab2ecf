// Package contract is the API contract test suite of CryptoVPS: every
// promise of the agent guide and of the issues, checked over HTTP against a
// complete in-process stack (bbolt event store, sandbox clock, cloud and
// payments, the application service, the Echo API). It is written once and
// runs against any read model: call Run with a constructor for the model.
//
// Tests that move the sandbox clock get a stack of their own (the clock is
// per stack); the others share one, each with accounts of its own.
package contract

import (
	"testing"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/tests/openapitest"

	"github.com/cryptovps/cryptovps/projections"
)

// Run runs the whole contract suite, building each stack's read model with
// newModel. Every request and response is checked against the OpenAPI
// document. Each call of newModel must return an empty model; store is the
// log the stack appends to, which a model may read (memory.New).
func Run(t *testing.T, newModel func(t *testing.T, store eventstore.Store) projections.Model) {
	oas = openapitest.New(t)
	// Runs after every parallel subtest: each documented operation must
	// have been exercised.
	t.Cleanup(func() { oas.AssertAllCovered(t) })
	// One stack shared by every test that leaves the clock alone.
	t.Run("shared", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, newModel, config{})
		for _, g := range []struct {
			name  string
			tests func(*testing.T, *harness)
		}{
			{"auth", authTests},
			{"tokens", tokenTests},
			{"passwords", passwordTests},
			{"api_keys", apiKeyTests},
			{"catalog", catalogTests},
			{"deploy", deployTests},
			{"bulk", bulkTests},
			{"limit", limitTests},
			{"concurrency", concurrencyTests},
			{"idempotency", idempotencyTests},
			{"destroy", destroyTests},
			{"topups", topupTests},
			{"runway", runwayTests},
			{"backups", backupRequestTests},
			{"admin", adminTests},
			{"observability", observabilityTests},
			{"personal", personalTests},
		} {
			t.Run(g.name, func(t *testing.T) { g.tests(t, h) })
		}
	})
	// A stack with a 1.00 signup credit, where money runs out first.
	t.Run("low_credit", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, newModel, config{SignupCredit: "1.00"})
		lowCreditTests(t, h)
	})
	// Tests with a stack (and so a sandbox clock) of their own.
	t.Run("clock", func(t *testing.T) {
		t.Parallel()
		clockTests(t, newModel)
	})
	t.Run("account_clocks", func(t *testing.T) {
		t.Parallel()
		accountClockTests(t, newModel)
	})
	t.Run("events", func(t *testing.T) {
		t.Parallel()
		eventStreamTests(t, func(t *testing.T, cfg config) *harness { return newHarness(t, newModel, cfg) })
	})
	t.Run("ledger", func(t *testing.T) {
		t.Parallel()
		ledgerTests(t, newModel)
	})
	t.Run("rate_limits", func(t *testing.T) {
		t.Parallel()
		rateLimitTests(t, newModel)
	})
	t.Run("idempotency", func(t *testing.T) {
		t.Parallel()
		idempotencyEverywhereTests(t, newModel)
	})
	t.Run("restart", func(t *testing.T) {
		t.Parallel()
		restartTests(t, newModel)
		forgetRestartTests(t, newModel)
	})
	t.Run("credentials_restart", func(t *testing.T) {
		t.Parallel()
		credentialRestartTests(t, newModel)
		rotationTests(t, newModel)
	})
	t.Run("btcpay", func(t *testing.T) {
		t.Parallel()
		btcpayTests(t, newModel)
	})
	t.Run("no_sandbox", func(t *testing.T) {
		t.Parallel()
		noSandboxTests(t, newModel)
	})
}

// oas checks every exchange of the suite against the OpenAPI document and
// records which documented operations the suite exercised.
var oas *openapitest.Validator
