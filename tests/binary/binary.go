// Package binary runs the real cryptovps binary for the suites that drive it
// as a subprocess (end-to-end, multi-process): Main builds it once per test
// binary, Start runs `cryptovps serve` and waits until it is healthy, and the
// Process stops, kills and restarts it, reads its log, runs the CLI beside
// it, and gives the HTTP client (tests/apiclient) that talks to it.
package binary

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Build compiles cmd/cryptovps into out, without the race detector even when
// the test binary itself runs with -race: the subprocess is the system under
// test, not the test.
func Build(out string) error {
	// The go command that runs the tests is on PATH, or where Go installs by
	// default.
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		return fmt.Errorf("cannot locate the module root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "github.com/cryptovps/cryptovps/cmd/cryptovps")
	cmd.Dir = filepath.Join(filepath.Dir(here), "..", "..")
	var env []string
	for _, kv := range os.Environ() {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			var keep []string
			for _, f := range strings.Fields(v) {
				if f != "-race" && f != "--race" {
					keep = append(keep, f)
				}
			}
			kv = "GOFLAGS=" + strings.Join(keep, " ")
		}
		env = append(env, kv)
	}
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, b)
	}
	return nil
}
