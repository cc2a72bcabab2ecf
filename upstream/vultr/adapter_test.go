package vultr_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cryptovps/cryptovps/domain"
	"github.com/cryptovps/cryptovps/upstream/vultr"
	"github.com/cryptovps/cryptovps/upstream/vultr/vultrfake"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq5OF1pZ5rN0XlvSHbXOC1D6ZHnXh0fN0qI0m0lYk7c agent@example"

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func spec(tag string) domain.InstanceSpec {
	return domain.InstanceSpec{Tag: tag, Label: "web " + tag, Plan: "vc2-1c-1gb", Region: "ams", SSHKeys: []string{testKey}}
}

// unknownOutcome says err is neither a refusal nor "gone" nor a key problem:
// the caller must look up by tag before creating again.
func unknownOutcome(err error) bool {
	return err != nil && !errors.Is(err, domain.ErrRefused) && !errors.Is(err, domain.ErrNoInstance) && !errors.Is(err, domain.ErrUnauthorized)
}

// reconcile is the worker's next pass after an unknown outcome: look up by
// tag, and only create if nothing carries it.
func reconcile(ctx context.Context, c domain.Provider, s domain.InstanceSpec) (domain.Instance, error) {
	found, ferr := c.FindInstance(ctx, s.Tag)
	if ferr == nil {
		return found, nil
	}
	if !errors.Is(ferr, domain.ErrNoInstance) {
		return domain.Instance{}, ferr
	}
	return c.CreateInstance(ctx, s)
}

func TestLostAnswersAfterACreateNeverMakeASecondInstance(t *testing.T) {
	t.Parallel()
	faults := map[string]vultrfake.Fault{
		"connection dropped":    {Drop: true},
		"no answer (timeout)":   {Hang: true},
		"500 after the work":    {Status: 500},
		"503 after the work":    {Status: 503},
		"429 after (misbehave)": {Status: 429},
	}
	for name, f := range faults {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, vultrfake.Options{}, vultr.Config{RequestTimeout: 2 * time.Second})
			f.Method, f.Path, f.After = http.MethodPost, "/v2/instances", true
			r.fake.Inject(f)
			ctx := ctxFor(t)
			_, err := r.cloud.CreateInstance(ctx, spec("srv-1"))
			if !unknownOutcome(err) {
				t.Fatalf("create with a lost answer: %v, want an unknown outcome", err)
			}
			in, err := reconcile(ctx, r.cloud, spec("srv-1"))
			if err != nil {
				t.Fatal(err)
			}
			insts := r.fake.Instances()
			if len(insts) != 1 || insts[0].ID != in.ID {
				t.Fatalf("instances at Vultr %d (found %s), want exactly the one", len(insts), in.ID)
			}
			if n := r.fake.Count(http.MethodPost, "/v2/instances"); n != 1 {
				t.Fatalf("%d creates sent, want 1: a POST is never retried", n)
			}
		})
	}
}

func TestATimeoutBeforeTheWorkIsFoundNotCreatedThenCreatedOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, vultrfake.Options{}, vultr.Config{RequestTimeout: 2 * time.Second})
	r.fake.Inject(vultrfake.Fault{Method: http.MethodPost, Path: "/v2/instances", Hang: true})
	ctx := ctxFor(t)
	_, err := r.cloud.CreateInstance(ctx, spec("srv-1"))
	if !unknownOutcome(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("create that timed out: %v, want an unknown outcome wrapping DeadlineExceeded", err)
	}
	if _, err := reconcile(ctx, r.cloud, spec("srv-1")); err != nil {
		t.Fatal(err)
	}
	if n := len(r.fake.Instances()); n != 1 {
		t.Fatalf("%d instances, want 1", n)
	}
}

