// Package pgtest gives tests a real, throwaway PostgreSQL: never a mock.
//
// Start returns the URL of a fresh, empty database for one test. The server
// behind it is, in order of preference:
//
//   - the one CRYPTOVPS_TEST_DATABASE_URL points at (the user in it must be
//     allowed to CREATE DATABASE);
//   - a cluster this package creates with initdb in a temporary directory and
//     runs with pg_ctl on a free loopback port, as the "postgres" OS user when
//     the tests run as root (PostgreSQL refuses to run as root). It is found
//     on PATH or under /usr/lib/postgresql/*/bin (where Debian puts it).
//
// One cluster serves a whole test binary when its TestMain calls Main, which
// stops it after the last test; without Main, each Start gets a cluster of
// its own, stopped when the test ends. StartCluster always makes a cluster of
// its own, so a test can stop and start the server under the code it tests.
//
// Without PostgreSQL the tests that need it skip with a message saying what
// to install, except under CI=true, where a skip would hide a broken setup
// and the test fails instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points the tests at an existing server.
const EnvURL = "CRYPTOVPS_TEST_DATABASE_URL"

var (
	mainMu     sync.Mutex
	underMain  bool
	shared     *Cluster
	sharedErr  error
	sharedOnce sync.Once
)

// Main runs the tests of m with one cluster shared by every Start, and stops
// it afterwards. Use it as:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	mainMu.Lock()
	underMain = true
	mainMu.Unlock()
	code := m.Run()
	mainMu.Lock()
	defer mainMu.Unlock()
	if shared != nil {
		if err := shared.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: stop the shared cluster:", err)
		}
		shared.remove()
	}
	return code
}

// Start returns the URL of a new, empty database for t, dropped (best
// effort) when t ends. It skips t when no PostgreSQL is available, or fails
// it under CI=true.
func Start(t testing.TB) string {
	t.Helper()
	if base := os.Getenv(EnvURL); base != "" {
		return createDatabase(t, base)
	}
	mainMu.Lock()
	shareIt := underMain
	mainMu.Unlock()
	if !shareIt {
		return StartCluster(t).NewDatabase(t)
	}
	sharedOnce.Do(func() {
		c, err := newCluster(Options{})
		mainMu.Lock()
		shared, sharedErr = c, err
		mainMu.Unlock()
	})
	if sharedErr != nil {
		unavailable(t, sharedErr)
	}
	return shared.NewDatabase(t)
}

// Options tune a cluster.
type Options struct {
	// Durable keeps fsync and synchronous commit on, as in production; by
	// default they are off because a throwaway cluster need not survive a
	// power cut and tests run much faster without them.
	Durable bool
}

// Cluster is a throwaway PostgreSQL server of the tests.
type Cluster struct {
	bin  string // directory of initdb, pg_ctl, postgres
	dir  string // owned by the server's OS user: data/, server.log, the socket
	port int
	opts Options
	cred *syscall.Credential // nil when not running as root

	mu      sync.Mutex
	running bool
}

// StartCluster creates and starts a cluster of t's own, stopped and deleted
// when t ends. It ignores CRYPTOVPS_TEST_DATABASE_URL: a test that stops the
// server must not stop a shared one.
func StartCluster(t testing.TB, opts ...Options) *Cluster {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	c, err := newCluster(o)
	if err != nil {
		unavailable(t, err)
	}
	t.Cleanup(func() {
		if err := c.stop(); err != nil {
			t.Errorf("pgtest: stop cluster: %v", err)
		}
		c.remove()
	})
	return c
}

// errNoPostgres marks the absence of a PostgreSQL installation, as opposed
// to one that failed to start.
var errNoPostgres = errors.New("no PostgreSQL server installation found")

