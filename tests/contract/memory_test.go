package contract_test

import (
	"testing"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/projections/memory"
	"github.com/cryptovps/cryptovps/tests/contract"
)

// TestContractMemory runs the API contract against the in-memory read model.
func TestContractMemory(t *testing.T) {
	contract.Run(t, func(_ *testing.T, store eventstore.Store) projections.Model { return memory.New(store) })
}