func TestTwoWorkersReconcilingTheSameTagFindOneInstance(t *testing.T) {
	t.Parallel()
	// One fake Vultr, two adapters (two processes): the first worker's
	// answer is lost; the second finds the instance by tag.
	r := newRig(t, vultrfake.Options{}, vultr.Config{})
	other, err := vultr.New(vultr.Config{APIKey: "fake-key-0123456789abcdef", BaseURL: r.fake.URL, Clock: r.clock}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.fake.Inject(vultrfake.Fault{Method: http.MethodPost, Path: "/v2/instances", After: true, Drop: true})
	ctx := ctxFor(t)
	if _, err := r.cloud.CreateInstance(ctx, spec("srv-1")); !unknownOutcome(err) {
		t.Fatal(err)
	}
	if _, err := reconcile(ctx, other, spec("srv-1")); err != nil {
		t.Fatal(err)
	}
	if n := len(r.fake.Instances()); n != 1 {
		t.Fatalf("%d instances, want 1", n)
	}
}

func TestReadsAndDeletesAreRetriedPostsNever(t *testing.T) {
	t.Parallel()
	r := newRig(t, vultrfake.Options{}, vultr.Config{Retries: 3})
	ctx := ctxFor(t)
	in, err := r.cloud.CreateInstance(ctx, spec("srv-1"))
	if err != nil {
		t.Fatal(err)
	}
	path := "/v2/instances/" + in.ID

	// GET: 429 (with Retry-After), 500, 503, then the answer.
	r.fake.Inject(vultrfake.Fault{Method: http.MethodGet, Path: path, Status: 429, RetryAfter: 1})
	r.fake.Inject(vultrfake.Fault{Method: http.MethodGet, Path: path, Status: 500})
	r.fake.Inject(vultrfake.Fault{Method: http.MethodGet, Path: path, Status: 503})
	if _, err := r.cloud.Instance(ctx, in.ID); err != nil {
		t.Fatalf("get after three transient failures: %v", err)
	}
	if n := r.fake.Count(http.MethodGet, path); n != 4 {
		t.Fatalf("%d GETs, want 4", n)
	}

	// GET giving up after Retries: an unknown outcome, marked transient.
	r.fake.Inject(vultrfake.Fault{Method: http.MethodGet, Path: path, Status: 502, Times: 4})
	_, err = r.cloud.Instance(ctx, in.ID)
	var ve *vultr.Error
	if !errors.As(err, &ve) || !ve.Transient() || ve.Status != 502 || errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("get after persistent 502s: %v", err)
	}
	if n := r.fake.Count(http.MethodGet, path); n != 4+4 {
		t.Fatalf("%d GETs, want 4 more (1 + 3 retries)", n-4)
	}

	// POSTs: a 500, a 503 and a 429 are each sent once and reported.
	for _, st := range []int{500, 503, 429} {
		before := r.fake.Count(http.MethodPost, "/v2/instances")
		r.fake.Inject(vultrfake.Fault{Method: http.MethodPost, Path: "/v2/instances", Status: st})
		_, err := r.cloud.CreateInstance(ctx, spec(fmt.Sprint("srv-", st)))
		if !unknownOutcome(err) || !errors.As(err, &ve) || ve.Status != st {
			t.Fatalf("create answered %d: %v", st, err)
		}
		if n := r.fake.Count(http.MethodPost, "/v2/instances") - before; n != 1 {
			t.Fatalf("create answered %d was sent %d times, want once", st, n)
		}
	}
	r.fake.Inject(vultrfake.Fault{Method: http.MethodPost, Path: path + "/halt", Status: 500})
	if err := r.cloud.HaltInstance(ctx, in.ID); !unknownOutcome(err) {
		t.Fatalf("halt answered 500: %v", err)
	}
	if n := r.fake.Count(http.MethodPost, path+"/halt"); n != 1 {
		t.Fatalf("halt sent %d times, want once", n)
	}

	// DELETE: the first attempt is carried out but answered 500; the retry
	// finds it gone, which counts as destroyed.
	r.fake.Inject(vultrfake.Fault{Method: http.MethodDelete, Path: path, Status: 500, After: true})
	if err := r.cloud.DeleteInstance(ctx, in.ID); !errors.Is(err, domain.ErrNoInstance) {
		t.Fatalf("delete whose first answer was lost: %v, want ErrNoInstance (already gone)", err)
	}
	if n := r.fake.Count(http.MethodDelete, path); n != 2 {
		t.Fatalf("%d DELETEs, want 2", n)
	}
	if n := len(r.fake.Instances()); n != 0 {
		t.Fatalf("%d instances left", n)
	}
}

