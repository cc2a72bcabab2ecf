// Package vultrfake is an in-process fake of the Vultr API v2 for tests of
// the Vultr adapter: an httptest server that validates every request it
// receives and every answer it sends against Vultr's published OpenAPI
// document (embedded, see Spec), and simulates what the adapter has to cope
// with: instances pending then active over (fake) time, halt and start,
// tags, snapshots pending then complete, plans sold out per region, quotas,
// 429s, 5xx, timeouts, and answers lost after the work was done.
//
// A request that does not match the document gets the 400 Vultr would
// give and is recorded as a violation; so is an answer of the fake's own
// that does not match (a bug in the fake). New fails the test at cleanup if
// any violation is left (TakeViolations collects them first).
package vultrfake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/cryptovps/cryptovps/domain"
)

// Options shape the fake. Zero values get the defaults in parentheses.
type Options struct {
	// APIKey is the only key accepted ("test-key").
	APIKey string
	// Clock is the fake's time (a new Clock at 2026-01-01).
	Clock domain.Clock
	// ActivateAfter is how long an instance stays pending (60s); BootAfter
	// how long it is then active but still installingbooting (10s).
	// SnapshotAfter is how long a snapshot stays pending (5m). Negative:
	// at once.
	ActivateAfter time.Duration
	BootAfter     time.Duration
	SnapshotAfter time.Duration
	// Regions and Plans are what exists (a few real ids: ams, ewr, fra,
	// sjc; vc2-1c-1gb ... vc2-6c-16gb). OSIDs are the accepted os_id
	// values (2284, 2136, 1743).
	Regions []string
	Plans   []string
	OSIDs   []int
	// MaxPerPage caps list pages below Vultr's 500, to exercise paging.
	MaxPerPage int
	// InstanceLimit refuses creates beyond this many instances (no limit).
	InstanceLimit int
}

// Fault is a scripted failure for the next Times requests matching Method
// and Path.
type Fault struct {
	Method string // "" matches any
	Path   string // a path prefix ("/v2/instances"); "" matches any
	// Status answers this status (429, 500, 503...) with an error body.
	Status int
	// RetryAfter, in seconds, is sent with the status.
	RetryAfter int
	// Drop closes the connection without an answer; Hang sends no answer
	// until the client gives up.
	Drop bool
	Hang bool
	// After does the work first, then fails as above: the lost answer.
	After bool
	// Times is how many matching requests it hits (1).
	Times int
}

// Request is one request the fake received, as it answered it.
type Request struct {
	Method string
	Path   string
	Query  string
	Status int // 0 when dropped or hung
	At     time.Time
}

// Instance is the fake's record of an instance.
type Instance struct {
	ID        string
	Region    string
	Plan      string
	Label     string
	Hostname  string
	Tags      []string
	OSID      int
	Snapshot  string
	UserData  []byte // decoded
	Password  string
	MainIP    string
	Created   time.Time
	Halted    bool
	Restarts  int
	SSHKeyIDs []string
}

// Snapshot is the fake's record of a snapshot.
type Snapshot struct {
	ID          string
	Instance    string
	Description string
	Created     time.Time
}

// Server is the fake Vultr API.
type Server struct {
	URL string // base URL for the adapter: http://127.0.0.1:port/

	t     testing.TB
	opts  Options
	clock domain.Clock
	v     *validator
	http  *httptest.Server
	stop  chan struct{}

	mu         sync.Mutex
	instances  []*Instance
	snapshots  []*Snapshot
	soldOut    map[[2]string]bool
	faults     []*Fault
	requests   []Request
	violations []string
	nextIP     uint32
}

