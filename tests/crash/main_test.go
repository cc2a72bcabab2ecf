// Package crash proves the durability guarantees under the faults that
// really happen. TestCrash drives the real binary (sandbox mode) with
// concurrent agents and the sandbox clock, kills it with SIGKILL at random
// moments, restarts it on the same data dir and checks after every round
// that every write acknowledged to a client is in the log, that nothing was
// applied twice and that `cryptovps audit` passes. TestPostgresOutage does
// the same while the PostgreSQL read model goes away and comes back.
//
// `make crash` runs TestCrash for CRASH_ROUNDS rounds (make crash
// ROUNDS=200); `make test` runs a few.
package crash

import (
	"os"
	"testing"

	"github.com/cryptovps/cryptovps/tests/binary"
)

func TestMain(m *testing.M) { os.Exit(binary.Main(m.Run)) }