func TestRefusalsAreErrRefusedWithVultrsReason(t *testing.T) {
	t.Parallel()
	r := newRig(t, vultrfake.Options{InstanceLimit: 1}, vultr.Config{})
	ctx := ctxFor(t)
	cases := []struct {
		name string
		spec domain.InstanceSpec
		want string
	}{
		{"invalid plan", domain.InstanceSpec{Tag: "a", Plan: "vc2-99c-1tb", Region: "ams"}, "Invalid plan"},
		{"invalid region", domain.InstanceSpec{Tag: "b", Plan: "vc2-1c-1gb", Region: "xxx"}, "Invalid region"},
		{"unknown snapshot", domain.InstanceSpec{Tag: "c", Plan: "vc2-1c-1gb", Region: "ams", SnapshotID: "nope"}, "snapshot"},
	}
	for _, tc := range cases {
		_, err := r.cloud.CreateInstance(ctx, tc.spec)
		var re *domain.RefusedError
		if !errors.As(err, &re) || !errors.Is(err, domain.ErrRefused) || !strings.Contains(re.Reason, tc.want) {
			t.Errorf("%s: %v, want a refusal naming %q", tc.name, err, tc.want)
		}
	}
	if _, err := r.cloud.CreateInstance(ctx, spec("one")); err != nil {
		t.Fatal(err)
	}
	_, err := r.cloud.CreateInstance(ctx, spec("two"))
	if !errors.Is(err, domain.ErrRefused) || !strings.Contains(err.Error(), "maximum number") {
		t.Fatalf("over quota: %v", err)
	}
	if n := len(r.fake.Instances()); n != 1 {
		t.Fatalf("%d instances, want 1", n)
	}
	// Sold out: the availability answer and the create agree.
	r.fake.SetSoldOut("fra", "vc2-2c-4gb", true)
	plans, err := r.cloud.AvailablePlans(ctx, "fra")
	if err != nil || slices.Contains(plans, "vc2-2c-4gb") || !slices.Contains(plans, "vc2-1c-1gb") {
		t.Fatalf("available in fra: %v (%v)", plans, err)
	}
	_, err = r.cloud.CreateInstance(ctx, domain.InstanceSpec{Tag: "so", Plan: "vc2-2c-4gb", Region: "fra"})
	if !errors.Is(err, domain.ErrRefused) || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("sold out: %v", err)
	}
}