// New starts a fake on a local port and stops it when the test ends,
// failing the test then if violations were recorded and not taken.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	v, err := loadValidator()
	if err != nil {
		t.Fatal(err)
	}
	if opts.APIKey == "" {
		opts.APIKey = "test-key"
	}
	if opts.Clock == nil {
		opts.Clock = NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	if opts.ActivateAfter == 0 {
		opts.ActivateAfter = time.Minute
	}
	if opts.BootAfter == 0 {
		opts.BootAfter = 10 * time.Second
	}
	if opts.SnapshotAfter == 0 {
		opts.SnapshotAfter = 5 * time.Minute
	}
	if opts.Regions == nil {
		opts.Regions = []string{"ams", "ewr", "fra", "sjc"}
	}
	if opts.Plans == nil {
		opts.Plans = []string{"vc2-1c-1gb", "vc2-1c-2gb", "vc2-2c-4gb", "vc2-4c-8gb", "vc2-6c-16gb"}
	}
	if opts.OSIDs == nil {
		opts.OSIDs = []int{2284, 2136, 1743}
	}
	if opts.MaxPerPage <= 0 || opts.MaxPerPage > 500 {
		opts.MaxPerPage = 500
	}
	s := &Server{t: t, opts: opts, clock: opts.Clock, v: v, stop: make(chan struct{}), soldOut: map[[2]string]bool{}}
	s.http = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.http.URL + "/"
	t.Cleanup(func() {
		close(s.stop)
		s.http.CloseClientConnections()
		s.http.Close()
		for _, v := range s.TakeViolations() {
			t.Errorf("vultrfake: %s", v)
		}
	})
	return s
}

// Clock is a fake clock that moves only when told.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Inject scripts a failure.
func (s *Server) Inject(f Fault) {
	if f.Times <= 0 {
		f.Times = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// SetSoldOut makes a plan unavailable in a region (or available again).
func (s *Server) SetSoldOut(region, plan string, soldOut bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if soldOut {
		s.soldOut[[2]string{region, plan}] = true
	} else {
		delete(s.soldOut, [2]string{region, plan})
	}
}

// Requests lists the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count counts the requests received with method to exactly path (query
// aside); "" matches any.
func (s *Server) Count(method, path string) int {
	n := 0
	for _, r := range s.Requests() {
		if (method == "" || r.Method == method) && (path == "" || r.Path == path) {
			n++
		}
	}
	return n
}

// Instances lists the instances that exist.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Instance, len(s.instances))
	for i, in := range s.instances {
		out[i] = *in
	}
	return out
}

// Snapshots lists the snapshots that exist.
func (s *Server) Snapshots() []Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Snapshot, len(s.snapshots))
	for i, sn := range s.snapshots {
		out[i] = *sn
	}
	return out
}

// TakeViolations returns the violations recorded so far and forgets them.
func (s *Server) TakeViolations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.violations
	s.violations = nil
	return v
}

func (s *Server) violation(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

// answer is a handler's reply before it is validated and sent.
type answer struct {
	status int
	body   any // marshalled as JSON; nil: no body
}

func apiErr(status int, msg string) answer {
	return answer{status, map[string]any{"error": msg, "status": status}}
}

func (s *Server) takeFault(r *http.Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if (f.Method == "" || f.Method == r.Method) && strings.HasPrefix(r.URL.Path, f.Path) {
			f.Times--
			if f.Times <= 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			c := *f
			return &c
		}
	}
	return nil
}

func (s *Server) record(r *http.Request, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: status, At: time.Now()})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.record(r, 0)
		return
	}
	route, params, err := s.v.route(r)
	if err != nil {
		s.violation("%s %s: no documented operation: %v", r.Method, r.URL.Path, err)
		s.send(w, r, nil, apiErr(http.StatusNotFound, "Invalid API route."))
		return
	}
	in, authFailed, err := s.v.checkRequest(r, body, route, params)
	switch {
	case err != nil:
		s.violation("%s %s: the request does not match Vultr's document: %v\n  body: %s", r.Method, r.URL.RequestURI(), err, body)
		s.send(w, r, in, apiErr(http.StatusBadRequest, "Invalid request: "+firstLine(err.Error())))
		return
	case authFailed:
		s.send(w, r, in, apiErr(http.StatusUnauthorized, "Invalid API token."))
		return
	}
	if s.v.needsAuth(route) {
		if r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
			s.send(w, r, in, apiErr(http.StatusUnauthorized, "Invalid API token."))
			return
		}
	}
	f := s.takeFault(r)
	if f != nil && !f.After {
		s.fail(w, r, in, f)
		return
	}
	a := s.handle(r, body, params)
	if f != nil {
		s.fail(w, r, in, f)
		return
	}
	s.send(w, r, in, a)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// fail carries out a fault.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, in *openapi3filter.RequestValidationInput, f *Fault) {
	switch {
	case f.Hang:
		s.record(r, 0)
		select {
		case <-r.Context().Done():
		case <-s.stop:
		}
	case f.Drop:
		s.record(r, 0)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	default:
		if f.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
		}
		msg := "Internal server error."
		if f.Status == http.StatusTooManyRequests {
			msg = "Rate limit reached - please try your request again later."
		}
		s.send(w, r, in, apiErr(f.Status, msg))
	}
}

