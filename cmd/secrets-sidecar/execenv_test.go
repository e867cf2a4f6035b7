package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestExecEnvCannotChooseTheProgram: a secret's PATH field is the child's
// PATH but does not choose the program exec mode runs (that is looked up
// in the sidecar's own PATH), and a dynamic-loader variable from a secret
// is refused before anything runs; a command that exists but cannot be run
// exits 126, one that does not 127; an unknown --env secret is reported
// once.
func TestExecEnvCannotChooseTheProgram(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	good, evil := filepath.Join(dir, "good"), filepath.Join(dir, "evil")
	for _, d := range []string{good, evil} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		// The same name in both: each writes where it was found.
		script := fmt.Sprintf("#!/bin/sh\necho \"ran PATH=$PATH\" > %s/ran\n", d)
		if err := os.WriteFile(filepath.Join(d, "the-app"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\ntouch "+dir+"/plain-ran\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.PutKV2(t, "secret", p+"/path", map[string]any{"PATH": evil + ":/usr/bin:/bin"})
	srv.PutKV2(t, "secret", p+"/preload", map[string]any{"LD_PRELOAD": filepath.Join(evil, "x.so"), "OK": "fine"})
	cfg := writeConfig(t, dir, fmt.Sprintf(`secrets:
  - {name: path, path: %[1]s/path, destination: %[2]s/out/path, format: env}
  - {name: preload, path: %[1]s/preload, destination: %[2]s/out/preload, format: env}
`, p, dir))
	env := []string{"PATH=" + good + ":" + os.Getenv("PATH"), "VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token,
		"SIDECAR_STATUS_FILE=" + filepath.Join(dir, "status.json")}
	run := func(args ...string) (int, string) {
		cmd := exec.CommandContext(t.Context(), sidecarBinary(t), append([]string{"exec", "--config", cfg}, args...)...)
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		return cmd.ProcessState.ExitCode(), string(out)
	}

	code, out := run("--env", "path", "--", "the-app")
	if code != 0 {
		t.Fatalf("exec --env path: exit %d:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(evil, "ran")); err == nil {
		t.Error("the secret's PATH chose the program the sidecar ran")
	}
	if ran := readOrEmpty(filepath.Join(good, "ran")); !strings.Contains(ran, "PATH="+evil+":") {
		t.Errorf("the program from the sidecar's PATH did not run with the secret's PATH: %q", ran)
	}

	code, out = run("--env", "preload", "--", "the-app")
	if code != 1 || !strings.Contains(out, `field \"LD_PRELOAD\"`) || !strings.Contains(out, `secret \"preload\"`) {
		t.Errorf("exec --env preload: exit %d, want 1 naming the secret and LD_PRELOAD:\n%s", code, out)
	}
	if strings.Contains(out, filepath.Join(evil, "x.so")) {
		t.Errorf("the error quotes the value:\n%s", out)
	}

	if code, out = run("--", plain); code != 126 {
		t.Errorf("a command without an execute bit: exit %d, want 126:\n%s", code, out)
	}
	if code, out = run("--", filepath.Join(dir, "missing")); code != 127 {
		t.Errorf("a missing command: exit %d, want 127:\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "plain-ran")); err == nil {
		t.Error("the non-executable command ran")
	}

	code, out = run("--env", "nosuch", "--", "true")
	if n := strings.Count(out, "nosuch"); code != 2 || n != 1 {
		t.Errorf("--env nosuch: exit %d, named %d times, want exit 2 and once:\n%s", code, n, out)
	}
}

// TestExecRestartLeavesNoSessionOrphans: CMD starts a process in a session
// of its own (setsid) each time it runs; restarts must not pile them up,
// and the sidecar's end takes the last one too.
func TestExecRestartLeavesNoSessionOrphans(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/f", map[string]any{"v": "v0"})
	cfg := writeConfig(t, dir, fmt.Sprintf(`notify: {debounce: 200ms}
defaults: {refresh_interval: 1s}
secrets:
  - {name: f, path: %s/f, destination: %s/out/f, key: v}
`, p, dir))
	pids := filepath.Join(dir, "pids")
	script := fmt.Sprintf(`setsid sleep 3600 & echo $! >> %s; exec sleep 3600`, pids)
	cmd := exec.CommandContext(t.Context(), sidecarBinary(t), "exec", "--config", cfg, "--on-change", "restart", "--", "sh", "-c", script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token,
		"SIDECAR_STATUS_FILE=" + filepath.Join(dir, "status.json")}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	// A process left behind holds the output pipe open: Wait must not
	// wait for it.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sleepers := func() []int {
		var got []int
		for _, l := range strings.Fields(readOrEmpty(pids)) {
			var pid int
			if _, err := fmt.Sscan(l, &pid); err == nil {
				got = append(got, pid)
			}
		}
		return got
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		for _, pid := range sleepers() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("sidecar output:\n%s", out.String())
		}
	})
	for i := 1; i <= 3; i++ {
		waitFor(t, 30*time.Second, fmt.Sprintf("CMD's run %d", i), func() bool { return len(sleepers()) >= i })
		srv.PutKV2(t, "secret", p+"/f", map[string]any{"v": fmt.Sprintf("v%d", i)})
	}
	waitFor(t, 30*time.Second, "CMD's 4th run", func() bool { return len(sleepers()) >= 4 })
	all := sleepers()
	for _, pid := range all[:3] {
		waitFor(t, 10*time.Second, fmt.Sprintf("the setsid process %d of a restarted CMD to be gone", pid), func() bool { return !processAlive(pid) })
	}
	if !processAlive(all[3]) {
		t.Fatalf("the running CMD's setsid process %d is gone already", all[3])
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, 10*time.Second, "the last setsid process to be gone after the sidecar stopped", func() bool { return !processAlive(all[3]) })
}
