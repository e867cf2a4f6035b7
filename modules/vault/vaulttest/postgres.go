package vaulttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PostgresBinEnv names PostgreSQL's bin directory (initdb, pg_ctl, psql).
// The Makefile sets it from scripts/postgres.sh, which installs Debian's
// postgresql package when it is missing.
const PostgresBinEnv = "SIDECAR_POSTGRES_BINDIR"

// Postgres is one real PostgreSQL server, made with initdb and started with
// pg_ctl on 127.0.0.1 and a free port (as the postgres user when the test
// runs as root: PostgreSQL refuses root), stopped by the test. Every login,
// the superuser's included, needs a password (scram-sha-256).
type Postgres struct {
	// Port is the TCP port on 127.0.0.1.
	Port int
	// User and Password are the superuser's.
	User, Password string

	bindir, dir string
	cred        *syscall.Credential
}

// StartPostgres starts a PostgreSQL server for this test.
func StartPostgres(tb testing.TB) *Postgres {
	tb.Helper()
	p, err := startPostgres()
	if err != nil {
		tb.Fatalf("vaulttest: postgres: %v", err)
	}
	tb.Cleanup(p.stop)
	return p
}

func startPostgres() (*Postgres, error) {
	bindir, err := postgresBindir()
	if err != nil {
		return nil, err
	}
	p := &Postgres{User: "postgres", Password: randomHex(12), bindir: bindir}
	if os.Geteuid() == 0 {
		if p.cred, err = postgresUser(); err != nil {
			return nil, err
		}
	}
	// Not t.TempDir: its parents are root-only, and the server runs as postgres.
	if p.dir, err = os.MkdirTemp("", "pgtest-*"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(p.dir)
		}
	}()
	pwfile := filepath.Join(p.dir, "pw")
	if err := os.WriteFile(pwfile, []byte(p.Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(p.dir, "sock"), 0o700); err != nil {
		return nil, err
	}
	if p.cred != nil {
		for _, f := range []string{p.dir, pwfile, filepath.Join(p.dir, "sock")} {
			if err := os.Chown(f, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
				return nil, err
			}
		}
	}
	if out, err := p.server("initdb", "-D", p.data(), "-U", p.User, "--pwfile", pwfile,
		"--auth", "scram-sha-256", "--locale", "C", "-E", "UTF8", "--no-sync", "--no-instructions").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ { // a free port can be taken before pg_ctl binds it
		if p.Port, err = freePort(); err != nil {
			return nil, err
		}
		opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c max_connections=200",
			p.Port, filepath.Join(p.dir, "sock"))
		out, err := p.server("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "log"), "-w", "-t", "120", "-o", opts, "start").CombinedOutput()
		if err == nil {
			ok = true
			return p, nil
		}
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		lastErr = fmt.Errorf("pg_ctl start: %w: %s%s", err, out, log)
	}
	return nil, lastErr
}

func (p *Postgres) data() string { return filepath.Join(p.dir, "data") }

// server runs one of PostgreSQL's server programs as the server's user.
func (p *Postgres) server(name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(context.Background(), filepath.Join(p.bindir, name), args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	return cmd
}

func (p *Postgres) stop() {
	_ = p.server("pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "stop").Run()
	_ = os.RemoveAll(p.dir)
}

// Psql runs one SQL command with the real psql client over TCP, logging in
// as user with password, and returns its unaligned, tuples-only output.
func (p *Postgres) Psql(ctx context.Context, user, password, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bindir, "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-U", user, "-d", "postgres", "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10", "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("psql as %s: %w: %s", user, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}

// Query runs sql as the superuser and fails the test on an error.
func (p *Postgres) Query(tb testing.TB, sql string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := p.Psql(ctx, p.User, p.Password, sql)
	if err != nil {
		tb.Fatalf("vaulttest: %v", err)
	}
	return out
}

// ConfigurePostgres points the database engine's connection name at pg
// (database/config/NAME with Vault's PostgreSQL plugin, as the superuser).
func (s *Server) ConfigurePostgres(tb testing.TB, name string, pg *Postgres) {
	tb.Helper()
	s.Write(tb, "database/config/"+name, map[string]any{
		"plugin_name":       "postgresql-database-plugin",
		"connection_url":    fmt.Sprintf("postgresql://{{username}}:{{password}}@127.0.0.1:%d/postgres?sslmode=disable", pg.Port),
		"username":          pg.User,
		"password":          pg.Password,
		"allowed_roles":     "*",
		"verify_connection": true,
	})
}

var (
	pgBindirOnce sync.Once
	pgBindir     string
	pgBindirErr  error
)

// postgresBindir is $SIDECAR_POSTGRES_BINDIR, else scripts/postgres.sh's
// answer (which installs PostgreSQL when it can, and says what to install
// when it cannot).
func postgresBindir() (string, error) {
	pgBindirOnce.Do(func() {
		if d := os.Getenv(PostgresBinEnv); d != "" {
			pgBindir = d
			return
		}
		root, err := repoRoot()
		if err != nil {
			pgBindirErr = err
			return
		}
		var stderr bytes.Buffer
		cmd := exec.CommandContext(context.Background(), "bash", filepath.Join(root, "scripts", "postgres.sh"))
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			pgBindirErr = fmt.Errorf("scripts/postgres.sh: %w: %s", err, strings.TrimSpace(stderr.String()))
			return
		}
		pgBindir = strings.TrimSpace(string(out))
	})
	if pgBindirErr != nil {
		return "", pgBindirErr
	}
	if _, err := os.Stat(filepath.Join(pgBindir, "initdb")); err != nil {
		return "", fmt.Errorf("%s=%s: %w", PostgresBinEnv, pgBindir, err)
	}
	return pgBindir, nil
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres user (Debian's postgresql package makes it): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
