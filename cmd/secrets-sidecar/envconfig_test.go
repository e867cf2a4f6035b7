package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runBinary runs the real binary with only PATH, HOME and env in its
// environment, and returns its exit code and output.
func runBinary(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), sidecarBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

// TestValidateEnvExpansion: validate expands ${NAME} from its environment,
// so CI can check each environment's config, and an unset variable or a
// value of the wrong type is exit 2 with file, line, column and field,
// never the value.
func TestValidateEnvExpansion(t *testing.T) {
	const marker = "envmarker-s3cr3t"
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	text := `defaults:
  kv_version: ${KV:-2}
secrets:
  - name: db-${ENV}
    path: ${APP_PREFIX}/db
    destination: ${OUT}/db.env
    template: 'export URL="${DB_URL}" {{ .url }}'
`
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	good := []string{"ENV=prod", "APP_PREFIX=team", "OUT=" + dir}
	code, out, errOut := runBinary(t, good, "validate", cfg)
	if code != exitOK || !strings.Contains(out, "ok (1 secrets)") {
		t.Fatalf("validate with every variable set: exit %d\n%s%s", code, out, errOut)
	}

	code, _, errOut = runBinary(t, []string{"ENV=prod", "OUT=" + dir}, "validate", cfg)
	want := cfg + ":5:11: secrets[0].path: environment variable APP_PREFIX is not set (use ${APP_PREFIX:-default} for a default)"
	if code != exitUsage || !strings.Contains(errOut, want) {
		t.Errorf("validate with APP_PREFIX unset: exit %d, want 2 and %q\n%s", code, want, errOut)
	}

	code, out, errOut = runBinary(t, append(good, "KV="+marker), "validate", cfg)
	if code != exitUsage || !strings.Contains(errOut, "defaults.kv_version: value from ${KV:-2} is not a KV version") {
		t.Errorf("validate with KV=%s: exit %d\n%s", marker, code, errOut)
	}
	if strings.Contains(out+errOut, marker) {
		t.Errorf("validate printed a variable's value:\n%s%s", out, errOut)
	}
}
