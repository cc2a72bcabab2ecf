package sandbox_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/upstream/sandbox"
)

func openCloud(t *testing.T, path string) *sandbox.Cloud {
	t.Helper()
	c, err := sandbox.OpenCloud(path, sandbox.NewClock(time.Now, 0), sandbox.CloudOptions{ProvisionDelay: time.Minute, DestroyDelay: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Two Clouds on one file stand for two processes: each has a lock file of
// its own open, so they exclude each other as processes would.
func TestCloudsSharingAFileAreOneProvider(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shared", "cloud.json")
	a, b := openCloud(t, path), openCloud(t, path)
	ctx := context.Background()

	inst, err := a.CreateInstance(ctx, domain.InstanceSpec{Tag: "srv-1", Label: "web"})
	if err != nil {
		t.Fatal(err)
	}
	found, err := b.FindInstance(ctx, "srv-1")
	if err != nil || found.ID != inst.ID {
		t.Fatalf("the other process finds %+v (%v), want %s", found, err, inst.ID)
	}
	if err := b.DeleteInstance(ctx, inst.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Instance(ctx, inst.ID); err != nil || got.Status != domain.InstanceDestroying {
		t.Fatalf("after a delete through the other process: %+v (%v), want DESTROYING", got, err)
	}

	// Creations from both at once: none lost, no id given twice.
	const each = 40
	var wg sync.WaitGroup
	ids := make(chan string, 2*each)
	for i, c := range []*sandbox.Cloud{a, b} {
		wg.Go(func() {
			for j := range each {
				in, err := c.CreateInstance(ctx, domain.InstanceSpec{Tag: fmt.Sprintf("p%d-%d", i, j)})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- in.ID
			}
		})
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("instance id %s given twice", id)
		}
		seen[id] = true
	}
	for i := range 2 {
		for j := range each {
			if _, err := a.FindInstance(ctx, fmt.Sprintf("p%d-%d", i, j)); err != nil {
				t.Fatalf("instance p%d-%d lost: %v", i, j, err)
			}
		}
	}
	// A third process opening the file later sees it all.
	c := openCloud(t, path)
	if _, err := c.FindInstance(ctx, "p1-39"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindInstance(ctx, "nope"); !errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("unknown tag: %v", err)
	}
}

func TestHostKeyFingerprintsAreMadeUpPlainlyAndTheSameForTheSameServer(t *testing.T) {
	t.Parallel()
	a, b := sandbox.HostKeyFingerprints("server-a"), sandbox.HostKeyFingerprints("server-b")
	if len(a) != 3 || !slices.Equal(a, sandbox.HostKeyFingerprints("server-a")) {
		t.Fatalf("fingerprints %v are not three, the same every time", a)
	}
	for i, fp := range a {
		rest, ok := strings.CutPrefix(fp, "SHA256:SANDBOXxNOTxREALx")
		if !ok || len(fp) != len("SHA256:")+43 {
			t.Errorf("%q: not the shape of a SHA256 fingerprint, or not plainly made up", fp)
		}
		if _, err := base64.RawStdEncoding.DecodeString(rest + strings.Repeat("A", (4-len(rest)%4)%4)); err != nil {
			t.Errorf("%q: not base64: %v", fp, err)
		}
		if fp == b[i] || slices.Contains(a[:i], fp) {
			t.Errorf("%q repeats", fp)
		}
	}
}

// The cloud's files are the owner's alone, whatever the umask, and a
// temporary file left open to others by an older version is tightened.
func TestCloudFilesAre0600(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "cloud.json")
	if err := os.WriteFile(path+".tmp", []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := openCloud(t, path)
	if _, err := c.CreateInstance(context.Background(), domain.InstanceSpec{Tag: "srv-1"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + ".lock"} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := info.Mode().Perm(); m != 0o600 {
			t.Errorf("%s: mode %#o, want 0600", filepath.Base(p), m)
		}
	}
}