func TestAvailabilityIsCachedForItsTTL(t *testing.T) {
	t.Parallel()
	r := newRig(t, vultrfake.Options{}, vultr.Config{AvailabilityTTL: 5 * time.Minute})
	ctx := ctxFor(t)
	const path = "/v2/regions/ams/availability"
	for range 3 {
		if _, err := r.cloud.AvailablePlans(ctx, "ams"); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.fake.Count(http.MethodGet, path); n != 1 {
		t.Fatalf("%d availability calls within the TTL, want 1", n)
	}
	r.fake.SetSoldOut("ams", "vc2-1c-1gb", true)
	r.clock.Advance(5*time.Minute + time.Second)
	plans, err := r.cloud.AvailablePlans(ctx, "ams")
	if err != nil || slices.Contains(plans, "vc2-1c-1gb") {
		t.Fatalf("after the TTL: %v (%v)", plans, err)
	}
	if n := r.fake.Count(http.MethodGet, path); n != 2 {
		t.Fatalf("%d availability calls, want 2", n)
	}
	// An unknown region has no plans; errors are not cached.
	if plans, err := r.cloud.AvailablePlans(ctx, "atlantis"); err != nil || len(plans) != 0 {
		t.Fatalf("unknown region: %v (%v)", plans, err)
	}
	r.fake.Inject(vultrfake.Fault{Path: "/v2/regions/fra", Status: 500, Times: 4})
	if _, err := r.cloud.AvailablePlans(ctx, "fra"); !unknownOutcome(err) {
		t.Fatalf("availability when Vultr fails: %v", err)
	}
	if plans, err := r.cloud.AvailablePlans(ctx, "fra"); err != nil || len(plans) == 0 {
		t.Fatalf("availability after a failure: %v (%v)", plans, err)
	}
}

func TestCheckTellsAMissingOrRejectedKey(t *testing.T) {
	t.Parallel()
	r := newRig(t, vultrfake.Options{}, vultr.Config{})
	ctx := ctxFor(t)
	if err := r.cloud.Check(ctx); err != nil {
		t.Fatal(err)
	}
	const wrong = "wrong-key-ABCDEFGHIJKLMNOP"
	bad, _ := vultr.New(vultr.Config{APIKey: wrong, BaseURL: r.fake.URL}, nil)
	err := bad.Check(ctx)
	if !errors.Is(err, domain.ErrUnauthorized) || !strings.Contains(err.Error(), "rejected the API key") || strings.Contains(err.Error(), wrong) {
		t.Fatalf("wrong key: %v", err)
	}
	none, _ := vultr.New(vultr.Config{BaseURL: r.fake.URL}, nil)
	before := len(r.fake.Requests())
	if err := none.Check(ctx); !errors.Is(err, domain.ErrUnauthorized) || !strings.Contains(err.Error(), "VULTR_API_KEY") {
		t.Fatalf("no key: %v", err)
	}
	if len(r.fake.Requests()) != before {
		t.Fatal("Check without a key called Vultr")
	}
	r.fake.Inject(vultrfake.Fault{Path: "/v2/account", Status: 503, Times: 4})
	if err := r.cloud.Check(ctx); err == nil || errors.Is(err, domain.ErrUnauthorized) || !strings.Contains(err.Error(), "could not reach") {
		t.Fatalf("Vultr down: %v", err)
	}
}

func TestTheKeyAndRootPasswordStayOutOfLogsAndErrors(t *testing.T) {
	t.Parallel()
	const key = "SEKRIT-0123456789-abcdefghijkl"
	// A server that echoes what it got, the worst case for redaction.
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"error":"bad request from %s","status":400}`, r.Header.Get("Authorization"))
	}))
	t.Cleanup(echo.Close)
	lb := &logBuffer{}
	c, err := vultr.New(vultr.Config{APIKey: key, BaseURL: echo.URL, RetryBackoff: time.Millisecond, MaxRetryWait: time.Millisecond}, newLogger(lb))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	var errs []error
	_, err = c.CreateInstance(ctx, spec("a"))
	errs = append(errs, err)
	_, err = c.Instance(ctx, "x")
	errs = append(errs, err, c.Check(ctx), c.DeleteInstance(ctx, "x"))
	for _, err := range errs {
		if err == nil || strings.Contains(err.Error(), key) || strings.Contains(fmt.Sprintf("%+v", err), key) {
			t.Errorf("error %v: want an error without the key", err)
		}
	}
	for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", c, c, c, c)} {
		if strings.Contains(s, key) {
			t.Errorf("printing the adapter shows the key: %s", s)
		}
	}

	// A whole lifecycle on the fake, with debug logs.
	r := newRig(t, vultrfake.Options{APIKey: key}, vultr.Config{})
	in, err := r.cloud.CreateInstance(ctx, spec("b"))
	if err != nil || in.RootPassword == "" {
		t.Fatalf("create: %+v (%v), want a root password", in, err)
	}
	r.clock.Advance(2 * time.Minute)
	_, _ = r.cloud.Instance(ctx, in.ID)
	_, _ = r.cloud.FindInstance(ctx, "b")
	_ = r.cloud.HaltInstance(ctx, in.ID)
	_ = r.cloud.StartInstance(ctx, in.ID)
	_ = r.cloud.DeleteInstance(ctx, in.ID)
	_ = r.cloud.DeleteInstance(ctx, in.ID)
	logs := lb.String() + r.log.String()
	if strings.Contains(logs, key) || strings.Contains(logs, in.RootPassword) {
		t.Fatalf("the key or the root password reached the logs:\n%s", logs)
	}
	if !strings.Contains(r.log.String(), "instance created") {
		t.Fatalf("expected some logs, got:\n%s", r.log.String())
	}
}

func TestSSHKeysGoInCloudInitNotKeyObjects(t *testing.T) {
	t.Parallel()
	r := newRig(t, vultrfake.Options{}, vultr.Config{})
	ctx := ctxFor(t)
	s := spec("a")
	s.SSHKeys = append(s.SSHKeys, "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ second \"quoted\" comment")
	if _, err := r.cloud.CreateInstance(ctx, s); err != nil {
		t.Fatal(err)
	}
	ud := string(r.fake.Instances()[0].UserData)
	if !strings.HasPrefix(ud, "#cloud-config\n") || !strings.Contains(ud, testKey) || !strings.Contains(ud, `second \"quoted\" comment`) ||
		!strings.Contains(ud, "name: root") {
		t.Fatalf("user_data:\n%s", ud)
	}
	if n := r.fake.Count("", "/v2/ssh-keys"); n != 0 || len(r.fake.Instances()[0].SSHKeyIDs) != 0 {
		t.Fatal("SSH key objects were used")
	}
	// No keys: no user_data at all.
	if _, err := r.cloud.CreateInstance(ctx, domain.InstanceSpec{Tag: "b", Plan: "vc2-1c-1gb", Region: "ams"}); err != nil {
		t.Fatal(err)
	}
	if ud := r.fake.Instances()[1].UserData; len(ud) != 0 {
		t.Fatalf("user_data without keys: %q", ud)
	}
	// A key that would break out of its YAML line is refused unsent.
	before := r.fake.Count(http.MethodPost, "/v2/instances")
	bad := spec("c")
	bad.SSHKeys = []string{testKey + "\nruncmd: [rm -rf /]"}
	if _, err := r.cloud.CreateInstance(ctx, bad); !errors.Is(err, domain.ErrRefused) {
		t.Fatalf("multi-line key: %v", err)
	}
	if r.fake.Count(http.MethodPost, "/v2/instances") != before {
		t.Fatal("a bad key was sent")
	}
}

