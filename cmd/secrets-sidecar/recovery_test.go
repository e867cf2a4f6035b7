package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// recoveryBound fails a Vault-ready -> file-written latency; the goal is
// 2 s, the old behaviour (a breaker open for 30 s) took 20-30 s.
const recoveryBound = 6 * time.Second

// watchHealth polls Vault's sys/health from the test's side, starting now,
// and returns a func that waits for the first successful answer and
// returns when it came.
func watchHealth(t *testing.T, addr string) func() time.Time {
	t.Helper()
	seen := make(chan time.Time, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		client := &http.Client{Timeout: time.Second}
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, addr+"/v1/sys/health", nil)
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					seen <- time.Now()
					return
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return func() time.Time {
		select {
		case at := <-seen:
			return at
		case <-time.After(2 * time.Minute):
			t.Fatal("Vault never answered its health check")
			return time.Time{}
		}
	}
}

// waitFile polls path every 10 ms until it holds want and returns when.
func waitFile(t *testing.T, path, want string, bound time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		if got, err := os.ReadFile(path); err == nil && string(got) == want {
			return time.Now()
		}
		if time.Now().After(deadline) {
			got, _ := os.ReadFile(path)
			t.Fatalf("after %s %s holds %q, want %q", bound, path, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOnceStartedBeforeVault: `once` starts 3 s before Vault; the file is
// written within moments of Vault answering (the breaker, opened by the
// early failures, is closed by its health probe, which wakes the retry).
func TestOnceStartedBeforeVault(t *testing.T) {
	srv := vaulttest.Start(t, vaulttest.Persistent())
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/db", map[string]any{"v": "ready"})
	srv.Stop(t)
	dir := t.TempDir()
	dest := filepath.Join(dir, "out", "db")
	cfg := writeConfig(t, dir, fmt.Sprintf("secrets: [{name: db, path: %s/db, destination: %s, key: v}]\n", p, dest))
	logs := &logtest.Buffer{}
	cmd := exec.CommandContext(context.Background(), sidecarBinary(t), "once", "--config", cfg, "--timeout", "90s")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "VAULT_ADDR=" + srv.Addr,
		"VAULT_TOKEN=" + srv.Token, "SIDECAR_HTTP_ADDR=", "SIDECAR_STATUS_FILE=" + filepath.Join(dir, "status.json")}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("once output:\n%s", logs.String())
		}
	})

	time.Sleep(3 * time.Second)
	healthy := watchHealth(t, srv.Addr)
	srv.Restart(t)
	readyAt := healthy()
	writtenAt := waitFile(t, dest, "ready", time.Minute)
	latency := writtenAt.Sub(readyAt)
	t.Logf("once: Vault ready -> file written: %s", latency.Round(time.Millisecond))
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("once: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("once did not exit after writing the file")
	}
	if latency > recoveryBound {
		t.Fatalf("file written %s after Vault was ready (bound %s)", latency, recoveryBound)
	}
	if !strings.Contains(logs.String(), "closing the circuit breaker") {
		t.Logf("note: the breaker did not open before Vault came back")
	}
}

// TestDaemonRecoversAfterOutage: an 8 s outage; the new value is written
// within moments of Vault answering again. Vault's URL carries userinfo:
// the logs, the status file and /ready never show it.
func TestDaemonRecoversAfterOutage(t *testing.T) {
	srv := vaulttest.Start(t, vaulttest.Persistent())
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/db", map[string]any{"v": "one"})
	dir := t.TempDir()
	dest := filepath.Join(dir, "out", "db")
	cfg := writeConfig(t, dir, fmt.Sprintf("secrets: [{name: db, path: %s/db, destination: %s, key: v, refresh_interval: 1s}]\n", p, dest))
	const user, pass = "opsuser-3c1e", "opspass-8b2d"
	addr := strings.Replace(srv.Addr, "http://", "http://"+user+":"+pass+"@", 1)
	httpAddr := freeAddr(t)
	d := startDaemon(t, cfg, dir, "VAULT_ADDR="+addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_HTTP_ADDR="+httpAddr)
	d.waitReady(t, 30*time.Second)
	waitFile(t, dest, "one", 10*time.Second)

	srv.Stop(t)
	time.Sleep(8 * time.Second)
	snap, err := status.ReadFile(d.status)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Secrets) != 1 || snap.Secrets[0].LastError == "" {
		t.Fatalf("no error recorded during the outage: %+v", snap)
	}
	t.Logf("last error during the outage: %s", snap.Secrets[0].LastError)
	ready := getReady(t, httpAddr)

	healthy := watchHealth(t, srv.Addr)
	srv.Restart(t)
	readyAt := healthy()
	srv.PutKV2(t, "secret", p+"/db", map[string]any{"v": "two"})
	writtenAt := waitFile(t, dest, "two", time.Minute)
	latency := writtenAt.Sub(readyAt)
	t.Logf("daemon: Vault ready -> new value written: %s", latency.Round(time.Millisecond))
	if latency > recoveryBound {
		t.Fatalf("new value written %s after Vault was ready (bound %s)", latency, recoveryBound)
	}

	statusFile, _ := os.ReadFile(d.status)
	for what, text := range map[string]string{"logs": d.logs.String(), "status file": string(statusFile), "/ready": ready} {
		if strings.Contains(text, user) || strings.Contains(text, pass) {
			t.Errorf("the %s show the URL's userinfo", what)
		}
	}
	if !strings.Contains(string(statusFile)+ready+d.logs.String(), "***@127.0.0.1") {
		t.Errorf("the redacted address appears nowhere; was the userinfo exercised?")
	}
}

func getReady(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestOnceNamesTheCauseOfTheOpenBreaker: once's final line per secret
// carries why Vault is failing, not only "circuit breaker is open".
func TestOnceNamesTheCauseOfTheOpenBreaker(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t) // nothing listens there
	t.Setenv("SIDECAR_BREAKER_MAX_FAILURES", "1")
	t.Setenv("VAULT_ADDR", "http://"+addr)
	t.Setenv("VAULT_TOKEN", "unused")
	t.Setenv("SIDECAR_HTTP_ADDR", "")
	t.Setenv("SIDECAR_STATUS_FILE", filepath.Join(dir, "status.json"))
	cfg := writeConfig(t, dir, fmt.Sprintf("secrets: [{name: s, path: x, destination: %s/out/s, key: k}]\n", dir))
	code, _, stderr := runCLI(t, "once", "--config", cfg, "--timeout", "4s")
	if code != exitFailure {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var final string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, `"msg":"secret not written"`) {
			final = l
		}
	}
	want := "circuit breaker is open (last failure: dial tcp " + addr + ": connect: connection refused)"
	if !strings.Contains(final, want) {
		t.Fatalf("final line %q lacks %q", final, want)
	}
}