// send validates the answer against the document and writes it.
func (s *Server) send(w http.ResponseWriter, r *http.Request, in *openapi3filter.RequestValidationInput, a answer) {
	var body []byte
	if a.body != nil {
		b, err := json.Marshal(a.body)
		if err != nil {
			s.violation("%s %s: the fake cannot marshal its answer: %v", r.Method, r.URL.Path, err)
		}
		body = b
		w.Header().Set("Content-Type", "application/json")
	}
	if in != nil {
		if err := s.v.checkResponse(in, a.status, w.Header(), body); err != nil {
			s.violation("%s %s -> %d: the fake's answer does not match Vultr's document: %v\n  body: %s", r.Method, r.URL.RequestURI(), a.status, err, body)
		}
	}
	s.record(r, a.status)
	if body != nil {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(body)
}

// handle does the work of a valid, authenticated request.
func (s *Server) handle(r *http.Request, body []byte, params map[string]string) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := strings.TrimPrefix(r.URL.Path, "/v2")
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet && path == "/account":
		return answer{200, map[string]any{"account": map[string]any{
			"name": "Fake Account", "email": "ops@example.com", "acls": []string{},
			"balance": -10.5, "pending_charges": 1.25, "last_payment_date": "2026-01-01T00:00:00+00:00", "last_payment_amount": -20.0}}}
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/regions/") && strings.HasSuffix(path, "/availability"):
		region := params["region-id"]
		if !slices.Contains(s.opts.Regions, region) {
			return apiErr(http.StatusNotFound, "Invalid region.")
		}
		plans := []string{}
		for _, p := range s.opts.Plans {
			if !s.soldOut[[2]string{region, p}] {
				plans = append(plans, p)
			}
		}
		return answer{200, map[string]any{"available_plans": plans}}
	case path == "/instances" && r.Method == http.MethodGet:
		return s.listInstances(q)
	case path == "/instances" && r.Method == http.MethodPost:
		return s.createInstance(body)
	case path == "/snapshots" && r.Method == http.MethodGet:
		return s.listSnapshots(q)
	case path == "/snapshots" && r.Method == http.MethodPost:
		return s.createSnapshot(body)
	}
	if id, ok := params["instance-id"]; ok {
		i := slices.IndexFunc(s.instances, func(in *Instance) bool { return in.ID == id })
		if i < 0 {
			return apiErr(http.StatusNotFound, "Invalid instance-id.")
		}
		in := s.instances[i]
		switch {
		case r.Method == http.MethodGet && path == "/instances/"+id:
			return answer{200, map[string]any{"instance": s.instanceJSON(in, false)}}
		case r.Method == http.MethodDelete && path == "/instances/"+id:
			s.instances = slices.Delete(s.instances, i, i+1)
			return answer{status: 204}
		case r.Method == http.MethodPost && path == "/instances/"+id+"/halt":
			in.Halted = true
			return answer{status: 204}
		case r.Method == http.MethodPost && path == "/instances/"+id+"/start":
			if !in.Halted {
				in.Restarts++
			}
			in.Halted = false
			return answer{status: 204}
		}
	}
	if id, ok := params["snapshot-id"]; ok {
		i := slices.IndexFunc(s.snapshots, func(sn *Snapshot) bool { return sn.ID == id })
		if i < 0 {
			return apiErr(http.StatusNotFound, "Invalid snapshot-id.")
		}
		switch r.Method {
		case http.MethodGet:
			return answer{200, map[string]any{"snapshot": s.snapshotJSON(s.snapshots[i])}}
		case http.MethodDelete:
			s.snapshots = slices.Delete(s.snapshots, i, i+1)
			return answer{status: 204}
		}
	}
	s.violations = append(s.violations, fmt.Sprintf("%s %s: documented, but not simulated by vultrfake", r.Method, r.URL.Path))
	return apiErr(http.StatusNotFound, "Not simulated by vultrfake.")
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func vultrTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05+00:00") }