func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("pgtest: %v. Install the PostgreSQL server (Debian: apt-get install postgresql) "+
		"or set %s to a server where the user may CREATE DATABASE", err, EnvURL)
	if os.Getenv("CI") == "true" || !errors.Is(err, errNoPostgres) {
		// In CI a skip would pass silently; and an installation that is
		// there but does not start is a failure wherever it happens.
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// findBin returns the directory holding initdb, pg_ctl and postgres.
func findBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	// Debian keeps the server binaries off PATH, one directory per major
	// version: take the newest.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errNoPostgres
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// ownerFile names, in a cluster's directory, the pid of the test process
// that owns it.
const ownerFile = "owner.pid"

var sweepOnce sync.Once

// sweepOrphans stops and deletes the clusters of test processes that died
// without cleaning up (a test binary killed by its timeout runs no cleanup,
// and pg_ctl's server outlives it). Clusters of live processes, such as
// other packages' tests running in parallel, are left alone.
func sweepOrphans(bin string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "cryptovps-pg-*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // being created, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // its owner still runs
		}
		c := &Cluster{bin: bin, dir: dir, running: true}
		if st, err := os.Stat(dir); err == nil && os.Geteuid() == 0 {
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid != 0 {
				c.cred = &syscall.Credential{Uid: sys.Uid, Gid: sys.Gid}
			}
		}
		_ = c.command("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "-t", "30", "stop").Run()
		c.remove()
	}
}

func newCluster(opts Options) (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	sweepOnce.Do(func() { sweepOrphans(bin) })
	c := &Cluster{bin: bin, opts: opts}
	// The directory is created under /tmp (not t.TempDir, whose parents are
	// private to root) and handed to the server's user; the socket lives
	// there too, well under the 107-byte limit of a socket path.
	c.dir, err = os.MkdirTemp("", "cryptovps-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		c.remove()
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			c.remove()
			return nil, fmt.Errorf("%w: running as root needs the \"postgres\" OS user to run the server as: %v", errNoPostgres, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(c.dir, uid, gid); err != nil {
			c.remove()
			return nil, err
		}
	}
	out, err := c.command("initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync").CombinedOutput()
	if err != nil {
		c.remove()
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// A free port can be taken by someone else between asking and binding:
	// try a few.
	for attempt := 0; ; attempt++ {
		c.port, err = freePort()
		if err == nil {
			err = c.Start()
		}
		if err == nil {
			return c, nil
		}
		if attempt == 4 {
			c.remove()
			return nil, err
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// command runs one of the server's programs as the server's OS user.
func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

// Start starts the server (again) and waits until it accepts connections.
func (c *Cluster) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return nil
	}
	settings := []string{
		"-p " + strconv.Itoa(c.port),
		"-c listen_addresses=127.0.0.1",
		"-c unix_socket_directories=" + c.dir,
		"-c max_connections=200",
		"-c shared_buffers=128MB",
	}
	if !c.opts.Durable {
		settings = append(settings, "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off")
	}
	out, err := c.command("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"),
		"-w", "-t", "60", "-o", strings.Join(settings, " "), "start").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, c.serverLog())
	}
	c.running = true
	return nil
}

// Stop stops the server (fast shutdown: open sessions are ended), as an
// outage would. Start brings it back with its data.
func (c *Cluster) Stop() error {
	return c.stop()
}

func (c *Cluster) stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return nil
	}
	out, err := c.command("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	c.running = false
	return nil
}

func (c *Cluster) remove() {
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

func (c *Cluster) serverLog() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// URL is the URL of database db on the cluster.
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// NewDatabase creates an empty database for t and returns its URL.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	return createDatabase(t, c.URL("postgres"))
}

// createDatabase creates a database with a unique name on the server of
// base and returns base pointing at it; the database is dropped when t ends.
func createDatabase(t testing.TB, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: %s is not a URL: %v", EnvURL, err)
	}
	raw := make([]byte, 6)
	_, _ = rand.Read(raw)
	name := "cryptovps_test_" + hex.EncodeToString(raw)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", u.Redacted(), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database on %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return // the server is gone (a stopped cluster): nothing to drop
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u.Path = "/" + name
	return u.String()
}
