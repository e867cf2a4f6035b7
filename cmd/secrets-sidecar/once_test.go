package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

var testSeq atomic.Int64

func prefix(t *testing.T) string {
	return fmt.Sprintf("cmd%d-%s", testSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "-"))
}

// sidecarEnv points a command at srv with the root token and keeps its
// files in the test's directory.
func sidecarEnv(t *testing.T, srv *vaulttest.Server, dir string) {
	t.Helper()
	t.Setenv("VAULT_ADDR", srv.Addr)
	t.Setenv("VAULT_TOKEN", srv.Token)
	t.Setenv("SIDECAR_STATUS_FILE", filepath.Join(dir, "status.json"))
	t.Setenv("SIDECAR_HTTP_ADDR", "")
	t.Setenv("SIDECAR_LOG_LEVEL", "info")
}

func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOnceAllWritten(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	sidecarEnv(t, srv, dir)
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/db", map[string]any{"user": "u1", "pass": "p1"})
	srv.PutKV1(t, "kv", p+"/legacy", map[string]any{"k": "v"})
	cfg := writeConfig(t, dir, fmt.Sprintf(`
secrets:
  - {name: db, path: %[1]s/db, destination: %[2]s/out/db.env, template: "U={{ .user }} P={{ .pass }}"}
  - {name: legacy, mount: kv, path: %[1]s/legacy, destination: %[2]s/out/legacy, key: k}
`, p, dir))
	code, stdout, stderr := runCLI(t, "once", "--config", cfg, "--timeout", "30s")
	if code != exitOK {
		t.Fatalf("once: exit %d\n%s", code, stderr)
	}
	if stdout != "" { // stdout is the dry run's; a sync prints nothing there
		t.Errorf("once printed to stdout: %q", stdout)
	}
	for f, want := range map[string]string{"db.env": "U=u1 P=p1", "legacy": "v"} {
		if got, _ := os.ReadFile(filepath.Join(dir, "out", f)); string(got) != want {
			t.Errorf("%s = %q, want %q", f, got, want)
		}
	}
	if !strings.Contains(stderr, `"msg":"once finished"`) || !strings.Contains(stderr, `"written":2`) {
		t.Errorf("no summary in the log:\n%s", stderr)
	}
}

// TestOnceMissingPathFails: exit 1, a line naming the failed secret, and
// the other secret still written.
func TestOnceMissingPathFails(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	sidecarEnv(t, srv, dir)
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/ok", map[string]any{"v": "fine"})
	cfg := writeConfig(t, dir, fmt.Sprintf(`
secrets:
  - {name: ok, path: %[1]s/ok, destination: %[2]s/out/ok, key: v}
  - {name: ghost, path: %[1]s/ghost, destination: %[2]s/out/ghost, key: v}
`, p, dir))
	start := time.Now()
	code, stdout, stderr := runCLI(t, "once", "--config", cfg, "--timeout", "3s")
	if code != exitFailure {
		t.Fatalf("once with a missing path: exit %d, want 1\n%s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("once printed to stdout (failures belong in the log): %q", stdout)
	}
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("gave up after %s, before --timeout 3s", took)
	}
	var failLines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, `"msg":"secret not written"`) {
			failLines = append(failLines, l)
		}
	}
	if len(failLines) != 1 || !strings.Contains(failLines[0], `"secret_name":"ghost"`) || !strings.Contains(failLines[0], "not found") {
		t.Errorf("want one summary line naming ghost, got %q", failLines)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "out", "ok")); string(got) != "fine" {
		t.Errorf("the good secret was not written: %q", got)
	}
}

// TestOnceTemplateErrorFails: never exit 0 on a template error (vault#9306).
func TestOnceTemplateErrorFails(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	sidecarEnv(t, srv, dir)
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/s", map[string]any{"present": "x"})
	cfg := writeConfig(t, dir, fmt.Sprintf(`
secrets: [{name: s, path: %s/s, destination: %s/out/s, template: "{{ .absent }}"}]
`, p, dir))
	code, _, stderr := runCLI(t, "once", "--config", cfg, "--timeout", "2s")
	if code != exitFailure || !strings.Contains(stderr, "absent") {
		t.Fatalf("exit %d, want 1 with the missing key named\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "s")); err == nil {
		t.Fatal("a file was written despite the template error")
	}
}

// TestOnceVaultUnreachable: exit 1 after --timeout, not before and not never.
func TestOnceVaultUnreachable(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port nothing answers on
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("VAULT_ADDR", "http://"+addr)
	t.Setenv("VAULT_TOKEN", "unused")
	t.Setenv("SIDECAR_HTTP_ADDR", "")
	cfg := writeConfig(t, dir, fmt.Sprintf("secrets: [{name: s, path: x, destination: %s/out/s, key: k}]\n", dir))
	start := time.Now()
	code, _, stderr := runCLI(t, "once", "--config", cfg, "--timeout", "2s")
	took := time.Since(start)
	if code != exitFailure {
		t.Fatalf("exit %d, want 1\n%s", code, stderr)
	}
	if took < 2*time.Second || took > 15*time.Second {
		t.Fatalf("returned after %s, want just after the 2s timeout", took)
	}
	if !strings.Contains(stderr, `"secret_name":"s"`) {
		t.Errorf("failed secret not named:\n%s", stderr)
	}
}
