package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/eventstore"
)

// generator writes a realistic, varied event log by running commands through
// the real deciders, so every event is one the service could have written:
// accounts register, top up, deploy servers that are provisioned, fail,
// get billed hour after hour, suspended when the money runs out and resumed
// by a top-up, destroyed; servers are backed up, backups complete, fail,
// are restored from, deleted and expire; operators suspend accounts and
// change limits; the sandbox clock stream moves. Times carry nanoseconds, as
// the service's clock does. The same seed gives the same log.
type generator struct {
	rng      *rand.Rand
	now      time.Time
	cat      domain.Catalog
	accounts []*genAccount
	backups  []*genBackup
	versions map[string]int64
	seq      uint64
	emit     func(eventstore.Event)
	// idle is the longest pause between two commands, and one step in jumps
	// skips hours: the longer, the more hourly charges per command.
	idle  time.Duration
	jumps int
}

type genAccount struct {
	id string
	st domain.Account
}

type genBackup struct {
	id string
	st domain.Backup
}

func newGenerator(seed uint64, emit func(eventstore.Event)) *generator {
	return &generator{
		rng:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:      time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC).Add(time.Duration(seed%977) * time.Second),
		cat:      domain.DefaultCatalog(),
		versions: map[string]int64{},
		emit:     emit,
		idle:     2 * time.Minute,
		jumps:    1500,
	}
}

func (g *generator) id() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(g.rng.UintN(256))
	}
	u, _ := uuid.FromBytes(b[:])
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	return u.String()
}

// append records events on stream as one append would: consecutive versions
// and global positions.
func (g *generator) append(stream string, events []domain.Event) {
	v, ok := g.versions[stream]
	if !ok {
		v = -1
	}
	props, err := eventstore.Propose(eventstore.Metadata{Actor: "generator"}, events...)
	if err != nil {
		panic(err)
	}
	for _, p := range props {
		v++
		g.seq++
		g.emit(eventstore.Event{ID: p.ID, Stream: stream, Version: uint64(v),
			Position: eventstore.Position{Commit: g.seq, Prepare: g.seq}, Type: p.Type, Data: p.Data,
			Meta: p.Meta, RecordedAt: g.now})
	}
	g.versions[stream] = v
}

func (g *generator) account(a *genAccount, cmd domain.Command) bool {
	events, err := domain.Decide(a.st, cmd, g.now)
	if err != nil || len(events) == 0 {
		return false // refused (no money, limit, wrong state): the service would answer an error
	}
	st := a.st.Clone()
	for _, e := range events {
		st = domain.Evolve(st, e)
	}
	a.st = st
	g.append(domain.AccountStream(a.id), events)
	return true
}

func (g *generator) backup(b *genBackup, cmd domain.BackupCommand) bool {
	events, err := domain.DecideBackup(b.st, cmd, g.now)
	if err != nil || len(events) == 0 {
		return false
	}
	for _, e := range events {
		b.st = domain.EvolveBackup(b.st, e)
	}
	g.append(domain.BackupStream(b.id), events)
	return true
}

func (g *generator) pick(n int) int { return g.rng.IntN(n) }

func (g *generator) money(minCents, maxCents int) domain.Money {
	c := minCents + g.pick(maxCents-minCents+1)
	return domain.MustMoney(fmt.Sprintf("%d.%02d", c/100, c%100))
}

func (g *generator) register() {
	id := g.id()
	a := &genAccount{id: id, st: domain.NewAccount(id)}
	credit := []string{"10.00", "10.00", "1.00", "0"}[g.pick(4)]
	events, err := domain.Decide(a.st, domain.Register{AccountID: id, SealedEmail: "v1:sealed-agent-" + id[:8],
		CredentialRef: g.id(), ServerLimit: 3 + g.pick(8), SignupCredit: domain.MustMoney(credit)}, g.now)
	if err != nil {
		return
	}
	if g.pick(4) == 0 {
		// As a log written before emails were sealed holds it: the email in
		// plain in AccountRegistered (and, older still, the password hash).
		reg := events[0].(domain.AccountRegistered)
		reg.Email, reg.SealedEmail = "agent-"+id[:8]+"@example.com", ""
		reg.PasswordHash, reg.CredentialRef = "$argon2id$generated", ""
		events[0] = reg
	}
	for _, e := range events {
		a.st = domain.Evolve(a.st, e)
	}
	g.append(domain.AccountStream(id), events)
	g.accounts = append(g.accounts, a)
}

