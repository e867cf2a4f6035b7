// Package vaulttest starts real Vault servers for integration tests.
//
// The server is scripts/devvault: Vault v1.14.0's own core and HTTP API
// (in-memory storage, KV v1/v2, AppRole, JWT and Kubernetes auth), built
// once by scripts/devvault.sh and cached outside git. Every server listens
// on 127.0.0.1 on a free port and is stopped by the test that started it.
//
// A package that wants one server for all its tests calls Main from
// TestMain and Shared from each test; a test that needs its own (to stop
// or restart it) calls Start.
package vaulttest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// BinEnv names the dev server binary, skipping the build lookup (the
// Makefile sets it).
const BinEnv = "SIDECAR_DEVVAULT_BIN"

// DBBinEnv names the database flavour's binary (the Makefile sets it).
const DBBinEnv = "SIDECAR_DEVVAULT_DB_BIN"

const startTimeout = 90 * time.Second

// Server is one running dev server.
type Server struct {
	// Addr is the server's URL (http://127.0.0.1:port).
	Addr string
	// Token is the root token.
	Token string

	dataDir string
	bin     string
	cmd     *exec.Cmd
	stderr  *lockedBuffer
	exited  chan struct{}
	mu      sync.Mutex
}

type options struct {
	persistent bool
	rootToken  string
	database   bool
}

// Option configures Start.
type Option func(*options)

// Persistent keeps the server's storage in a temporary directory, so Stop
// followed by Restart brings the same secrets, mounts and tokens back.
func Persistent() Option { return func(o *options) { o.persistent = true } }

// RootToken fixes the root token's ID instead of a random one.
func RootToken(id string) Option { return func(o *options) { o.rootToken = id } }

// Database starts the dev server flavour with the database secrets engine
// mounted at database/ and Vault's PostgreSQL plugin built in (see
// DatabaseBinary and StartPostgres).
func Database() Option { return func(o *options) { o.database = true } }

// Start starts a dev server for this test; it is stopped when the test ends.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin := ""
	if o.database {
		bin = DatabaseBinary(tb)
	} else {
		bin = Binary(tb)
	}
	s, err := start(bin, opts...)
	if err != nil {
		tb.Fatalf("vaulttest: %v", err)
	}
	tb.Cleanup(func() {
		_ = s.stop()
		if s.dataDir != "" {
			_ = os.RemoveAll(s.dataDir)
		}
	})
	return s
}

