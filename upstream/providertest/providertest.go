// Package providertest is the contract every domain.Provider adapter must
// meet, written once so the sandbox cloud and the Vultr adapter (on its fake
// server) are held to the same behaviour: tags find instances and snapshots
// again, statuses move as the app expects, gone is ErrNoInstance, refusals
// are ErrRefused, halt and start are idempotent.
//
// Each subtest opens its own environment and may run in parallel with the
// others; tags carry the subtest's name, so environments may share a
// provider.
package providertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

// Env is one provider under test.
type Env struct {
	Provider domain.Provider
	// Advance moves the provider's clock on: provisioning, destruction and
	// snapshots take time.
	Advance func(d time.Duration)
	// Settle is long enough for any of those to finish.
	Settle time.Duration
	// Plan can be deployed in Region.
	Plan, Region string
	// SoldOut makes a plan unavailable in a region, or available again;
	// nil if the provider cannot be told (the test is skipped).
	SoldOut func(region, plan string, soldOut bool)
}

// Run runs the contract suite. open must return a ready provider and
// arrange for its cleanup (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) Env) {
	tests := []struct {
		name string
		fn   func(*testing.T, Env)
	}{
		{"CreateFindAndGet", testCreateFindGet},
		{"BecomesActiveWithIPv4", testBecomesActive},
		{"RootPasswordOnlyAtCreate", testRootPassword},
		{"UnknownIsErrNoInstance", testUnknown},
		{"DeleteThenGone", testDelete},
		{"HaltAndStart", testHaltStart},
		{"SnapshotLifecycle", testSnapshots},
		{"RestoreFromSnapshot", testRestore},
		{"AvailabilityAndSoldOut", testSoldOut},
		{"Check", testCheck},
		{"ManyTagsConcurrently", testManyTags},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func tag(t *testing.T, suffix string) string {
	return strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "-" + suffix
}

func create(t *testing.T, e Env, tg string) domain.Instance {
	t.Helper()
	in, err := e.Provider.CreateInstance(ctxFor(t), domain.InstanceSpec{Tag: tg, Label: "contract-" + tg, Plan: e.Plan, Region: e.Region,
		SSHKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq5OF1pZ5rN0XlvSHbXOC1D6ZHnXh0fN0qI0m0lYk7c contract@test"}})
	if err != nil {
		t.Fatalf("create %s: %v", tg, err)
	}
	if in.ID == "" || in.Tag != tg {
		t.Fatalf("create %s: %+v, want an id and the tag", tg, in)
	}
	return in
}

func active(t *testing.T, e Env, tg string) domain.Instance {
	t.Helper()
	in := create(t, e, tg)
	e.Advance(e.Settle)
	got, err := e.Provider.Instance(ctxFor(t), in.ID)
	if err != nil || got.Status != domain.InstanceActive {
		t.Fatalf("instance %s after settling: %+v (%v), want active", in.ID, got, err)
	}
	return got
}

func testCreateFindGet(t *testing.T, e Env) {
	ctx := ctxFor(t)
	in := create(t, e, tag(t, "a"))
	if in.Status != domain.InstancePending && in.Status != domain.InstanceActive {
		t.Fatalf("new instance status %q", in.Status)
	}
	found, err := e.Provider.FindInstance(ctx, tag(t, "a"))
	if err != nil || found.ID != in.ID || found.Tag != tag(t, "a") {
		t.Fatalf("find by tag: %+v (%v), want %s", found, err, in.ID)
	}
	got, err := e.Provider.Instance(ctx, in.ID)
	if err != nil || got.ID != in.ID || got.Tag != tag(t, "a") {
		t.Fatalf("get: %+v (%v)", got, err)
	}
	if _, err := e.Provider.FindInstance(ctx, tag(t, "never")); !errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("find an unknown tag: %v, want ErrNoInstance", err)
	}
	// A tag is not a prefix match.
	if _, err := e.Provider.FindInstance(ctx, tag(t, "")); !errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("find a prefix of the tag: %v, want ErrNoInstance", err)
	}
}

func testBecomesActive(t *testing.T, e Env) {
	got := active(t, e, tag(t, "a"))
	ip := net.ParseIP(got.IPv4)
	if ip == nil || ip.To4() == nil || ip.IsUnspecified() {
		t.Fatalf("active instance IPv4 %q", got.IPv4)
	}
	if got.Error != "" || got.RootPassword != "" {
		t.Fatalf("active instance %+v: no error, no password in later views", got)
	}
}

func testRootPassword(t *testing.T, e Env) {
	in := create(t, e, tag(t, "a"))
	if len(in.RootPassword) < 8 {
		t.Fatalf("root password %q: want one from the create", in.RootPassword)
	}
	found, err := e.Provider.FindInstance(ctxFor(t), tag(t, "a"))
	if err != nil || found.RootPassword != "" {
		t.Fatalf("find: %+v (%v), want no password", found, err)
	}
}

func testUnknown(t *testing.T, e Env) {
	ctx := ctxFor(t)
	const id = "7e6b4b8e-3f9b-4a53-9d43-3b1b7d1f0a11"
	if _, err := e.Provider.Instance(ctx, id); !errors.Is(err, domain.ErrNoInstance) {
		t.Errorf("get unknown: %v", err)
	}
	if err := e.Provider.DeleteInstance(ctx, id); !errors.Is(err, domain.ErrNoInstance) {
		t.Errorf("delete unknown: %v", err)
	}
	if err := e.Provider.HaltInstance(ctx, id); !errors.Is(err, domain.ErrNoInstance) {
		t.Errorf("halt unknown: %v", err)
	}
	if err := e.Provider.StartInstance(ctx, id); !errors.Is(err, domain.ErrNoInstance) {
		t.Errorf("start unknown: %v", err)
	}
	if _, err := e.Provider.CreateSnapshot(ctx, id, tag(t, "s")); !errors.Is(err, domain.ErrNoInstance) {
		t.Errorf("snapshot unknown: %v", err)
	}
	if err := e.Provider.DeleteSnapshot(ctx, id); !errors.Is(err, domain.ErrNoInstance) {
		t.Errorf("delete unknown snapshot: %v", err)
	}
	if _, err := e.Provider.FindSnapshot(ctx, tag(t, "never")); !errors.Is(err, domain.ErrNoInstance) {
		t.Errorf("find unknown snapshot: %v", err)
	}
}

func testDelete(t *testing.T, e Env) {
	ctx := ctxFor(t)
	in := active(t, e, tag(t, "a"))
	if err := e.Provider.DeleteInstance(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	// Right after: destroying or gone, and deleting again is harmless.
	if got, err := e.Provider.Instance(ctx, in.ID); err == nil && got.Status != domain.InstanceDestroying {
		t.Fatalf("after delete: %+v", got)
	} else if err != nil && !errors.Is(err, domain.ErrNoInstance) {
		t.Fatal(err)
	}
	if err := e.Provider.DeleteInstance(ctx, in.ID); err != nil && !errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("delete again: %v", err)
	}
	e.Advance(e.Settle)
	if _, err := e.Provider.Instance(ctx, in.ID); !errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("after settling: %v, want ErrNoInstance", err)
	}
	if _, err := e.Provider.FindInstance(ctx, tag(t, "a")); !errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("find after delete: %v, want ErrNoInstance", err)
	}
	if err := e.Provider.DeleteInstance(ctx, in.ID); !errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("delete a gone instance: %v, want ErrNoInstance", err)
	}
}

