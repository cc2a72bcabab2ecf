// Package startup measures how long the real binary takes to serve a data
// dir holding a long history (BenchmarkCompareStartup).
package startup

import (
	"os"
	"testing"

	"github.com/cryptovps/cryptovps/tests/binary"
)

func TestMain(m *testing.M) { os.Exit(binary.Main(m.Run)) }