func TestStartLeavesARunningInstanceAlone(t *testing.T) {
	t.Parallel()
	r := newRig(t, vultrfake.Options{}, vultr.Config{})
	ctx := ctxFor(t)
	in, err := r.cloud.CreateInstance(ctx, spec("a"))
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(5 * time.Minute)
	if err := r.cloud.StartInstance(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if got := r.fake.Instances()[0].Restarts; got != 0 {
		t.Fatalf("start on a running instance rebooted it (%d restarts)", got)
	}
	if err := r.cloud.HaltInstance(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if err := r.cloud.StartInstance(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if got := r.fake.Instances()[0]; got.Halted || got.Restarts != 0 {
		t.Fatalf("after halt and start: %+v", got)
	}
}

func TestPendingPastTheActivationTimeoutIsAnError(t *testing.T) {
	t.Parallel()
	r := newRig(t, vultrfake.Options{ActivateAfter: time.Hour}, vultr.Config{ActivationTimeout: 20 * time.Minute, SnapshotTimeout: time.Hour})
	ctx := ctxFor(t)
	in, err := r.cloud.CreateInstance(ctx, spec("a"))
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(19 * time.Minute)
	if got, _ := r.cloud.Instance(ctx, in.ID); got.Status != domain.InstancePending {
		t.Fatalf("before the timeout: %+v", got)
	}
	r.clock.Advance(2 * time.Minute)
	got, err := r.cloud.Instance(ctx, in.ID)
	if err != nil || got.Status != domain.InstanceError || !strings.Contains(got.Error, "20m0s") {
		t.Fatalf("after the timeout: %+v (%v)", got, err)
	}
}

func TestFindPagesThroughAndPicksTheNewest(t *testing.T) {
	t.Parallel()
	r := newRig(t, vultrfake.Options{MaxPerPage: 2}, vultr.Config{})
	ctx := ctxFor(t)
	var last domain.Instance
	for range 5 { // the provider does not dedupe: five with one tag
		in, err := r.cloud.CreateInstance(ctx, spec("dup"))
		if err != nil {
			t.Fatal(err)
		}
		last = in
		r.clock.Advance(time.Second)
	}
	got, err := r.cloud.FindInstance(ctx, "dup")
	if err != nil || got.ID != last.ID {
		t.Fatalf("find: %+v (%v), want the newest %s", got, err, last.ID)
	}
	if n := r.fake.Count(http.MethodGet, "/v2/instances"); n != 3 {
		t.Fatalf("%d list pages fetched, want 3", n)
	}
}

func TestABaseURLPathIsKept(t *testing.T) {
	t.Parallel()
	r := newRig(t, vultrfake.Options{}, vultr.Config{})
	target, _ := url.Parse(r.fake.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var seen atomic.Int32
	front := httptest.NewServer(http.StripPrefix("/vultr-proxy", http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		seen.Add(1)
		proxy.ServeHTTP(w, q)
	})))
	t.Cleanup(front.Close)
	c, err := vultr.New(vultr.Config{APIKey: "fake-key-0123456789abcdef", BaseURL: front.URL + "/vultr-proxy/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(ctxFor(t)); err != nil || seen.Load() != 1 {
		t.Fatalf("check through a proxy path: %v (%d requests)", err, seen.Load())
	}
}

func TestTheRateLimiterSpacesCalls(t *testing.T) {
	t.Parallel()
	r := newRig(t, vultrfake.Options{}, vultr.Config{RequestsPerSecond: 50, Burst: 1})
	ctx := ctxFor(t)
	const n = 21
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { _ = r.cloud.Check(ctx) })
	}
	wg.Wait()
	// A token every 20 ms after the first: at least 400 ms for 21 calls,
	// however fast or slow the machine.
	if el := time.Since(start); el < 390*time.Millisecond {
		t.Fatalf("%d calls took %s at 50/s, want at least 400ms", n, el)
	}
	if c := r.cloud.Calls(); c != n {
		t.Fatalf("Calls() = %d, want %d", c, n)
	}
}

func TestUpstreamCallsPerDeploy(t *testing.T) {
	t.Parallel()
	for _, poll := range []time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second} {
		r := newRig(t, vultrfake.Options{ActivateAfter: 60 * time.Second, BootAfter: 10 * time.Second}, vultr.Config{})
		ctx := ctxFor(t)
		plans, err := r.cloud.AvailablePlans(ctx, "ams")
		if err != nil || !slices.Contains(plans, "vc2-1c-1gb") {
			t.Fatal(plans, err)
		}
		in, err := r.cloud.CreateInstance(ctx, spec("srv"))
		if err != nil {
			t.Fatal(err)
		}
		polls := 0
		for in.Status != domain.InstanceActive {
			r.clock.Advance(poll)
			polls++
			if in, err = r.cloud.Instance(ctx, in.ID); err != nil {
				t.Fatal(err)
			}
			if polls > 100 {
				t.Fatal("never active")
			}
		}
		// Vultr takes 70 s here (60 pending + 10 booting): ceil(70/poll)
		// polls, plus the availability check and the create.
		want := int64(2 + (70*time.Second+poll-1)/poll)
		if got := r.cloud.Calls(); got != want {
			t.Fatalf("poll every %s: %d upstream calls, want %d", poll, got, want)
		}
		t.Logf("deploy from accept to ACTIVE (Vultr ready after 70s), polling every %s: %d upstream calls "+
			"(1 availability, cached 5 min per region; 1 create; %d polls)", poll, r.cloud.Calls(), polls)
	}
}

