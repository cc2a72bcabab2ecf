// Package vultr is the production cloud: a domain.Provider on the Vultr API
// v2, through the official client github.com/vultr/govultr/v3.
//
// What it adds to the bare client, so callers can keep the money guarantees
// of the intent-before-call / reconcile-by-tag design:
//
//   - Every instance carries the tag Config.TagPrefix + our server id, and
//     every snapshot that string as its description, so FindInstance and
//     FindSnapshot find them again after a lost answer.
//   - Errors callers branch on: domain.ErrNoInstance (404: gone),
//     domain.ErrRefused (*domain.RefusedError with Vultr's reason: a 4xx to
//     a create, nothing was created), domain.ErrUnauthorized (401/403).
//     Anything else (5xx, 429, timeouts, dropped connections) is an unknown
//     outcome for a create, which the caller reconciles by tag.
//   - A client-side rate limiter, a timeout on every attempt, and retries
//     with backoff and jitter for GET and DELETE only: a POST is sent once.
//   - The API key lives in memory only: never logged, and scrubbed from any
//     error text.
//   - The status mapping: active only when Vultr says status=active,
//     power_status=running, server_status=ok and main_ip is set.
//
// SSH keys are passed as cloud-init user_data rather than Vultr SSH key
// objects: see cloudConfig.
package vultr

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vultr/govultr/v3"
	"golang.org/x/time/rate"

	"github.com/cryptovps/cryptovps/domain"
)

// Defaults for Config fields left zero.
const (
	DefaultBaseURL = "https://api.vultr.com/"
	// DefaultOSID is Ubuntu 24.04 LTS x64.
	DefaultOSID              = 2284
	DefaultTagPrefix         = "cryptovps-"
	DefaultRequestTimeout    = 20 * time.Second
	DefaultRequestsPerSecond = 10 // Vultr allows 30 per second per IP
	DefaultBurst             = 5
	DefaultRetries           = 3
	DefaultRetryBackoff      = 500 * time.Millisecond
	DefaultMaxRetryWait      = 10 * time.Second
	DefaultActivationTimeout = 20 * time.Minute
	DefaultSnapshotTimeout   = 4 * time.Hour
	DefaultAvailabilityTTL   = 5 * time.Minute
)

// Config configures the adapter. Only APIKey is required.
type Config struct {
	APIKey string
	// BaseURL is where the API lives; requests go to BaseURL + "v2/...". A
	// path in it is kept (a proxy at https://proxy.example/vultr/).
	BaseURL string
	// OSID is the image new instances get (not restores, which take the
	// snapshot's): Vultr's os_id.
	OSID int
	// TagPrefix goes before our tag in the instance tag and the snapshot
	// description, so our resources are recognisable in the account.
	TagPrefix string
	// RequestTimeout bounds each attempt of each call.
	RequestTimeout time.Duration
	// RequestsPerSecond and Burst shape the client-side rate limiter.
	RequestsPerSecond float64
	Burst             int
	// Retries is how many times a GET or DELETE is retried after a 429, a
	// 5xx or a transport error (negative: never). RetryBackoff is the first
	// wait, doubled each time up to MaxRetryWait, with jitter.
	Retries      int
	RetryBackoff time.Duration
	MaxRetryWait time.Duration
	// ActivationTimeout: an instance Vultr still calls pending this long
	// after it was created is reported as InstanceError. SnapshotTimeout is
	// the same for snapshots. Negative: no limit.
	ActivationTimeout time.Duration
	SnapshotTimeout   time.Duration
	// AvailabilityTTL is how long AvailablePlans answers are cached.
	AvailabilityTTL time.Duration

	// HTTPClient sends the requests (its Transport is used; nil: a default
	// one). Clock tells the time for the timeouts above and the cache.
	HTTPClient *http.Client
	Clock      domain.Clock
	// OnCall, if set, is told of every request sent upstream.
	OnCall func(Call)
}

// String describes the configuration without the API key, so printing a
// Config (or a Cloud) never shows it.
func (c Config) String() string {
	key := "unset"
	if c.APIKey != "" {
		key = "set"
	}
	return fmt.Sprintf("vultr.Config{BaseURL: %q, OSID: %d, APIKey: %s}", c.BaseURL, c.OSID, key)
}

// GoString is String, for %#v.
func (c Config) GoString() string { return c.String() }