func (s *Server) createInstance(body []byte) answer {
	var req struct {
		Region     string   `json:"region"`
		Plan       string   `json:"plan"`
		OSID       int      `json:"os_id"`
		SnapshotID string   `json:"snapshot_id"`
		ISOID      string   `json:"iso_id"`
		AppID      int      `json:"app_id"`
		ImageID    string   `json:"image_id"`
		Label      string   `json:"label"`
		Hostname   string   `json:"hostname"`
		Tags       []string `json:"tags"`
		Tag        string   `json:"tag"`
		UserData   string   `json:"user_data"`
		SSHKeyIDs  []string `json:"sshkey_id"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return apiErr(400, "Invalid JSON.")
	}
	now := s.clock.Now()
	switch {
	case !slices.Contains(s.opts.Regions, req.Region):
		return apiErr(400, "Invalid region.")
	case !slices.Contains(s.opts.Plans, req.Plan):
		return apiErr(400, "Invalid plan.")
	case s.soldOut[[2]string{req.Region, req.Plan}]:
		return apiErr(400, "Plan "+req.Plan+" is currently not available in the selected location ("+req.Region+").")
	case req.OSID == 0 && req.SnapshotID == "" && req.ISOID == "" && req.AppID == 0 && req.ImageID == "":
		return apiErr(400, "You must choose an operating system, application, ISO or snapshot.")
	case req.OSID != 0 && !slices.Contains(s.opts.OSIDs, req.OSID):
		return apiErr(400, "Invalid operating system.")
	case s.opts.InstanceLimit > 0 && len(s.instances) >= s.opts.InstanceLimit:
		return apiErr(400, "Server add failed: You have reached the maximum number of active instances for this account.")
	}
	if req.SnapshotID != "" {
		i := slices.IndexFunc(s.snapshots, func(sn *Snapshot) bool { return sn.ID == req.SnapshotID })
		if i < 0 || !s.snapshotComplete(s.snapshots[i], now) {
			return apiErr(400, "Invalid snapshot_id.")
		}
	}
	ud, err := base64.StdEncoding.DecodeString(req.UserData)
	if err != nil {
		return apiErr(400, "Invalid user_data: not base64.")
	}
	tags := slices.Clone(req.Tags)
	if req.Tag != "" {
		tags = append(tags, req.Tag)
	}
	if tags == nil {
		tags = []string{}
	}
	s.nextIP++
	ip := net.IPv4(203, 0, 113, byte(s.nextIP%250+1)) // TEST-NET-3, documentation only
	in := &Instance{ID: newID(), Region: req.Region, Plan: req.Plan, Label: req.Label, Hostname: req.Hostname,
		Tags: tags, OSID: req.OSID, Snapshot: req.SnapshotID, UserData: ud, Password: rand.Text()[:16],
		MainIP: ip.String(), Created: now, SSHKeyIDs: req.SSHKeyIDs}
	if in.Hostname == "" {
		in.Hostname = "vultr.guest"
	}
	s.instances = append(s.instances, in)
	return answer{202, map[string]any{"instance": s.instanceJSON(in, true)}}
}

// instanceJSON is Vultr's view of an instance now.
func (s *Server) instanceJSON(in *Instance, withPassword bool) map[string]any {
	age := s.clock.Now().Sub(in.Created)
	status, server, ip, power := "pending", "none", "0.0.0.0", "running"
	switch {
	case age >= s.opts.ActivateAfter+s.opts.BootAfter:
		status, server, ip = "active", "ok", in.MainIP
	case age >= s.opts.ActivateAfter:
		status, server, ip = "active", "installingbooting", in.MainIP
	}
	if in.Halted {
		power = "stopped"
	}
	m := map[string]any{
		"id": in.ID, "os": "Ubuntu 24.04 LTS x64", "ram": 1024, "disk": 25, "main_ip": ip, "vcpu_count": 1,
		"region": in.Region, "plan": in.Plan, "date_created": vultrTime(in.Created), "status": status,
		"allowed_bandwidth": 1000, "netmask_v4": "255.255.254.0", "gateway_v4": "203.0.113.1",
		"power_status": power, "server_status": server, "label": in.Label, "internal_ip": "",
		"kvm": "https://my.vultr.com/subs/vps/novnc/api.php?data=fake", "hostname": in.Hostname,
		"os_id": in.OSID, "app_id": 0, "image_id": "", "firewall_group_id": "", "features": []string{},
		"tags": in.Tags,
	}
	if withPassword {
		m["default_password"] = in.Password
	}
	return m
}

func (s *Server) listInstances(q map[string][]string) answer {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	var match []map[string]any
	for _, in := range s.instances {
		if t := get("tag"); t != "" && !slices.Contains(in.Tags, t) {
			continue
		}
		if l := get("label"); l != "" && in.Label != l {
			continue
		}
		if rg := get("region"); rg != "" && in.Region != rg {
			continue
		}
		match = append(match, s.instanceJSON(in, false))
	}
	page, meta := s.page(len(match), get("per_page"), get("cursor"))
	if page == nil {
		return apiErr(400, "Invalid cursor.")
	}
	items := []map[string]any{}
	for _, i := range page {
		items = append(items, match[i])
	}
	return answer{200, map[string]any{"instances": items, "meta": meta}}
}

// page picks the indexes of one page of n items; nil for a bad cursor.
func (s *Server) page(n int, perPage, cursor string) ([]int, map[string]any) {
	size := 100
	if p, err := strconv.Atoi(perPage); err == nil && p > 0 {
		size = min(p, 500)
	}
	size = min(size, s.opts.MaxPerPage)
	start := 0
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		off, err2 := strconv.Atoi(strings.TrimPrefix(string(b), "next:"))
		if err != nil || err2 != nil || off < 0 || off > n {
			return nil, nil
		}
		start = off
	}
	end := min(start+size, n)
	idx := []int{}
	for i := start; i < end; i++ {
		idx = append(idx, i)
	}
	next, prev := "", ""
	if end < n {
		next = base64.RawURLEncoding.EncodeToString([]byte("next:" + strconv.Itoa(end)))
	}
	if start > 0 {
		prev = base64.RawURLEncoding.EncodeToString([]byte("next:" + strconv.Itoa(max(0, start-size))))
	}
	return idx, map[string]any{"total": n, "links": map[string]any{"next": next, "prev": prev}}
}

func (s *Server) snapshotComplete(sn *Snapshot, now time.Time) bool {
	return now.Sub(sn.Created) >= s.opts.SnapshotAfter
}

func (s *Server) snapshotJSON(sn *Snapshot) map[string]any {
	status, size := "pending", 0
	if s.snapshotComplete(sn, s.clock.Now()) {
		status, size = "complete", 25<<30
	}
	return map[string]any{"id": sn.ID, "date_created": vultrTime(sn.Created), "description": sn.Description,
		"size": size, "compressed_size": size / 10, "status": status, "os_id": 2284, "app_id": 0}
}

func (s *Server) createSnapshot(body []byte) answer {
	var req struct {
		InstanceID  string `json:"instance_id"`
		Description string `json:"description"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return apiErr(400, "Invalid JSON.")
	}
	if !slices.ContainsFunc(s.instances, func(in *Instance) bool { return in.ID == req.InstanceID }) {
		return apiErr(400, "Invalid instance_id.")
	}
	sn := &Snapshot{ID: newID(), Instance: req.InstanceID, Description: req.Description, Created: s.clock.Now()}
	s.snapshots = append(s.snapshots, sn)
	return answer{201, map[string]any{"snapshot": s.snapshotJSON(sn)}}
}

func (s *Server) listSnapshots(q map[string][]string) answer {
	var match []map[string]any
	desc := ""
	if v := q["description"]; len(v) > 0 {
		desc = v[0]
	}
	for _, sn := range s.snapshots {
		if desc == "" || sn.Description == desc {
			match = append(match, s.snapshotJSON(sn))
		}
	}
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	page, meta := s.page(len(match), get("per_page"), get("cursor"))
	if page == nil {
		return apiErr(400, "Invalid cursor.")
	}
	items := []map[string]any{}
	for _, i := range page {
		items = append(items, match[i])
	}
	return answer{200, map[string]any{"snapshots": items, "meta": meta}}
}
