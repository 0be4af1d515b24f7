// Package pgtemp owns throwaway PostgreSQL servers for tests and development:
// it finds a server that is already running (Locate), or initialises and runs
// a private cluster in a temporary directory from the installed PostgreSQL
// binaries (Start) and removes it again (Cluster.Stop).
//
// A cluster started here trusts every local connection, runs with fsync off
// and is meant to live only as long as the process that started it. If that
// process dies without calling Stop, the server keeps running and its
// directory (under os.TempDir, named pgtemp-*) stays behind.
package pgtemp

import (
	"bytes"
	"context"
	"database/sql"
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
	"syscall"
	"time"

	_ "github.com/lib/pq" // registers the "postgres" driver for Locate's ping
)

// DefaultURL is the server Locate tries when $DATABASE_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ErrNoBinaries is returned (wrapped) by Start when initdb or pg_ctl cannot
// be found.
var ErrNoBinaries = errors.New("pgtemp: PostgreSQL server binaries not found")

// Cluster is a running throwaway PostgreSQL server in a temp dir.
type Cluster struct {
	// URL connects to the "postgres" database as the superuser "postgres":
	// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
	URL string
	// Port is the loopback TCP port the server listens on.
	Port int
	// Dir is the temporary directory holding the data directory (Dir/data),
	// the server log (Dir/server.log) and the Unix socket.
	Dir string

	binDir string
	cred   *syscall.Credential // non-nil when commands run as another user
}

// Locate returns a usable server URL: $DATABASE_URL if set; else DefaultURL
// if a server answers there within 2 seconds; else ("", nil), meaning the
// caller should Start one.
func Locate(ctx context.Context) (string, error) {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if ping(ctx, DefaultURL) == nil {
		return DefaultURL, nil
	}
	return "", nil
}

func ping(ctx context.Context, dsn string) error {
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.PingContext(ctx)
}

// BinDir returns the directory holding initdb and pg_ctl: the highest
// version under /usr/lib/postgresql/*/bin (Debian layout), else the
// directory of initdb found on $PATH.
func BinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("%w: need initdb and pg_ctl in /usr/lib/postgresql/<version>/bin or on $PATH (Debian: apt-get install postgresql)", ErrNoBinaries)
}

// pgVersion turns /usr/lib/postgresql/15/bin into 15 (and 9.6 into 9.6).
func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Start initialises a cluster in a new temporary directory (trust
// authentication, superuser "postgres", no fsync) and starts it on a free
// loopback port, waiting until it accepts connections. When the process runs
// as root, initdb and pg_ctl run as the "postgres" OS user, which then owns
// the directory. ctx bounds the start-up only; the server runs until Stop.
func Start(ctx context.Context) (*Cluster, error) {
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{binDir: binDir}

	var uid, gid = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("pgtemp: running as root, and PostgreSQL refuses to run as root: need the OS user \"postgres\": %w", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}

	c.Dir, err = os.MkdirTemp("", "pgtemp-")
	if err != nil {
		return nil, fmt.Errorf("pgtemp: %w", err)
	}
	if c.cred != nil {
		if err := os.Chown(c.Dir, uid, gid); err != nil {
			os.RemoveAll(c.Dir)
			return nil, fmt.Errorf("pgtemp: chown %s to postgres: %w", c.Dir, err)
		}
	}

	if _, err := c.run(ctx, "initdb", "-D", c.dataDir(), "-U", "postgres", "-A", "trust",
		"--no-sync", "-E", "UTF8", "--no-locale"); err != nil {
		os.RemoveAll(c.Dir)
		return nil, err
	}

	// The port is picked by binding :0 and releasing it, so another process
	// can take it before the server binds; retry with a fresh port then.
	for attempt := 1; ; attempt++ {
		c.Port, err = freePort()
		if err == nil {
			err = c.start(ctx)
		}
		if err == nil {
			break
		}
		if attempt == 3 || ctx.Err() != nil {
			os.RemoveAll(c.Dir)
			return nil, err
		}
	}
	c.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
		c.Port, c.Dir)
	_, err := c.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", c.dataDir(),
		"-l", filepath.Join(c.Dir, "server.log"), "-o", opts)
	if err != nil {
		if log, rerr := os.ReadFile(filepath.Join(c.Dir, "server.log")); rerr == nil {
			err = fmt.Errorf("%w\nserver.log:\n%s", err, lastLines(log, 20))
		}
	}
	return err
}

// Pause stops the server, keeping its data, so a test can see what its
// clients do while the database is away; Resume starts it again on the
// same port.
func (c *Cluster) Pause(ctx context.Context) error {
	_, err := c.run(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", c.dataDir())
	return err
}

// Resume starts a paused server again.
func (c *Cluster) Resume(ctx context.Context) error { return c.start(ctx) }

// Stop shuts the server down (pg_ctl stop -m fast) and removes its
// directory.
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := c.run(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", c.dataDir())
	if rerr := os.RemoveAll(c.Dir); err == nil && rerr != nil {
		err = fmt.Errorf("pgtemp: %w", rerr)
	}
	return err
}

func (c *Cluster) dataDir() string { return filepath.Join(c.Dir, "data") }

// run runs one of the PostgreSQL tools (as the postgres user if needed) and
// returns its combined output; a failure's error includes that output.
func (c *Cluster) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, tool), args...)
	cmd.Dir = c.Dir // the postgres user may not be able to enter our working directory
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// pg_ctl start leaves the server running; should it keep our pipe open,
	// do not wait for it beyond this.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("pgtemp: %s %s: %w\n%s", tool, strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtemp: finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) []byte {
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return bytes.Join(lines, []byte("\n"))
}

// ConnectURL returns serverURL with its database name replaced by dbname.
// serverURL must be a postgres:// or postgresql:// URL.
func ConnectURL(serverURL, dbname string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("pgtemp: %q is not a postgres:// URL", serverURL)
	}
	u.Path = "/" + dbname
	u.RawPath = ""
	return u.String(), nil
}