// LogValue keeps the API key out of structured logs.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Cloud is the Vultr adapter. It is safe for concurrent use.
type Cloud struct {
	cfg   Config
	api   *govultr.Client
	tr    *transport
	log   *slog.Logger
	clock domain.Clock

	mu    sync.Mutex
	avail map[string]availability
}

type availability struct {
	plans []string
	at    time.Time
}

// New builds the adapter; it makes no call (see Check).
func New(cfg Config, log *slog.Logger) (*Cloud, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("vultr: base URL %q is not an http(s) URL", cfg.BaseURL)
	}
	if strings.ContainsAny(cfg.APIKey, " \t\r\n") {
		return nil, errors.New("vultr: the API key contains white space")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if cfg.OSID == 0 {
		cfg.OSID = DefaultOSID
	}
	if cfg.TagPrefix == "" {
		cfg.TagPrefix = DefaultTagPrefix
	}
	def(&cfg.RequestTimeout, DefaultRequestTimeout)
	def(&cfg.RetryBackoff, DefaultRetryBackoff)
	def(&cfg.MaxRetryWait, DefaultMaxRetryWait)
	def(&cfg.ActivationTimeout, DefaultActivationTimeout)
	def(&cfg.SnapshotTimeout, DefaultSnapshotTimeout)
	def(&cfg.AvailabilityTTL, DefaultAvailabilityTTL)
	if cfg.RequestsPerSecond <= 0 {
		cfg.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = DefaultRetries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var rt http.RoundTripper = http.DefaultTransport
	if cfg.HTTPClient != nil && cfg.HTTPClient.Transport != nil {
		rt = cfg.HTTPClient.Transport
	}
	c := &Cloud{cfg: cfg, log: log, clock: cfg.Clock, avail: map[string]availability{}}
	c.tr = &transport{
		base:     rt,
		key:      cfg.APIKey,
		prefix:   strings.TrimSuffix(base.Path, "/"),
		limiter:  rate.NewLimiter(rate.Limit(cfg.RequestsPerSecond), cfg.Burst),
		timeout:  cfg.RequestTimeout,
		retries:  cfg.Retries,
		backoff:  cfg.RetryBackoff,
		maxWait:  cfg.MaxRetryWait,
		onCall:   cfg.OnCall,
		redactor: c.redact,
	}
	c.api = govultr.NewClient(&http.Client{Transport: c.tr})
	c.api.SetRetryLimit(0) // the transport retries, and never a POST
	c.api.SetUserAgent("cryptovps (govultr)")
	if err := c.api.SetBaseURL((&url.URL{Scheme: base.Scheme, Host: base.Host}).String()); err != nil {
		return nil, fmt.Errorf("vultr: %w", err)
	}
	return c, nil
}

// String describes the adapter without its API key.
func (c *Cloud) String() string { return "vultr.Cloud(" + c.cfg.String() + ")" }

// GoString is String, for %#v.
func (c *Cloud) GoString() string { return c.String() }

// Calls is how many requests were sent upstream so far (each retry counts).
func (c *Cloud) Calls() int64 { return c.tr.calls.Load() }

// redact keeps the API key out of any text.
func (c *Cloud) redact(s string) string {
	if len(c.cfg.APIKey) >= 4 {
		s = strings.ReplaceAll(s, c.cfg.APIKey, "[REDACTED]")
	}
	return s
}

// Error is a failed call to Vultr. It matches domain.ErrNoInstance,
// domain.ErrRefused or domain.ErrUnauthorized through Unwrap when it is
// one of those; otherwise the outcome is unknown.
type Error struct {
	Op      string // "create instance", "get instance", ...
	Status  int    // HTTP status, 0 if no answer came
	Message string // Vultr's reason, or the transport error
	kind    error
	cause   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("vultr: ")
	b.WriteString(e.Op)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap gives the sentinel the error stands for and the transport cause.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// Transient says whether the call may succeed if made again later: a 429,
// a 5xx or no answer at all.
func (e *Error) Transient() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// fail turns a failed govultr call into an *Error on what the transport saw.
// refusals says whether a 4xx (other than 401, 403, 404, 429) is a refusal
// (a create or an action) rather than a plain failure. A 404 is
// ErrNoInstance when gone is set.
func (c *Cloud) fail(op string, o *outcome, err error, gone, refusals bool) error {
	e := &Error{Op: op, Status: o.status, Message: o.message}
	switch {
	case o.status == 0 && o.err != nil:
		e.Message, e.cause = c.redact(o.err.Error()), o.err
	case o.status == 0:
		// Failed before or after the exchange (a context, a bad answer).
		e.Message, e.cause = c.redact(err.Error()), err
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			e.cause = err
		}
	case o.status < 300:
		// Vultr answered 2xx but the body did not decode.
		e.Message = "bad answer: " + c.redact(err.Error())
		e.Status = 0
	case o.status == http.StatusNotFound && gone:
		e.kind = domain.ErrNoInstance
	case o.status == http.StatusUnauthorized || o.status == http.StatusForbidden:
		e.kind = domain.ErrUnauthorized
	case o.status == http.StatusTooManyRequests || o.status >= 500:
	case refusals && o.status >= 400:
		reason := o.message
		if reason == "" {
			reason = http.StatusText(o.status)
		}
		e.kind = &domain.RefusedError{Reason: "Vultr: " + reason}
	}
	return e
}

// call runs one govultr call with an outcome recorder in its context.
func (c *Cloud) call(ctx context.Context, fn func(ctx context.Context) error) (*outcome, error) {
	ctx, o := withOutcome(ctx)
	err := fn(ctx)
	return o, err
}

func (c *Cloud) tag(tag string) string { return c.cfg.TagPrefix + tag }

// ourTag is the tag we gave, or "" on an instance we did not tag.
func (c *Cloud) ourTag(tags []string) string {
	for _, t := range tags {
		if rest, ok := strings.CutPrefix(t, c.cfg.TagPrefix); ok {
			return rest
		}
	}
	return ""
}

// view maps Vultr's instance to ours. Vultr's API tells no SSH host keys
// (the instance object has none, and no endpoint lists them), so
// HostKeyFingerprints stays nil: agents are told to check the key on first
// connection some other way, or to trust it on first use.
func (c *Cloud) view(in *govultr.Instance) domain.Instance {
	v := domain.Instance{ID: in.ID, Tag: c.ourTag(in.Tags), Status: domain.InstancePending}
	hasIP := in.MainIP != "" && in.MainIP != "0.0.0.0"
	switch {
	case in.Status == "active" && in.PowerStatus == "running" && in.ServerStatus == "ok" && hasIP:
		v.Status, v.IPv4 = domain.InstanceActive, in.MainIP
	case in.Status == "active" && in.PowerStatus == "stopped":
		v.Status = domain.InstanceHalted
		if hasIP {
			v.IPv4 = in.MainIP
		}
	case in.Status == "pending" && c.cfg.ActivationTimeout > 0:
		if created, ok := parseTime(in.DateCreated); ok && c.clock.Now().Sub(created) > c.cfg.ActivationTimeout {
			v.Status = domain.InstanceError
			v.Error = fmt.Sprintf("Vultr did not make the instance active within %s (status %s, server_status %s)",
				c.cfg.ActivationTimeout, in.Status, in.ServerStatus)
		}
	}
	return v
}

func parseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// CreateInstance creates an instance tagged with spec.Tag, from the
// configured OS image or from spec.SnapshotID. The one POST is never
// retried: after an error other than a refusal, call FindInstance.
func (c *Cloud) CreateInstance(ctx context.Context, spec domain.InstanceSpec) (domain.Instance, error) {
	if spec.Tag == "" {
		return domain.Instance{}, errors.New("vultr: create instance: no tag")
	}
	req := &govultr.InstanceCreateReq{
		Region: spec.Region,
		Plan:   spec.Plan,
		Label:  spec.Label,
		Tags:   []string{c.tag(spec.Tag)},
	}
	if req.Label == "" {
		req.Label = spec.Tag
	}
	if h := hostname(spec.Label); h != "" {
		req.Hostname = h
	}
	if spec.SnapshotID != "" {
		req.SnapshotID = spec.SnapshotID
	} else {
		req.OsID = c.cfg.OSID
	}
	ud, err := cloudConfig(spec.SSHKeys)
	if err != nil {
		return domain.Instance{}, &domain.RefusedError{Reason: err.Error()}
	}
	req.UserData = ud
	var in *govultr.Instance
	o, err := c.call(ctx, func(ctx context.Context) (err error) {
		in, _, err = c.api.Instance.Create(ctx, req)
		return err
	})
	if err == nil && (in == nil || in.ID == "") {
		err = errors.New("no instance in the answer")
	}
	if err != nil {
		err = c.fail("create instance", o, err, false, true)
		if errors.Is(err, domain.ErrRefused) {
			c.forget(spec.Region) // sold out, maybe: ask again next time
		}
		c.log.Warn("vultr: create instance failed", "tag", spec.Tag, "plan", spec.Plan, "region", spec.Region, "err", err)
		return domain.Instance{}, err
	}
	v := c.view(in)
	v.RootPassword = in.DefaultPassword
	c.log.Info("vultr: instance created", "tag", spec.Tag, "instance", in.ID, "plan", spec.Plan, "region", spec.Region)
	return v, nil
}

// hostname makes a label a hostname, or "" if nothing is left of it.
func hostname(label string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(label) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == '_' || r == '.' || r == ' ':
			b.WriteByte('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = strings.Trim(h[:63], "-")
	}
	return h
}

// cloudConfig is the base64 cloud-init user_data that installs the keys for
// root, or "" when there are none.
//
// Why user_data and not Vultr SSH key objects: a key object is one more
// non-idempotent POST per key per deploy, account-wide state that leaks
// when an answer is lost (and that two deploys sharing a key would have to
// coordinate to delete), and several more calls per deploy. user_data rides
// on the one create call, leaves nothing behind, is the server's own, and
// is applied on restores from snapshots as well (cloud-init runs its
// per-instance modules on every new instance id). Vultr's Ubuntu images run
// cloud-init. Keys are public, so their appearing in the instance's
// user-data is harmless.
func cloudConfig(keys []string) (string, error) {
	if len(keys) == 0 {
		return "", nil
	}
	var b strings.Builder
	b.WriteString("#cloud-config\ndisable_root: false\nusers:\n  - name: root\n    lock_passwd: false\n    ssh_authorized_keys:\n")
	for _, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" || strings.ContainsAny(k, "\r\n") {
			return "", errors.New("an SSH key is not a single line")
		}
		q, err := json.Marshal(k) // a JSON string is a YAML flow scalar
		if err != nil {
			return "", err
		}
		b.WriteString("      - ")
		b.Write(q)
		b.WriteByte('\n')
	}
	return base64.StdEncoding.EncodeToString([]byte(b.String())), nil
}