// servers lists the account's servers in a fixed order (the decider's).
func servers(a *genAccount) []*domain.Server {
	out := make([]*domain.Server, 0, len(a.st.ServerOrder))
	for _, id := range a.st.ServerOrder {
		out = append(out, a.st.Servers[id])
	}
	return out
}

func (g *generator) deploy(a *genAccount, backupID string) []string {
	n := 1
	if backupID == "" && g.pick(4) == 0 {
		n = 1 + g.pick(3)
	}
	specs := make([]domain.ServerSpec, n)
	for i := range specs {
		plan := g.cat.Plans[g.pick(2)*g.pick(len(g.cat.Plans))] // mostly the small plans
		region := g.cat.Regions[g.pick(len(g.cat.Regions))]
		specs[i] = domain.ServerSpec{ID: g.id(), Label: fmt.Sprintf("bot-%d", g.pick(1000)), Plan: plan.ID,
			Region: region.ID, HourlyPrice: plan.HourlyPrice, BackupID: backupID}
		for k := g.pick(3); k > 0; k-- {
			specs[i].SSHKeys = append(specs[i].SSHKeys, domain.SSHKey{
				Fingerprint: "SHA256:" + g.id(), Key: "ssh-ed25519 AAAA" + g.id()})
		}
	}
	cmd := domain.Deploy{Servers: specs, Bulk: n > 1}
	if g.pick(3) == 0 {
		cmd.Idem = domain.Idem{Key: g.id(), RequestHash: g.id(), Wall: g.now}
	}
	if !g.account(a, cmd) {
		return nil
	}
	ids := make([]string, n)
	for i, s := range specs {
		ids[i] = s.ID
	}
	return ids
}

// progress moves one of the account's servers a step through its life, as
// the background work would.
func (g *generator) progress(a *genAccount) {
	ss := servers(a)
	if len(ss) == 0 {
		return
	}
	s := ss[g.pick(len(ss))]
	switch {
	case s.Status == domain.StatusProvisioning && s.InstanceID == "" && s.Attempts == 0:
		g.account(a, domain.StartProvision{ServerID: s.ID})
	case s.Status == domain.StatusProvisioning && s.InstanceID == "":
		if g.pick(5) == 0 {
			g.account(a, domain.FailDeploy{ServerID: s.ID, Reason: "provider gave up"})
		} else {
			g.account(a, domain.RecordInstance{ServerID: s.ID, InstanceID: "i-" + s.ID[:8]})
		}
	case !s.Activated && s.InstanceID != "" && (s.Status == domain.StatusProvisioning || s.Status == domain.StatusSuspended):
		if g.pick(8) == 0 {
			g.account(a, domain.FailDeploy{ServerID: s.ID, Reason: "instance error"})
		} else {
			act := domain.Activate{ServerID: s.ID, IPv4: fmt.Sprintf("198.18.%d.%d", g.pick(256), g.pick(256))}
			if g.pick(2) == 0 { // a provider that tells the host keys
				act.HostKeys = []string{"SHA256:" + g.id(), "SHA256:" + g.id()}
			}
			g.account(a, act)
		}
	case s.Status == domain.StatusDestroying:
		g.account(a, domain.CompleteDestroy{ServerID: s.ID})
	case s.Live() && g.pick(6) == 0:
		g.account(a, domain.Destroy{ServerID: s.ID})
	}
}

func (g *generator) topup(a *genAccount) {
	for _, id := range a.st.TopupOrder {
		if t := a.st.Topups[id]; t.Status == domain.TopupStatusPending && g.pick(3) > 0 {
			g.account(a, domain.PayTopup{TopupID: id})
			return
		}
	}
	g.account(a, domain.CreateTopup{TopupID: g.id(), Amount: g.money(100, 5000), Currency: domain.Currencies[g.pick(len(domain.Currencies))],
		PayAddress: "tb1q" + g.id()[:12], ProviderRef: "inv-" + g.id()[:8]})
}

