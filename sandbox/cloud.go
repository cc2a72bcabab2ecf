package sandbox

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cryptovps/cryptovps/domain"
)

// Magic labels, like test card numbers: a server whose label starts with
// FailDeployPrefix fails to deploy, and a backup of a server whose label
// starts with FailBackupPrefix fails.
const (
	FailDeployPrefix = "sandbox-fail-deploy"
	FailBackupPrefix = "sandbox-fail-backup"
)

// CloudOptions tunes the simulated provider.
type CloudOptions struct {
	ProvisionDelay time.Duration
	DestroyDelay   time.Duration
	BackupDelay    time.Duration
}

type instance struct {
	ID        string     `json:"id"`
	Tag       string     `json:"tag"`
	Label     string     `json:"label"`
	IPv4      string     `json:"ipv4"`
	CreatedAt time.Time  `json:"createdAt"`
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
}

type snapshot struct {
	ID         string     `json:"id"`
	Tag        string     `json:"tag"`
	InstanceID string     `json:"instanceId"`
	Fail       bool       `json:"fail"`
	CreatedAt  time.Time  `json:"createdAt"`
	DeletedAt  *time.Time `json:"deletedAt,omitempty"`
}

type cloudState struct {
	Seq       uint64               `json:"seq"`
	NextIP    uint32               `json:"nextIp"`
	Instances map[string]*instance `json:"instances"`
	Snapshots map[string]*snapshot `json:"snapshots"`
}

// Cloud is the simulated provider. Its state is a file of its own in the data
// directory, written atomically on every change, because a real cloud
// remembers what it created even when we crash.
type Cloud struct {
	path  string
	clock domain.Clock
	opts  CloudOptions

	mu    sync.Mutex
	state cloudState
}

// ipBase is 198.18.0.0/15, the range reserved for benchmarking (RFC 2544):
// never routed, so a sandbox address cannot collide with a real host.
const ipBase = 198<<24 | 18<<16

// OpenCloud loads (or starts) the simulated cloud kept at path.
func OpenCloud(path string, clock domain.Clock, opts CloudOptions) (*Cloud, error) {
	c := &Cloud{path: path, clock: clock, opts: opts,
		state: cloudState{Instances: map[string]*instance{}, Snapshots: map[string]*snapshot{}}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read sandbox cloud state: %w", err)
	default:
		if err := json.Unmarshal(b, &c.state); err != nil {
			return nil, fmt.Errorf("sandbox cloud state %s is corrupt: %w", path, err)
		}
	}
	return c, nil
}