// FindInstance lists the instances carrying the tag (all pages) and returns
// the newest.
func (c *Cloud) FindInstance(ctx context.Context, tag string) (domain.Instance, error) {
	want := c.tag(tag)
	opts := &govultr.ListOptions{PerPage: 100, Tag: want}
	var found *govultr.Instance
	for page := 0; ; page++ {
		var list []govultr.Instance
		var meta *govultr.Meta
		o, err := c.call(ctx, func(ctx context.Context) (err error) {
			list, meta, _, err = c.api.Instance.List(ctx, opts)
			return err
		})
		if err != nil {
			return domain.Instance{}, c.fail("list instances", o, err, false, false)
		}
		for i := range list {
			in := &list[i]
			if slices.Contains(in.Tags, want) && (found == nil || in.DateCreated > found.DateCreated) {
				found = in
			}
		}
		if meta == nil || meta.Links == nil || meta.Links.Next == "" || page > 1000 {
			break
		}
		opts.Cursor = meta.Links.Next
	}
	if found == nil {
		return domain.Instance{}, fmt.Errorf("vultr: instance tagged %s: %w", tag, domain.ErrNoInstance)
	}
	return c.view(found), nil
}

// Instance reports an instance's state now.
func (c *Cloud) Instance(ctx context.Context, id string) (domain.Instance, error) {
	in, err := c.get(ctx, id)
	if err != nil {
		return domain.Instance{}, err
	}
	return c.view(in), nil
}

