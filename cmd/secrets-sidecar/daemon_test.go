package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// sidecarBinary builds the real binary once for the package's process tests.
func sidecarBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "secrets-sidecar-bin-*")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "secrets-sidecar")
		out, err := exec.CommandContext(context.Background(), "go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// slowProxy sits between the sidecar and Vault and can hold requests.
type slowProxy struct {
	*httptest.Server
	delay   atomic.Int64
	holding atomic.Int64
}

func newSlowProxy(t *testing.T, target string) *slowProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &slowProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(p.delay.Load()); d > 0 && strings.Contains(r.URL.Path, "/data/") {
			p.holding.Add(1)
			select {
			case <-time.After(d):
			case <-r.Context().Done():
			}
			p.holding.Add(-1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// TestSIGTERMDuringSlowSync runs the real binary as a daemon, holds its
// Vault read in a slow proxy, and sends SIGTERM mid-sync: the process must
// exit 0 within the shutdown bound, with a complete file and a status file
// that no longer says ready.
func TestSIGTERMDuringSlowSync(t *testing.T) {
	srv := vaulttest.Shared(t)
	bin := sidecarBinary(t)
	proxy := newSlowProxy(t, srv.Addr)
	dir := t.TempDir()
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/s", map[string]any{"v": strings.Repeat("old", 1000)})
	dest := filepath.Join(dir, "out", "s")
	cfg := writeConfig(t, dir, fmt.Sprintf("defaults: {refresh_interval: 1s}\nsecrets: [{name: s, path: %s/s, destination: %s, key: v}]\n", p, dest))
	statusFile := filepath.Join(dir, "status.json")

	var logs bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, "run", "--config", cfg)
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+proxy.URL, "VAULT_TOKEN="+srv.Token,
		"SIDECAR_STATUS_FILE="+statusFile, "SIDECAR_HTTP_ADDR=", "SIDECAR_SHUTDOWN_TIMEOUT=4s")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if t.Failed() {
			_ = cmd.Process.Kill()
			t.Logf("sidecar output:\n%s", logs.String())
		}
	}()

	deadline := time.Now().Add(20 * time.Second)
	for {
		snap, err := status.ReadFile(statusFile)
		if err == nil && snap.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sidecar never became ready")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Hold the next refresh's read for 2.5s, then SIGTERM while it waits.
	proxy.delay.Store(int64(2500 * time.Millisecond))
	srv.PutKV2(t, "secret", p+"/s", map[string]any{"v": strings.Repeat("new", 2000)})
	for proxy.holding.Load() == 0 {
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatal("no read reached the slow proxy")
		}
		time.Sleep(20 * time.Millisecond)
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15s after SIGTERM (bound: SIDECAR_SHUTDOWN_TIMEOUT=4s + margin)")
	}
	took := time.Since(sent)
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	// The in-flight sync was allowed to finish: the new content, complete.
	if string(got) != strings.Repeat("new", 2000) {
		t.Fatalf("file after shutdown is %d bytes, neither complete version", len(got))
	}
	if took < 2*time.Second {
		t.Errorf("exited %s after SIGTERM: it did not wait for the in-flight sync", took)
	}
	snap, err := status.ReadFile(statusFile)
	if err != nil || snap.Ready {
		t.Fatalf("status after shutdown: ready=%v err=%v", snap.Ready, err)
	}
	if !strings.Contains(logs.String(), "sync stopped") {
		t.Errorf("no clean stop logged")
	}
	t.Logf("exited 0 %s after SIGTERM with the in-flight sync completed", took.Round(time.Millisecond))
}

// TestRunBadHTTPAddrFailsStart: a port already taken fails start-up
// (exit 1) with a message naming the address.
func TestRunBadHTTPAddrFailsStart(t *testing.T) {
	srv := vaulttest.Shared(t)
	bin := sidecarBinary(t)
	taken := httptest.NewServer(http.NotFoundHandler())
	defer taken.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf("secrets: [{name: s, path: x, destination: %s/s, key: k}]\n", dir))
	cmd := exec.CommandContext(t.Context(), bin, "run", "--config", cfg)
	addr := strings.TrimPrefix(taken.URL, "http://")
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token,
		"SIDECAR_STATUS_FILE="+filepath.Join(dir, "status.json"), "SIDECAR_HTTP_ADDR="+addr)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
		t.Fatalf("exit %v, want 1\n%s", err, out)
	}
	if !strings.Contains(string(out), addr) {
		t.Errorf("error does not name %s:\n%s", addr, out)
	}
}