func (c *Cloud) save() error {
	b, err := json.Marshal(c.state)
	if err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("save sandbox cloud: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("save sandbox cloud: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save sandbox cloud: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save sandbox cloud: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("save sandbox cloud: %w", err)
	}
	if d, err := os.Open(filepath.Dir(c.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func (c *Cloud) nextID(kind string) string {
	c.state.Seq++
	return fmt.Sprintf("sbx-%s-%06d", kind, c.state.Seq)
}

func (c *Cloud) nextIP() string {
	for {
		c.state.NextIP++
		n := ipBase + c.state.NextIP
		if last := n & 0xff; last == 0 || last == 255 {
			continue
		}
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, n)
		return ip.String()
	}
}

func (c *Cloud) view(in *instance, now time.Time) (domain.Instance, error) {
	v := domain.Instance{ID: in.ID, Tag: in.Tag}
	switch {
	case in.DeletedAt != nil && !now.Before(in.DeletedAt.Add(c.opts.DestroyDelay)):
		return domain.Instance{}, fmt.Errorf("instance %s: %w", in.ID, domain.ErrNoInstance)
	case in.DeletedAt != nil:
		v.Status = domain.InstanceDestroying
	case now.Before(in.CreatedAt.Add(c.opts.ProvisionDelay)):
		v.Status = domain.InstancePending
	case strings.HasPrefix(in.Label, FailDeployPrefix):
		v.Status, v.Error = domain.InstanceError, "sandbox: simulated deploy failure ("+FailDeployPrefix+" label)"
	default:
		v.Status, v.IPv4 = domain.InstanceActive, in.IPv4
	}
	return v, nil
}

// CreateInstance starts a new instance. Like a real cloud it does not know
// whether one with the same tag exists: callers look up first.
func (c *Cloud) CreateInstance(ctx context.Context, spec domain.InstanceSpec) (domain.Instance, error) {
	if err := ctx.Err(); err != nil {
		return domain.Instance{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	in := &instance{ID: c.nextID("i"), Tag: spec.Tag, Label: spec.Label, IPv4: c.nextIP(), CreatedAt: c.clock.Now()}
	c.state.Instances[in.ID] = in
	if err := c.save(); err != nil {
		delete(c.state.Instances, in.ID)
		return domain.Instance{}, err
	}
	return c.view(in, in.CreatedAt)
}

// FindInstance finds the newest live instance carrying tag.
func (c *Cloud) FindInstance(_ context.Context, tag string) (domain.Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	var found *instance
	for _, in := range c.state.Instances {
		if in.Tag == tag && (found == nil || in.CreatedAt.After(found.CreatedAt)) {
			if _, err := c.view(in, now); err == nil {
				found = in
			}
		}
	}
	if found == nil {
		return domain.Instance{}, fmt.Errorf("instance tagged %s: %w", tag, domain.ErrNoInstance)
	}
	return c.view(found, now)
}

// Instance reports an instance's state now.
func (c *Cloud) Instance(_ context.Context, id string) (domain.Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.state.Instances[id]
	if !ok {
		return domain.Instance{}, fmt.Errorf("instance %s: %w", id, domain.ErrNoInstance)
	}
	return c.view(in, c.clock.Now())
}

// DeleteInstance starts destroying an instance; deleting one already being
// destroyed is a no-op, one already gone is ErrNoInstance.
func (c *Cloud) DeleteInstance(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.state.Instances[id]
	if !ok {
		return fmt.Errorf("instance %s: %w", id, domain.ErrNoInstance)
	}
	now := c.clock.Now()
	if _, err := c.view(in, now); err != nil {
		return err
	}
	if in.DeletedAt == nil {
		in.DeletedAt = &now
		if err := c.save(); err != nil {
			in.DeletedAt = nil
			return err
		}
	}
	return nil
}

func (c *Cloud) snapView(s *snapshot, now time.Time) (domain.Snapshot, error) {
	if s.DeletedAt != nil {
		return domain.Snapshot{}, fmt.Errorf("snapshot %s: %w", s.ID, domain.ErrNoInstance)
	}
	v := domain.Snapshot{ID: s.ID, Tag: s.Tag, Status: domain.SnapshotComplete}
	switch {
	case now.Before(s.CreatedAt.Add(c.opts.BackupDelay)):
		v.Status = domain.SnapshotPending
	case s.Fail:
		v.Status, v.Error = domain.SnapshotError, "sandbox: simulated backup failure ("+FailBackupPrefix+" label)"
	}
	return v, nil
}

// CreateSnapshot starts a snapshot of a live instance.
func (c *Cloud) CreateSnapshot(ctx context.Context, instanceID, tag string) (domain.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return domain.Snapshot{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	in, ok := c.state.Instances[instanceID]
	if !ok {
		return domain.Snapshot{}, fmt.Errorf("instance %s: %w", instanceID, domain.ErrNoInstance)
	}
	if _, err := c.view(in, now); err != nil {
		return domain.Snapshot{}, err
	}
	s := &snapshot{ID: c.nextID("s"), Tag: tag, InstanceID: instanceID, CreatedAt: now,
		Fail: strings.HasPrefix(in.Label, FailBackupPrefix)}
	c.state.Snapshots[s.ID] = s
	if err := c.save(); err != nil {
		delete(c.state.Snapshots, s.ID)
		return domain.Snapshot{}, err
	}
	return c.snapView(s, now)
}

// FindSnapshot finds the snapshot carrying tag.
func (c *Cloud) FindSnapshot(_ context.Context, tag string) (domain.Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.state.Snapshots {
		if s.Tag == tag && s.DeletedAt == nil {
			return c.snapView(s, c.clock.Now())
		}
	}
	return domain.Snapshot{}, fmt.Errorf("snapshot tagged %s: %w", tag, domain.ErrNoInstance)
}

// DeleteSnapshot deletes a snapshot.
func (c *Cloud) DeleteSnapshot(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.state.Snapshots[id]
	if !ok || s.DeletedAt != nil {
		return fmt.Errorf("snapshot %s: %w", id, domain.ErrNoInstance)
	}
	now := c.clock.Now()
	s.DeletedAt = &now
	if err := c.save(); err != nil {
		s.DeletedAt = nil
		return err
	}
	return nil
}

var _ domain.Provider = (*Cloud)(nil)