func (c *Cloud) get(ctx context.Context, id string) (*govultr.Instance, error) {
	if id == "" {
		return nil, fmt.Errorf("vultr: instance with no id: %w", domain.ErrNoInstance)
	}
	var in *govultr.Instance
	o, err := c.call(ctx, func(ctx context.Context) (err error) {
		in, _, err = c.api.Instance.Get(ctx, url.PathEscape(id))
		return err
	})
	if err == nil && in == nil {
		err = errors.New("no instance in the answer")
	}
	if err != nil {
		return nil, c.fail("get instance "+id, o, err, true, false)
	}
	return in, nil
}

// DeleteInstance destroys an instance; one already gone (404) is
// ErrNoInstance.
func (c *Cloud) DeleteInstance(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("vultr: instance with no id: %w", domain.ErrNoInstance)
	}
	o, err := c.call(ctx, func(ctx context.Context) error {
		return c.api.Instance.Delete(ctx, url.PathEscape(id))
	})
	if err != nil {
		return c.fail("delete instance "+id, o, err, true, false)
	}
	c.log.Info("vultr: instance deleted", "instance", id)
	return nil
}

// HaltInstance powers the instance off. Halting a halted one is harmless.
func (c *Cloud) HaltInstance(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("vultr: instance with no id: %w", domain.ErrNoInstance)
	}
	o, err := c.call(ctx, func(ctx context.Context) error {
		return c.api.Instance.Halt(ctx, url.PathEscape(id))
	})
	if err != nil {
		return c.fail("halt instance "+id, o, err, true, true)
	}
	c.log.Info("vultr: instance halted", "instance", id)
	return nil
}

