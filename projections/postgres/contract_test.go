package postgres

import (
	"testing"

	"github.com/cryptovps/cryptovps/eventstore"
	"github.com/cryptovps/cryptovps/projections"
	"github.com/cryptovps/cryptovps/tests/contract"
)

// The API's answers are the same whichever read model serves them: the
// contract suite the in-memory model passes, on PostgreSQL.
func TestAPIContractOnPostgres(t *testing.T) {
	contract.Run(t, func(t *testing.T, _ eventstore.Store) projections.Model { return newModel(t) })
}
