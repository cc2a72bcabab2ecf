package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
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
	// Plans are the plan ids AvailablePlans offers in every region; nil
	// means the default catalog's. SetSoldOut takes some away.
	Plans []string
}

type instance struct {
	ID        string     `json:"id"`
	Tag       string     `json:"tag"`
	Label     string     `json:"label"`
	Account   string     `json:"account,omitempty"`
	IPv4      string     `json:"ipv4"`
	Halted    bool       `json:"halted,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
}

type snapshot struct {
	ID         string     `json:"id"`
	Tag        string     `json:"tag"`
	InstanceID string     `json:"instanceId"`
	Account    string     `json:"account,omitempty"`
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

// Cloud is the simulated provider. Its state is a file of its own, written
// atomically on every change, because a real cloud remembers what it
// created even when we crash. Several processes may share the file, as API
// processes sharing one event store share one provider: every operation
// takes an exclusive lock (flock on the file beside it, path + ".lock"),
// reads the state afresh, and writes it back before letting go, so each
// process sees the instances the others created.
type Cloud struct {
	path  string
	clock domain.Clock
	opts  CloudOptions

	// mu makes this process's goroutines take turns: the file lock belongs
	// to the open file, which they all share.
	mu      sync.Mutex
	lock    *os.File
	state   cloudState
	soldOut map[[2]string]bool // region, plan: in memory, a test's knob
}

// ipBase is 198.18.0.0/15, the range reserved for benchmarking (RFC 2544):
// never routed, so a sandbox address cannot collide with a real host.
const ipBase = 198<<24 | 18<<16

// OpenCloud loads (or starts) the simulated cloud kept at path, creating
// its directory if need be. Close releases the lock file.
func OpenCloud(path string, clock domain.Clock, opts CloudOptions) (*Cloud, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sandbox cloud: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sandbox cloud: %w", err)
	}
	if opts.Plans == nil {
		for _, p := range domain.DefaultCatalog().Plans {
			opts.Plans = append(opts.Plans, p.ID)
		}
	}
	c := &Cloud{path: path, clock: clock, opts: opts, lock: lock, soldOut: map[[2]string]bool{}}
	// Read it once now, so that a corrupt file stops the start.
	if err := c.with(func() (bool, error) { return false, nil }); err != nil {
		lock.Close()
		return nil, err
	}
	return c, nil
}

// Close releases the lock file.
func (c *Cloud) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lock.Close()
}

// with runs fn on the current state under the lock, and saves the state if
// fn says it changed it.
func (c *Cloud) with(fn func() (changed bool, err error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := lockFile(c.lock); err != nil {
		return fmt.Errorf("lock sandbox cloud state: %w", err)
	}
	defer unlockFile(c.lock)
	if err := c.load(); err != nil {
		return err
	}
	changed, err := fn()
	if err != nil || !changed {
		return err
	}
	return c.save()
}

func (c *Cloud) load() error {
	c.state = cloudState{Instances: map[string]*instance{}, Snapshots: map[string]*snapshot{}}
	b, err := os.ReadFile(c.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("read sandbox cloud state: %w", err)
	}
	if err := json.Unmarshal(b, &c.state); err != nil {
		return fmt.Errorf("sandbox cloud state %s is corrupt: %w", c.path, err)
	}
	if c.state.Instances == nil {
		c.state.Instances = map[string]*instance{}
	}
	if c.state.Snapshots == nil {
		c.state.Snapshots = map[string]*snapshot{}
	}
	return nil
}

func (c *Cloud) save() error {
	b, err := json.Marshal(c.state)
	if err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	// 0600, like every file of the data dir: it lists every customer's
	// (simulated) instances. Chmod covers a temporary file left by a crash.
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save sandbox cloud: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
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

// now is the time of the account an instance or snapshot is for: its own
// clock (domain.AccountNow), or the shared one for those made before
// instances had an account.
func (c *Cloud) now(account string) time.Time {
	return domain.AccountNow(c.clock, account)
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
	case in.Halted:
		v.Status, v.IPv4 = domain.InstanceHalted, in.IPv4
		v.HostKeyFingerprints = HostKeyFingerprints(in.Tag)
	default:
		v.Status, v.IPv4 = domain.InstanceActive, in.IPv4
		v.HostKeyFingerprints = HostKeyFingerprints(in.Tag)
	}
	return v, nil
}

// sandboxHostKey starts every made-up host key fingerprint: it reads as
// what it is, in the alphabet of a real one.
const sandboxHostKey = "SANDBOXxNOTxREALx"

// HostKeyFingerprints are the SSH host key fingerprints the sandbox makes
// up for the server with id serverID, one per key type a server usually
// has (ED25519, ECDSA, RSA): the same for the same server every time, the
// shape of a real SHA256 fingerprint (43 characters after "SHA256:"), and
// plainly made up (they start with SANDBOXxNOTxREALx). No server answers
// with these keys: sandbox addresses reach nothing.
func HostKeyFingerprints(serverID string) []string {
	out := make([]string, 0, 3)
	for _, kind := range []string{"ED25519", "ECDSA", "RSA"} {
		sum := sha256.Sum256([]byte("cryptovps sandbox host key " + kind + " " + serverID))
		out = append(out, "SHA256:"+sandboxHostKey+base64.RawStdEncoding.EncodeToString(sum[:])[:43-len(sandboxHostKey)])
	}
	return out
}

// CreateInstance starts a new instance. Like a real cloud it does not know
// whether one with the same tag exists: callers look up first. A plan sold
// out in the region (SetSoldOut) is refused, and so is a snapshot it does
// not have or that is not complete. The answer carries a fresh random root
// password, which the sandbox keeps nowhere.
func (c *Cloud) CreateInstance(ctx context.Context, spec domain.InstanceSpec) (domain.Instance, error) {
	if err := ctx.Err(); err != nil {
		return domain.Instance{}, err
	}
	var v domain.Instance
	err := c.with(func() (bool, error) {
		now := c.now(spec.Account)
		if c.soldOut[[2]string{spec.Region, spec.Plan}] {
			return false, &domain.RefusedError{Reason: fmt.Sprintf("sandbox: plan %s is sold out in region %s", spec.Plan, spec.Region)}
		}
		if spec.SnapshotID != "" {
			s, ok := c.state.Snapshots[spec.SnapshotID]
			if !ok {
				return false, &domain.RefusedError{Reason: "sandbox: no snapshot " + spec.SnapshotID}
			}
			if sv, err := c.snapView(s, now); err != nil || sv.Status != domain.SnapshotComplete {
				return false, &domain.RefusedError{Reason: "sandbox: snapshot " + spec.SnapshotID + " is not complete"}
			}
		}
		in := &instance{ID: c.nextID("i"), Tag: spec.Tag, Label: spec.Label, Account: spec.Account, IPv4: c.nextIP(), CreatedAt: now}
		c.state.Instances[in.ID] = in
		var err error
		v, err = c.view(in, in.CreatedAt)
		return true, err
	})
	if err == nil {
		v.RootPassword = rand.Text()
	}
	return v, err
}

// HaltInstance powers an instance off: once provisioned it shows as
// halted. Halting a halted instance does nothing.
func (c *Cloud) HaltInstance(_ context.Context, id string) error {
	return c.setHalted(id, true)
}

// StartInstance powers a halted instance on again; starting a running one
// does nothing.
func (c *Cloud) StartInstance(_ context.Context, id string) error {
	return c.setHalted(id, false)
}

func (c *Cloud) setHalted(id string, halted bool) error {
	return c.with(func() (bool, error) {
		in, ok := c.state.Instances[id]
		if !ok {
			return false, fmt.Errorf("instance %s: %w", id, domain.ErrNoInstance)
		}
		if _, err := c.view(in, c.now(in.Account)); err != nil {
			return false, err
		}
		if in.DeletedAt != nil || in.Halted == halted {
			return false, nil
		}
		in.Halted = halted
		return true, nil
	})
}

// SetSoldOut makes a plan unavailable in a region (or available again):
// AvailablePlans leaves it out and CreateInstance refuses it. It is a knob
// of this Cloud value only, not of the shared state file.
func (c *Cloud) SetSoldOut(region, plan string, soldOut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if soldOut {
		c.soldOut[[2]string{region, plan}] = true
	} else {
		delete(c.soldOut, [2]string{region, plan})
	}
}

// AvailablePlans lists CloudOptions.Plans less those sold out in region.
func (c *Cloud) AvailablePlans(ctx context.Context, region string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	plans := slices.DeleteFunc(slices.Clone(c.opts.Plans), func(p string) bool { return c.soldOut[[2]string{region, p}] })
	return plans, nil
}

// Check always succeeds: the sandbox needs no credentials.
func (c *Cloud) Check(ctx context.Context) error {
	return ctx.Err()
}

// FindInstance finds the newest live instance carrying tag.
func (c *Cloud) FindInstance(_ context.Context, tag string) (domain.Instance, error) {
	var v domain.Instance
	err := c.with(func() (bool, error) {
		var found *instance
		for _, in := range c.state.Instances {
			if in.Tag == tag && (found == nil || in.CreatedAt.After(found.CreatedAt)) {
				if _, err := c.view(in, c.now(in.Account)); err == nil {
					found = in
				}
			}
		}
		if found == nil {
			return false, fmt.Errorf("instance tagged %s: %w", tag, domain.ErrNoInstance)
		}
		var err error
		v, err = c.view(found, c.now(found.Account))
		return false, err
	})
	return v, err
}

// Instance reports an instance's state now.
func (c *Cloud) Instance(_ context.Context, id string) (domain.Instance, error) {
	var v domain.Instance
	err := c.with(func() (bool, error) {
		in, ok := c.state.Instances[id]
		if !ok {
			return false, fmt.Errorf("instance %s: %w", id, domain.ErrNoInstance)
		}
		var err error
		v, err = c.view(in, c.now(in.Account))
		return false, err
	})
	return v, err
}

// DeleteInstance starts destroying an instance; deleting one already being
// destroyed is a no-op, one already gone is ErrNoInstance.
func (c *Cloud) DeleteInstance(_ context.Context, id string) error {
	return c.with(func() (bool, error) {
		in, ok := c.state.Instances[id]
		if !ok {
			return false, fmt.Errorf("instance %s: %w", id, domain.ErrNoInstance)
		}
		now := c.now(in.Account)
		if _, err := c.view(in, now); err != nil {
			return false, err
		}
		if in.DeletedAt != nil {
			return false, nil
		}
		in.DeletedAt = &now
		return true, nil
	})
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
	var v domain.Snapshot
	err := c.with(func() (bool, error) {
		in, ok := c.state.Instances[instanceID]
		if !ok {
			return false, fmt.Errorf("instance %s: %w", instanceID, domain.ErrNoInstance)
		}
		now := c.now(in.Account)
		if _, err := c.view(in, now); err != nil {
			return false, err
		}
		s := &snapshot{ID: c.nextID("s"), Tag: tag, InstanceID: instanceID, Account: in.Account, CreatedAt: now,
			Fail: strings.HasPrefix(in.Label, FailBackupPrefix)}
		c.state.Snapshots[s.ID] = s
		var err error
		v, err = c.snapView(s, now)
		return true, err
	})
	return v, err
}

// FindSnapshot finds the snapshot carrying tag.
func (c *Cloud) FindSnapshot(_ context.Context, tag string) (domain.Snapshot, error) {
	var v domain.Snapshot
	err := c.with(func() (bool, error) {
		for _, s := range c.state.Snapshots {
			if s.Tag == tag && s.DeletedAt == nil {
				var err error
				v, err = c.snapView(s, c.now(s.Account))
				return false, err
			}
		}
		return false, fmt.Errorf("snapshot tagged %s: %w", tag, domain.ErrNoInstance)
	})
	return v, err
}

// DeleteSnapshot deletes a snapshot.
func (c *Cloud) DeleteSnapshot(_ context.Context, id string) error {
	return c.with(func() (bool, error) {
		s, ok := c.state.Snapshots[id]
		if !ok || s.DeletedAt != nil {
			return false, fmt.Errorf("snapshot %s: %w", id, domain.ErrNoInstance)
		}
		now := c.now(s.Account)
		s.DeletedAt = &now
		return true, nil
	})
}

var _ domain.Provider = (*Cloud)(nil)