// StartInstance powers a halted instance on. Vultr's start reboots an
// instance that is running, so it looks first and leaves a running one
// alone: calling it again after an unknown outcome is safe.
func (c *Cloud) StartInstance(ctx context.Context, id string) error {
	in, err := c.get(ctx, id)
	if err != nil {
		return err
	}
	if in.PowerStatus == "running" {
		return nil
	}
	o, err := c.call(ctx, func(ctx context.Context) error {
		return c.api.Instance.Start(ctx, url.PathEscape(id))
	})
	if err != nil {
		return c.fail("start instance "+id, o, err, true, true)
	}
	c.log.Info("vultr: instance started", "instance", id)
	return nil
}

func (c *Cloud) snapView(s *govultr.Snapshot) domain.Snapshot {
	v := domain.Snapshot{ID: s.ID, Tag: strings.TrimPrefix(s.Description, c.cfg.TagPrefix), Status: domain.SnapshotPending}
	switch s.Status {
	case "complete":
		v.Status = domain.SnapshotComplete
	case "pending":
		if created, ok := parseTime(s.DateCreated); ok && c.cfg.SnapshotTimeout > 0 && c.clock.Now().Sub(created) > c.cfg.SnapshotTimeout {
			v.Status = domain.SnapshotError
			v.Error = fmt.Sprintf("Vultr did not complete the snapshot within %s", c.cfg.SnapshotTimeout)
		}
	}
	return v
}

// CreateSnapshot starts a snapshot of an instance, described with the tag.
// The POST is never retried: after an unknown outcome, call FindSnapshot.
// A refusal for an instance that is gone is ErrNoInstance.
func (c *Cloud) CreateSnapshot(ctx context.Context, instanceID, tag string) (domain.Snapshot, error) {
	if instanceID == "" {
		return domain.Snapshot{}, fmt.Errorf("vultr: instance with no id: %w", domain.ErrNoInstance)
	}
	var s *govultr.Snapshot
	o, err := c.call(ctx, func(ctx context.Context) (err error) {
		s, _, err = c.api.Snapshot.Create(ctx, &govultr.SnapshotReq{InstanceID: instanceID, Description: c.tag(tag)})
		return err
	})
	if err == nil && (s == nil || s.ID == "") {
		err = errors.New("no snapshot in the answer")
	}
	if err != nil {
		err = c.fail("create snapshot of "+instanceID, o, err, true, true)
		if errors.Is(err, domain.ErrRefused) {
			// Vultr answers 400 for an instance it does not have: tell that
			// case apart, as callers fail the backup on ErrNoInstance.
			if _, gerr := c.get(ctx, instanceID); errors.Is(gerr, domain.ErrNoInstance) {
				return domain.Snapshot{}, gerr
			}
		}
		c.log.Warn("vultr: create snapshot failed", "tag", tag, "instance", instanceID, "err", err)
		return domain.Snapshot{}, err
	}
	c.log.Info("vultr: snapshot started", "tag", tag, "instance", instanceID, "snapshot", s.ID)
	return c.snapView(s), nil
}

