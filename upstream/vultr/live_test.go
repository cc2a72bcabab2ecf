package vultr_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/upstream/vultr"
)

// TestLiveSmoke runs against the real Vultr API, and only when
// CRYPTOVPS_TEST_VULTR_API_KEY is set (it costs a few cents): it deploys the
// smallest plan, waits for ACTIVE, takes a snapshot, waits for it, and
// destroys both. Whatever it created is deleted at the end even if a step
// fails (the cleanup looks things up by tag, so a lost answer is covered).
// CRYPTOVPS_TEST_VULTR_REGION picks the region (ams).
func TestLiveSmoke(t *testing.T) {
	key := os.Getenv("CRYPTOVPS_TEST_VULTR_API_KEY")
	if key == "" {
		t.Skip("CRYPTOVPS_TEST_VULTR_API_KEY is not set: not touching the real Vultr API")
	}
	region := os.Getenv("CRYPTOVPS_TEST_VULTR_REGION")
	if region == "" {
		region = "ams"
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	c, err := vultr.New(vultr.Config{APIKey: key, BaseURL: os.Getenv("CRYPTOVPS_VULTR_URL")}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Minute)
	defer cancel()
	if err := c.Check(ctx); err != nil {
		t.Fatal(err)
	}
	tag := "smoke-" + uuid.NewString()
	t.Cleanup(func() { liveCleanup(t, c, tag) })

	plans, err := c.AvailablePlans(ctx, region)
	if err != nil {
		t.Fatal(err)
	}
	plan := ""
	for _, p := range []string{"vc2-1c-0.5gb", "vc2-1c-1gb", "vc2-1c-2gb"} {
		if slices.Contains(plans, p) {
			plan = p
			break
		}
	}
	if plan == "" {
		t.Fatalf("none of the small plans is available in %s: %v", region, plans)
	}
	in, err := c.CreateInstance(ctx, domain.InstanceSpec{Tag: tag, Label: "cryptovps-smoke", Plan: plan, Region: region})
	if err != nil {
		t.Fatal(err)
	}
	if in.RootPassword == "" {
		t.Error("no root password in the create answer")
	}
	in = livePoll(t, ctx, 15*time.Minute, func() (bool, domain.Instance, error) {
		got, err := c.Instance(ctx, in.ID)
		return got.Status == domain.InstanceActive, got, err
	})
	t.Logf("instance %s active at %s after %d upstream calls", in.ID, in.IPv4, c.Calls())

	snap, err := c.CreateSnapshot(ctx, in.ID, tag)
	if err != nil {
		t.Fatal(err)
	}
	livePoll(t, ctx, 40*time.Minute, func() (bool, domain.Instance, error) {
		s, err := c.FindSnapshot(ctx, tag)
		if err == nil && s.Status == domain.SnapshotError {
			t.Fatalf("snapshot %s failed: %s", snap.ID, s.Error)
		}
		return s.Status == domain.SnapshotComplete, domain.Instance{}, err
	})
	if err := c.DeleteSnapshot(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteInstance(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
}

func livePoll(t *testing.T, ctx context.Context, limit time.Duration, done func() (bool, domain.Instance, error)) domain.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		ok, in, err := done()
		if err != nil && !errors.Is(err, domain.ErrNoInstance) {
			t.Logf("poll: %v", err)
		}
		if ok {
			return in
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not done within %s", limit)
		case <-tick.C:
		}
	}
}

// liveCleanup deletes every instance and snapshot carrying tag, retrying
// for a while (Vultr may refuse to delete a very young instance).
func liveCleanup(t *testing.T, c *vultr.Cloud, tag string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for {
		left := false
		if s, err := c.FindSnapshot(ctx, tag); err == nil {
			left = true
			if err := c.DeleteSnapshot(ctx, s.ID); err != nil && !errors.Is(err, domain.ErrNoInstance) {
				t.Logf("cleanup: delete snapshot %s: %v", s.ID, err)
			}
		} else if !errors.Is(err, domain.ErrNoInstance) {
			left = true
		}
		if in, err := c.FindInstance(ctx, tag); err == nil {
			left = true
			if err := c.DeleteInstance(ctx, in.ID); err != nil && !errors.Is(err, domain.ErrNoInstance) {
				t.Logf("cleanup: delete instance %s: %v", in.ID, err)
			}
		} else if !errors.Is(err, domain.ErrNoInstance) {
			left = true
		}
		if !left {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("cleanup: resources tagged %s may be left in the Vultr account: delete them by hand", tag)
			return
		case <-tick.C:
		}
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