func (g *generator) backupStep(a *genAccount) {
	if len(g.backups) > 0 && g.pick(2) == 0 {
		b := g.backups[g.pick(len(g.backups))]
		switch {
		case b.st.Status == domain.BackupPending && g.pick(4) == 0:
			g.backup(b, domain.FailBackup{Reason: "snapshot failed"})
		case b.st.Status == domain.BackupPending:
			g.backup(b, domain.CompleteBackup{SnapshotID: "snap-" + b.id[:8]})
		case !g.now.Before(b.st.ExpiresAt):
			g.backup(b, domain.ExpireBackup{})
		case b.st.Status == domain.BackupAvailable && g.pick(2) == 0:
			owner := g.owner(b.st.AccountID)
			if owner != nil && b.st.Visible(g.now) {
				if ids := g.deploy(owner, b.id); len(ids) == 1 {
					g.backup(b, domain.RecordRestore{ServerID: ids[0]})
				}
			}
		case g.pick(3) == 0:
			g.backup(b, domain.DeleteBackup{AccountID: b.st.AccountID})
		}
		return
	}
	for _, s := range servers(a) {
		if s.Status == domain.StatusActive {
			b := &genBackup{id: g.id()}
			if g.backup(b, domain.RequestBackup{BackupID: b.id, AccountID: a.id, Server: *s}) {
				g.backups = append(g.backups, b)
			}
			return
		}
	}
}

// credentials changes the password or creates or deletes an API key: what
// the log records of credentials (never a hash).
func (g *generator) credentials(a *genAccount) {
	switch {
	case len(a.st.APIKeyOrder) > 0 && g.pick(2) == 0:
		g.account(a, domain.DeleteAPIKey{KeyID: a.st.APIKeyOrder[g.pick(len(a.st.APIKeyOrder))]})
	case g.pick(3) == 0:
		g.account(a, domain.ChangePassword{FromVersion: a.st.TokenVersion, CredentialRef: g.id()})
	default:
		cmd := domain.CreateAPIKey{KeyID: g.id(), Name: fmt.Sprintf("agent %d", g.pick(100))}
		if g.pick(2) == 0 {
			cmd.Idem = domain.Idem{Key: g.id(), RequestHash: g.id(), Wall: g.now}
		}
		g.account(a, cmd)
	}
}

func (g *generator) owner(id string) *genAccount {
	for _, a := range g.accounts {
		if a.id == id {
			return a
		}
	}
	return nil
}

// step runs one command somewhere in the system.
func (g *generator) step() {
	// Time passes between commands, with nanoseconds, and now and then
	// hours or days (a quiet night, a restart): due hours pile up and the
	// biller charges them one by one.
	g.now = g.now.Add(time.Duration(g.rng.Int64N(int64(g.idle))) + time.Duration(g.pick(1000)))
	if g.pick(g.jumps) == 0 {
		g.now = g.now.Add(time.Duration(1+g.pick(72)) * time.Hour)
	}
	if len(g.accounts) < 3 || g.pick(40) == 0 {
		g.register()
		return
	}
	a := g.accounts[g.pick(len(g.accounts))]
	switch r := g.pick(100); {
	case r < 30:
		g.account(a, domain.Settle{})
	case r < 40:
		g.topup(a)
	case r < 50:
		g.deploy(a, "")
	case r < 72:
		g.progress(a)
	case r < 82:
		g.backupStep(a)
	case r < 84:
		if a.st.Suspended {
			g.account(a, domain.Unsuspend{Reason: "cleared", Actor: "operator"})
		} else {
			g.account(a, domain.Suspend{Reason: "abuse report", Actor: "operator"})
		}
	case r < 85:
		g.account(a, domain.SetLimit{Limit: 1 + g.pick(20), Actor: "operator"})
	case r < 87:
		g.append(domain.ClockStream, []domain.Event{domain.ClockAdvanced{Seconds: 60, Offset: int64(g.pick(1e6)), At: g.now}})
	case r < 88:
		if a.st.Email.Plain != "" {
			g.account(a, domain.SealEmail{Sealed: "v1:sealed-later-" + a.id[:8]})
		} else {
			g.account(a, domain.Forget{Actor: "operator", Operator: true, ForfeitBalance: g.pick(2) == 0})
		}
	case r < 90:
		g.credentials(a)
	default:
		// The biller's pass over everyone with live servers.
		for _, b := range g.accounts[max(0, len(g.accounts)-50):] {
			g.account(b, domain.Settle{})
		}
	}
}