// FindSnapshot lists the snapshots described with the tag (all pages) and
// returns the newest that is not deleted.
func (c *Cloud) FindSnapshot(ctx context.Context, tag string) (domain.Snapshot, error) {
	want := c.tag(tag)
	opts := &govultr.ListOptions{PerPage: 100, Description: want}
	var found *govultr.Snapshot
	for page := 0; ; page++ {
		var list []govultr.Snapshot
		var meta *govultr.Meta
		o, err := c.call(ctx, func(ctx context.Context) (err error) {
			list, meta, _, err = c.api.Snapshot.List(ctx, opts)
			return err
		})
		if err != nil {
			return domain.Snapshot{}, c.fail("list snapshots", o, err, false, false)
		}
		for i := range list {
			s := &list[i]
			if s.Description == want && s.Status != "deleted" && (found == nil || s.DateCreated > found.DateCreated) {
				found = s
			}
		}
		if meta == nil || meta.Links == nil || meta.Links.Next == "" || page > 1000 {
			break
		}
		opts.Cursor = meta.Links.Next
	}
	if found == nil {
		return domain.Snapshot{}, fmt.Errorf("vultr: snapshot tagged %s: %w", tag, domain.ErrNoInstance)
	}
	return c.snapView(found), nil
}

// DeleteSnapshot deletes a snapshot; one already gone is ErrNoInstance.
func (c *Cloud) DeleteSnapshot(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("vultr: snapshot with no id: %w", domain.ErrNoInstance)
	}
	o, err := c.call(ctx, func(ctx context.Context) error {
		return c.api.Snapshot.Delete(ctx, url.PathEscape(id))
	})
	if err != nil {
		return c.fail("delete snapshot "+id, o, err, true, false)
	}
	c.log.Info("vultr: snapshot deleted", "snapshot", id)
	return nil
}

// AvailablePlans asks Vultr which plans can be deployed in region, and
// keeps the answer for Config.AvailabilityTTL. A region Vultr does not know
// (400 or 404) has no plans. Errors are not cached.
func (c *Cloud) AvailablePlans(ctx context.Context, region string) ([]string, error) {
	if region == "" {
		return []string{}, nil
	}
	now := c.clock.Now()
	c.mu.Lock()
	a, ok := c.avail[region]
	c.mu.Unlock()
	if ok && now.Sub(a.at) < c.cfg.AvailabilityTTL && !now.Before(a.at) {
		return slices.Clone(a.plans), nil
	}
	var pa *govultr.PlanAvailability
	o, err := c.call(ctx, func(ctx context.Context) (err error) {
		pa, _, err = c.api.Region.Availability(ctx, url.PathEscape(region), "")
		return err
	})
	var plans []string
	switch {
	case err == nil && pa != nil:
		plans = slices.Clone(pa.AvailablePlans)
	case err == nil:
		return nil, &Error{Op: "region availability " + region, Message: "no availability in the answer"}
	case o.status == http.StatusNotFound || o.status == http.StatusBadRequest:
		plans = []string{}
	default:
		return nil, c.fail("region availability "+region, o, err, false, false)
	}
	if plans == nil {
		plans = []string{}
	}
	c.mu.Lock()
	c.avail[region] = availability{plans: plans, at: now}
	c.mu.Unlock()
	return slices.Clone(plans), nil
}

// forget drops the cached availability of a region.
func (c *Cloud) forget(region string) {
	c.mu.Lock()
	delete(c.avail, region)
	c.mu.Unlock()
}

// Check asks Vultr for the account (GET /v2/account), so that a missing or
// rejected key stops the start with a clear message: such errors match
// domain.ErrUnauthorized.
func (c *Cloud) Check(ctx context.Context) error {
	if c.cfg.APIKey == "" {
		return fmt.Errorf("vultr: no API key is set (VULTR_API_KEY): %w", domain.ErrUnauthorized)
	}
	o, err := c.call(ctx, func(ctx context.Context) error {
		_, _, err := c.api.Account.Get(ctx)
		return err
	})
	if err != nil {
		err = c.fail("check the API key (GET /v2/account)", o, err, false, false)
		if errors.Is(err, domain.ErrUnauthorized) {
			return fmt.Errorf("vultr rejected the API key: %w", err)
		}
		return fmt.Errorf("could not reach vultr to check the API key: %w", err)
	}
	return nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

var _ domain.Provider = (*Cloud)(nil)
