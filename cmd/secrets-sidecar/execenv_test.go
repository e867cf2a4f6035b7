package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