func TestTheFakeValidatesRequestsAgainstTheDocument(t *testing.T) {
	t.Parallel()
	fake := vultrfake.New(t, vultrfake.Options{APIKey: "k"})
	do := func(method, path, body string, auth bool) int {
		req, _ := http.NewRequest(method, strings.TrimSuffix(fake.URL, "/")+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.Header.Set("Authorization", "Bearer k")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	// The document says plan is a string and region and plan are required.
	if st := do("POST", "/v2/instances", `{"region":"ams","plan":7}`, true); st != 400 {
		t.Fatalf("plan as a number: %d", st)
	}
	if st := do("POST", "/v2/instances", `{"region":"ams"}`, true); st != 400 {
		t.Fatalf("no plan: %d", st)
	}
	if st := do("GET", "/v2/instances?per_page=many", "", true); st != 400 {
		t.Fatalf("per_page not an integer: %d", st)
	}
	if st := do("GET", "/v2/no-such-thing", "", true); st != 404 {
		t.Fatalf("undocumented path: %d", st)
	}
	if v := fake.TakeViolations(); len(v) != 4 {
		t.Fatalf("violations %d, want 4:\n%s", len(v), strings.Join(v, "\n"))
	}
	// No key or a wrong one is a 401, not a violation; availability needs
	// no key.
	if st := do("GET", "/v2/account", "", false); st != 401 {
		t.Fatalf("no key: %d", st)
	}
	if st := do("GET", "/v2/regions/ams/availability", "", false); st != 200 {
		t.Fatalf("availability without a key: %d", st)
	}
	if st := do("POST", "/v2/instances", `{"region":"ams","plan":"vc2-1c-1gb","os_id":2284,"user_data":"`+
		base64.StdEncoding.EncodeToString([]byte("#cloud-config\n"))+`"}`, true); st != 202 {
		t.Fatalf("a valid create: %d", st)
	}
	if v := fake.TakeViolations(); len(v) != 0 {
		t.Fatalf("violations: %s", strings.Join(v, "\n"))
	}
}

func TestAReadThatTimesOutIsRetried(t *testing.T) {
	t.Parallel()
	r := newRig(t, vultrfake.Options{}, vultr.Config{RequestTimeout: 2 * time.Second})
	ctx := ctxFor(t)
	in, err := r.cloud.CreateInstance(ctx, spec("a"))
	if err != nil {
		t.Fatal(err)
	}
	r.fake.Inject(vultrfake.Fault{Method: http.MethodGet, Path: "/v2/instances/" + in.ID, Hang: true})
	if _, err := r.cloud.Instance(ctx, in.ID); err != nil {
		t.Fatalf("get after one attempt timed out: %v", err)
	}
	if n := r.fake.Count(http.MethodGet, "/v2/instances/"+in.ID); n != 2 {
		t.Fatalf("%d GETs, want 2", n)
	}
}

func TestALostSnapshotAnswerIsFoundByTag(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	r := newRig(t, vultrfake.Options{}, vultr.Config{OnCall: func(vultr.Call) { calls.Add(1) }})
	ctx := ctxFor(t)
	in, err := r.cloud.CreateInstance(ctx, spec("a"))
	if err != nil {
		t.Fatal(err)
	}
	r.clock.Advance(5 * time.Minute)
	r.fake.Inject(vultrfake.Fault{Method: http.MethodPost, Path: "/v2/snapshots", After: true, Status: 500})
	if _, err := r.cloud.CreateSnapshot(ctx, in.ID, "backup-1"); !unknownOutcome(err) {
		t.Fatalf("snapshot with a lost answer: %v", err)
	}
	snap, err := r.cloud.FindSnapshot(ctx, "backup-1")
	if err != nil || snap.Status != domain.SnapshotPending || snap.Tag != "backup-1" {
		t.Fatalf("find: %+v (%v)", snap, err)
	}
	if n := len(r.fake.Snapshots()); n != 1 || r.fake.Count(http.MethodPost, "/v2/snapshots") != 1 {
		t.Fatalf("%d snapshots, want 1 from 1 POST", n)
	}
	if calls.Load() != r.cloud.Calls() {
		t.Fatalf("OnCall saw %d calls, Calls() says %d", calls.Load(), r.cloud.Calls())
	}
}
