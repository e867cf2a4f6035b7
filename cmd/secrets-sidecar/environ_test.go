package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestCredentialsLeaveTheEnvironment: the daemon takes VAULT_TOKEN out of
// its environment at start, so /proc/<pid>/environ no longer shows it (not
// even to root, who may read it), and a reload that rebuilds the Vault
// client still logs in with the token kept in memory.
func TestCredentialsLeaveTheEnvironment(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Shared(t)
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/s", map[string]any{"v": "one"})
	token := srv.Write(t, "auth/token/create", map[string]any{"policies": []string{"root"}, "ttl": "1h"}).Auth.ClientToken
	dir := t.TempDir()
	out := filepath.Join(dir, "out", "s")
	text := func(timeout string) string {
		return fmt.Sprintf("vault: {address: %s, timeout: %s}\nsecrets: [{name: s, path: %s/s, destination: %s, key: v, refresh_interval: 1s}]\n",
			srv.Addr, timeout, p, out)
	}
	cfg := writeConfig(t, dir, text("10s"))
	cmd := exec.Command(sidecarBinary(t), "--config", cfg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "VAULT_TOKEN=" + token, "SIDECAR_WATCH_CONFIG=false",
		"SIDECAR_STATUS_FILE=" + filepath.Join(dir, "st", "status.json"), "SIDECAR_HTTP_ADDR="}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	waitFile(t, out, "one", time.Minute)

	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid))
	if err != nil {
		t.Fatalf("reading the daemon's environ (the test runs as its user or root): %v", err)
	}
	if bytes.Contains(environ, []byte(token)) {
		t.Fatal("/proc/<pid>/environ still shows VAULT_TOKEN's value")
	}
	if !bytes.Contains(environ, []byte("VAULT_TOKEN=")) || !bytes.Contains(environ, []byte("SIDECAR_WATCH_CONFIG=false")) {
		t.Fatalf("the environment block lost more than the token's value: %q", environ)
	}

	// A reload with another vault: block builds a new client, which reads
	// the token again: from memory.
	if err := os.WriteFile(cfg, []byte(text("11s")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the reload rebuilt the client", func() bool {
		return bytes.Contains(logs.bytes(), []byte(`"vault client reconfigured"`))
	})
	srv.PutKV2(t, "secret", p+"/s", map[string]any{"v": "two"})
	waitFile(t, out, "two", time.Minute)
	if bytes.Contains(logs.bytes(), []byte(token)) {
		t.Fatal("the token reached the logs")
	}
}

// syncBuffer is a bytes.Buffer that a process's output and the test may
// use at the same time.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}