func testHaltStart(t *testing.T, e Env) {
	ctx := ctxFor(t)
	in := active(t, e, tag(t, "a"))
	want := func(status string) {
		t.Helper()
		got, err := e.Provider.Instance(ctx, in.ID)
		if err != nil || got.Status != status {
			t.Fatalf("instance: %+v (%v), want %s", got, err, status)
		}
		if got.IPv4 != in.IPv4 {
			t.Fatalf("IPv4 changed from %s to %s", in.IPv4, got.IPv4)
		}
	}
	for range 2 { // idempotent
		if err := e.Provider.HaltInstance(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		want(domain.InstanceHalted)
	}
	for range 2 {
		if err := e.Provider.StartInstance(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		e.Advance(e.Settle)
		want(domain.InstanceActive)
	}
}

func testSnapshots(t *testing.T, e Env) {
	ctx := ctxFor(t)
	in := active(t, e, tag(t, "a"))
	st := tag(t, "snap")
	snap, err := e.Provider.CreateSnapshot(ctx, in.ID, st)
	if err != nil {
		t.Fatal(err)
	}
	if snap.ID == "" || snap.Tag != st || (snap.Status != domain.SnapshotPending && snap.Status != domain.SnapshotComplete) {
		t.Fatalf("new snapshot %+v", snap)
	}
	found, err := e.Provider.FindSnapshot(ctx, st)
	if err != nil || found.ID != snap.ID {
		t.Fatalf("find snapshot: %+v (%v)", found, err)
	}
	e.Advance(e.Settle)
	found, err = e.Provider.FindSnapshot(ctx, st)
	if err != nil || found.Status != domain.SnapshotComplete {
		t.Fatalf("after settling: %+v (%v), want complete", found, err)
	}
	if err := e.Provider.DeleteSnapshot(ctx, snap.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Provider.FindSnapshot(ctx, st); !errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("find deleted snapshot: %v", err)
	}
	if err := e.Provider.DeleteSnapshot(ctx, snap.ID); !errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("delete again: %v", err)
	}
}

func testRestore(t *testing.T, e Env) {
	ctx := ctxFor(t)
	in := active(t, e, tag(t, "a"))
	snap, err := e.Provider.CreateSnapshot(ctx, in.ID, tag(t, "snap"))
	if err != nil {
		t.Fatal(err)
	}
	e.Advance(e.Settle)
	restored, err := e.Provider.CreateInstance(ctx, domain.InstanceSpec{Tag: tag(t, "b"), Label: "restored",
		Plan: e.Plan, Region: e.Region, SnapshotID: snap.ID})
	if err != nil {
		t.Fatal(err)
	}
	e.Advance(e.Settle)
	got, err := e.Provider.Instance(ctx, restored.ID)
	if err != nil || got.Status != domain.InstanceActive || got.ID == in.ID {
		t.Fatalf("restored: %+v (%v)", got, err)
	}
	_, err = e.Provider.CreateInstance(ctx, domain.InstanceSpec{Tag: tag(t, "c"), Plan: e.Plan, Region: e.Region,
		SnapshotID: "7e6b4b8e-3f9b-4a53-9d43-3b1b7d1f0a11"})
	var re *domain.RefusedError
	if !errors.Is(err, domain.ErrRefused) || !errors.As(err, &re) || re.Reason == "" {
		t.Fatalf("restore from an unknown snapshot: %v, want a refusal with a reason", err)
	}
}

func testSoldOut(t *testing.T, e Env) {
	ctx := ctxFor(t)
	plans, err := e.Provider.AvailablePlans(ctx, e.Region)
	if err != nil || !slices.Contains(plans, e.Plan) {
		t.Fatalf("available in %s: %v (%v), want %s among them", e.Region, plans, err, e.Plan)
	}
	if e.SoldOut == nil {
		t.Skip("the provider cannot be told to sell out")
	}
	e.SoldOut(e.Region, e.Plan, true)
	_, err = e.Provider.CreateInstance(ctx, domain.InstanceSpec{Tag: tag(t, "a"), Plan: e.Plan, Region: e.Region})
	var re *domain.RefusedError
	if !errors.Is(err, domain.ErrRefused) || !errors.As(err, &re) || re.Reason == "" {
		t.Fatalf("create a sold-out plan: %v, want a refusal with a reason", err)
	}
	if _, err := e.Provider.FindInstance(ctx, tag(t, "a")); !errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("a refused create left an instance: %v", err)
	}
	// A refusal drops a cached answer, so the sold-out plan is not offered.
	plans, err = e.Provider.AvailablePlans(ctx, e.Region)
	if err != nil || slices.Contains(plans, e.Plan) {
		t.Fatalf("available after selling out: %v (%v), want no %s", plans, err, e.Plan)
	}
	e.SoldOut(e.Region, e.Plan, false)
}

func testCheck(t *testing.T, e Env) {
	if err := e.Provider.Check(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
}

func testManyTags(t *testing.T, e Env) {
	ctx := ctxFor(t)
	const n = 12
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			in, err := e.Provider.CreateInstance(ctx, domain.InstanceSpec{Tag: tag(t, fmt.Sprint(i)), Plan: e.Plan, Region: e.Region})
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = in.ID
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		found, err := e.Provider.FindInstance(ctx, tag(t, fmt.Sprint(i)))
		if err != nil || found.ID != ids[i] {
			t.Fatalf("tag %d: %+v (%v), want %s", i, found, err, ids[i])
		}
		if seen[found.ID] {
			t.Fatalf("instance %s found under two tags", found.ID)
		}
		seen[found.ID] = true
	}
}
