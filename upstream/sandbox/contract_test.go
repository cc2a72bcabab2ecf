package sandbox_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/upstream/providertest"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

func TestCloudMeetsTheProviderContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Env {
		clock := sandbox.NewClock(time.Now, 0)
		c, err := sandbox.OpenCloud(filepath.Join(t.TempDir(), "cloud.json"), clock,
			sandbox.CloudOptions{ProvisionDelay: time.Minute, DestroyDelay: 5 * time.Second, BackupDelay: 3 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return providertest.Env{
			Provider: c,
			Advance:  func(d time.Duration) { clock.SetOffset(clock.Offset() + d) },
			Settle:   10 * time.Minute,
			Plan:     "vc2-1c-1gb",
			Region:   "ams",
			SoldOut:  c.SetSoldOut,
		}
	})
}
