package vultr_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/upstream/providertest"
	"github.com/cryptovps/cryptovps/upstream/vultr"
	"github.com/cryptovps/cryptovps/upstream/vultr/vultrfake"
)

// rig is the adapter on a fake Vultr sharing its fake clock.
type rig struct {
	fake  *vultrfake.Server
	clock *vultrfake.Clock
	cloud *vultr.Cloud
	log   *logBuffer
}

func newRig(t *testing.T, opts vultrfake.Options, cfg vultr.Config) *rig {
	t.Helper()
	clock := vultrfake.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	opts.Clock = clock
	if opts.APIKey == "" {
		opts.APIKey = "fake-key-0123456789abcdef"
	}
	fake := vultrfake.New(t, opts)
	if cfg.APIKey == "" {
		cfg.APIKey = opts.APIKey
	}
	cfg.BaseURL, cfg.Clock = fake.URL, clock
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Millisecond
	}
	if cfg.MaxRetryWait == 0 {
		cfg.MaxRetryWait = 5 * time.Millisecond
	}
	if cfg.RequestsPerSecond == 0 {
		cfg.RequestsPerSecond, cfg.Burst = 1000, 100
	}
	lb := &logBuffer{}
	cloud, err := vultr.New(cfg, slog.New(slog.NewTextHandler(io.MultiWriter(lb), &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return &rig{fake: fake, clock: clock, cloud: cloud, log: lb}
}

func TestAdapterMeetsTheProviderContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Env {
		r := newRig(t, vultrfake.Options{MaxPerPage: 3}, vultr.Config{})
		return providertest.Env{
			Provider: r.cloud,
			Advance:  r.clock.Advance,
			Settle:   10 * time.Minute,
			Plan:     "vc2-1c-1gb",
			Region:   "ams",
			SoldOut:  r.fake.SetSoldOut,
		}
	})
}
