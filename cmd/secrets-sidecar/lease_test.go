package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestLeasedSecretEndToEnd: a leased secret against the real dev server,
// through the binary: `validate` takes it, `once --dry-run` never sends a
// request that could mint (a mint line, exit 3, nothing written), `once`
// writes the request's data with the template's lease functions failing
// cleanly for a response without a lease, and a request the token may not
// make fails with the old file untouched.
func TestLeasedSecretEndToEnd(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	const marker = "leasedVALUEmarker7"
	srv.PutKV1(t, "kv", p+"/db", map[string]any{"username": "app", "password": marker})
	out := filepath.Join(dir, "out")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
defaults: {mount: secret}
secrets:
  - name: db
    lease: {path: kv/%[1]s/db}
    destination: %[2]s/db.env
    template: "PGUSER={{ .username }}\nPGPASSWORD={{ .password }}\n"
  - name: db-user
    lease: {path: kv/%[1]s/db}
    destination: %[2]s/user
    key: username
`, p, out))
	env := []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token, "SIDECAR_STATUS_FILE=" + filepath.Join(dir, "status.json"),
		"SIDECAR_HTTP_ADDR=", "SIDECAR_LOG_LEVEL=debug"}

	if code, stdout, stderr := runBinary(t, env, "validate", "--config", cfg); code != exitOK {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout := dryRun(t, env, cfg, dir, marker)
	if code != exitChanges {
		t.Errorf("dry run: exit %d, want 3", code)
	}
	wantLines(t, stdout,
		"mint db "+filepath.Join(out, "db.env")+" (would mint a new lease; a dry run does not)",
		"mint db-user "+filepath.Join(out, "user")+" (would mint a new lease; a dry run does not)")

	code, _, stderr := runBinary(t, env, "once", "--config", cfg, "--timeout", "20s")
	if code != exitOK {
		t.Fatalf("once: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, marker) {
		t.Errorf("once logged a value:\n%s", stderr)
	}
	got, err := os.ReadFile(filepath.Join(out, "db.env"))
	if err != nil || string(got) != "PGUSER=app\nPGPASSWORD="+marker+"\n" {
		t.Fatalf("db.env: %q, %v", got, err)
	}
	if got, err := os.ReadFile(filepath.Join(out, "user")); err != nil || string(got) != "app" {
		t.Fatalf("user: %q, %v", got, err)
	}

	// A template calling a lease function on a response without a lease
	// fails to render; the file written before stays.
	bad := writeConfig(t, dir, fmt.Sprintf(`
secrets:
  - name: db
    lease: {path: kv/%[1]s/db}
    destination: %[2]s/db.env
    template: "until={{ leaseExpiry }}\n"
`, p, out))
	code, _, stderr = runBinary(t, env, "once", "--config", bad, "--timeout", "5s")
	if code != exitFailure || !strings.Contains(stderr, "has no lease") {
		t.Errorf("lease function without a lease: exit %d\n%s", code, stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "db.env")); string(got) != "PGUSER=app\nPGPASSWORD="+marker+"\n" {
		t.Errorf("a failed render changed db.env: %q", got)
	}
}

// TestStateDirMustBePrivate: a leases.state_dir others can read stops the
// sidecar at start with exit 2 naming it, before any request.
func TestStateDirMustBePrivate(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`
leases: {state_dir: %s}
secrets:
  - {name: db, lease: {path: kv/nowhere}, destination: %s/out/db, key: password}
`, state, dir))
	env := []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token, "SIDECAR_HTTP_ADDR=", "SIDECAR_STATUS_FILE=" + filepath.Join(dir, "status.json")}
	code, _, stderr := runBinary(t, env, "once", "--config", cfg, "--timeout", "5s")
	if code != exitUsage || !strings.Contains(stderr, state) || !strings.Contains(stderr, "0755") {
		t.Fatalf("exit %d, want 2 naming %s:\n%s", code, state, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("a file was written")
	}
}