func start(bin string, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{bin: bin}
	if o.persistent {
		dir, err := os.MkdirTemp("", "devvault-*")
		if err != nil {
			return nil, err
		}
		s.dataDir = dir
	}
	args := []string{"-addr", "127.0.0.1:0"}
	if o.rootToken != "" {
		args = append(args, "-root-token", o.rootToken)
	}
	if err := s.launch(bin, args); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) launch(bin string, args []string) error {
	if s.dataDir != "" {
		args = append(args, "-data-dir", s.dataDir)
	}
	// The server outlives any one call: it stops through Stop or Cleanup.
	cmd := exec.CommandContext(context.Background(), bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	s.stderr = &lockedBuffer{}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() { // keep draining so the server never blocks on stdout
		}
	}()
	var line string
	select {
	case l, ok := <-lines:
		if !ok {
			<-exited
			return fmt.Errorf("dev server exited before it was ready: %s", s.stderr.String())
		}
		line = l
	case <-time.After(startTimeout):
		_ = cmd.Process.Kill()
		return fmt.Errorf("dev server not ready after %s: %s", startTimeout, s.stderr.String())
	}
	var banner struct {
		Addr  string `json:"addr"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(line), &banner); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("dev server banner %q: %w", line, err)
	}
	s.mu.Lock()
	s.Addr, s.Token, s.cmd, s.exited = banner.Addr, banner.Token, cmd, exited
	s.mu.Unlock()
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s). Stopping a
// stopped server does nothing.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.stop(); err != nil {
		tb.Fatalf("vaulttest: stop: %v", err)
	}
}

func (s *Server) stop() error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	return nil
}

// Restart starts a stopped Persistent server again on the same address,
// with the same data and root token.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	if s.dataDir == "" {
		tb.Fatal("vaulttest: Restart needs a Persistent server")
	}
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		tb.Fatal("vaulttest: Restart: server is still running; Stop it first")
	}
	host := strings.TrimPrefix(s.Addr, "http://")
	var err error
	for attempt := 0; attempt < 50; attempt++ { // the old socket may linger briefly
		if err = s.launch(s.bin, []string{"-addr", host}); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("vaulttest: restart on %s: %v", host, err)
}

// Client returns a root-token client for seeding and inspecting the server.
func (s *Server) Client(tb testing.TB) *api.Client {
	tb.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		tb.Fatalf("vaulttest: client: %v", err)
	}
	c.SetToken(s.Token)
	c.SetNamespace("")
	return c
}

// PutKV2 writes data to a KV v2 mount (secret/ exists) and returns the new
// version.
func (s *Server) PutKV2(tb testing.TB, mount, path string, data map[string]any) int {
	tb.Helper()
	sec, err := s.Client(tb).KVv2(mount).Put(tb.Context(), path, data)
	if err != nil {
		tb.Fatalf("vaulttest: put %s/%s: %v", mount, path, err)
	}
	return sec.VersionMetadata.Version
}

// PutKV1 writes data to a KV v1 mount (kv/ exists).
func (s *Server) PutKV1(tb testing.TB, mount, path string, data map[string]any) {
	tb.Helper()
	if err := s.Client(tb).KVv1(mount).Put(tb.Context(), path, data); err != nil {
		tb.Fatalf("vaulttest: put %s/%s: %v", mount, path, err)
	}
}

// Mount mounts a KV engine of the given version ("1" or "2") at path.
func (s *Server) Mount(tb testing.TB, path, version string) {
	tb.Helper()
	err := s.Client(tb).Sys().MountWithContext(tb.Context(), path, &api.MountInput{
		Type: "kv", Options: map[string]string{"version": version},
	})
	if err != nil {
		tb.Fatalf("vaulttest: mount %s: %v", path, err)
	}
}

// EnableAuth enables an auth method (approle, jwt, kubernetes) at path.
func (s *Server) EnableAuth(tb testing.TB, path, method string) {
	tb.Helper()
	err := s.Client(tb).Sys().EnableAuthWithOptionsWithContext(tb.Context(), path, &api.EnableAuthOptions{Type: method})
	if err != nil {
		tb.Fatalf("vaulttest: enable auth %s at %s: %v", method, path, err)
	}
}

// Write writes to any path with the root token (policies, roles, config).
func (s *Server) Write(tb testing.TB, path string, data map[string]any) *api.Secret {
	tb.Helper()
	sec, err := s.Client(tb).Logical().WriteWithContext(tb.Context(), path, data)
	if err != nil {
		tb.Fatalf("vaulttest: write %s: %v", path, err)
	}
	return sec
}

var (
	binOnce   sync.Once
	binPath   string
	binErr    error
	dbBinOnce sync.Once
	dbBinPath string
	dbBinErr  error
)

// Binary returns the dev server's path: $SIDECAR_DEVVAULT_BIN, else the
// cached build, building it (once, under a lock shared by all test
// packages) when it is missing. It fails the test loudly if it cannot.
func Binary(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() { binPath, binErr = findOrBuild(BinEnv) })
	if binErr != nil {
		tb.Fatalf("vaulttest: the dev server is required and could not be built: %v", binErr)
	}
	return binPath
}

// DatabaseBinary is Binary for the database flavour (cmd/devvault-db):
// $SIDECAR_DEVVAULT_DB_BIN, else `scripts/devvault.sh --db`.
func DatabaseBinary(tb testing.TB) string {
	tb.Helper()
	dbBinOnce.Do(func() { dbBinPath, dbBinErr = findOrBuild(DBBinEnv, "--db") })
	if dbBinErr != nil {
		tb.Fatalf("vaulttest: the database dev server is required and could not be built: %v", dbBinErr)
	}
	return dbBinPath
}

func findOrBuild(env string, args ...string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", env, p, err)
		}
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(context.Background(), "bash", append([]string{filepath.Join(root, "scripts", "devvault.sh")}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("scripts/devvault.sh: %w: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "devvault", "main.go")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the repository root (scripts/devvault/main.go) above the working directory")
		}
		dir = parent
	}
}

var (
	shared    *Server
	sharedErr error
	sharedMu  sync.Mutex
	inMain    bool
)

// Main runs a package's tests and then stops the shared server. Call it
// from TestMain: func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }.
func Main(m *testing.M) int {
	sharedMu.Lock()
	inMain = true
	sharedMu.Unlock()
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		_ = shared.stop()
	}
	return code
}

// Shared returns the package's shared server, starting it on first use.
// Tests that share it must use their own paths, mounts and roles.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if !inMain {
		tb.Fatal("vaulttest: Shared needs TestMain to call vaulttest.Main (it stops the server)")
	}
	if shared == nil && sharedErr == nil {
		shared, sharedErr = start(Binary(tb))
	}
	if sharedErr != nil {
		tb.Fatalf("vaulttest: %v", sharedErr)
	}
	return shared
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