// generate returns a log of at least n events, rich in lifecycle events.
func generate(seed uint64, n int) []eventstore.Event {
	return generateWith(seed, n, 2*time.Minute, 1500)
}

// generateWith is generate with the clock's pace: the longest pause between
// commands, and one step in jumps skipping up to 72 hours.
func generateWith(seed uint64, n int, idle time.Duration, jumps int) []eventstore.Event {
	var log []eventstore.Event
	g := newGenerator(seed, func(ev eventstore.Event) { log = append(log, ev) })
	g.idle, g.jumps = idle, jumps
	for len(log) < n {
		g.step()
	}
	return log
}

// memStore is an eventstore.Store in memory, for feeding projectors in
// tests and benchmarks without an event store's I/O. Like a real store it
// keeps events encoded and decodes them on every read, so readers pay the
// same decoding cost (and a huge log costs the garbage collector little).
// add takes ready events, whose positions must continue the log.
type memStore struct {
	mu   sync.Mutex
	pos  []eventstore.Position
	raw  [][]byte
	wake chan struct{}
}

func newMemStore(events []eventstore.Event) *memStore {
	s := &memStore{wake: make(chan struct{})}
	s.add(events...)
	return s
}

func (s *memStore) add(events ...eventstore.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range events {
		b, err := json.Marshal(ev)
		if err != nil {
			panic(err)
		}
		s.pos = append(s.pos, ev.Position)
		s.raw = append(s.raw, b)
	}
	close(s.wake)
	s.wake = make(chan struct{})
}

// read decodes at most limit events after pos, and returns the channel
// closed by the next add.
func (s *memStore) read(from eventstore.Position, limit int) ([]eventstore.Event, <-chan struct{}) {
	s.mu.Lock()
	i := sort.Search(len(s.pos), func(i int) bool { return from.Less(s.pos[i]) })
	raw := s.raw[i:min(len(s.raw), i+limit)]
	wake := s.wake
	s.mu.Unlock()
	events := make([]eventstore.Event, len(raw))
	for j, b := range raw {
		if err := json.Unmarshal(b, &events[j]); err != nil {
			panic(err)
		}
	}
	return events, wake
}

func (s *memStore) ReadAllLazy(ctx context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	return s.ReadAll(ctx, from, limit)
}

func (s *memStore) ReadStreamLazy(ctx context.Context, stream string, from uint64) ([]eventstore.Event, error) {
	return s.ReadStream(ctx, stream, from)
}

func (s *memStore) ReadAll(_ context.Context, from eventstore.Position, limit int) ([]eventstore.Event, error) {
	events, _ := s.read(from, limit)
	return events, nil
}

func (s *memStore) Subscribe(ctx context.Context, from eventstore.Position, fn func([]eventstore.Event) error) error {
	for {
		batch, wake := s.read(from, 512)
		if len(batch) == 0 {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := fn(batch); err != nil {
			return err
		}
		from = batch[len(batch)-1].Position
	}
}

func (s *memStore) Head(context.Context) (eventstore.Position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pos) == 0 {
		return eventstore.Position{}, nil
	}
	return s.pos[len(s.pos)-1], nil
}

func (s *memStore) Append(context.Context, string, int64, []eventstore.Proposed) (eventstore.AppendResult, error) {
	panic("memStore: use add")
}

func (s *memStore) ReadStream(context.Context, string, uint64) ([]eventstore.Event, error) {
	panic("memStore: not needed by projectors")
}

func (s *memStore) ReadStreamPage(context.Context, string, uint64, int) ([]eventstore.Event, error) {
	panic("memStore: not needed by projectors")
}

func (s *memStore) Close() error { return nil }
