package main

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// treeSnapshot is every entry under a directory: its type and mode, size
// and modification time.
func treeSnapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		snap[p] = fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// dryRun runs `once --dry-run` on the real binary and asserts that it
// touched nothing under dir and printed none of the given values.
func dryRun(t *testing.T, env []string, cfg, dir string, hidden ...string) (int, string) {
	t.Helper()
	before := treeSnapshot(t, dir)
	code, out, errOut := runBinary(t, env, "once", "--dry-run", "--config", cfg, "--timeout", "20s")
	if after := treeSnapshot(t, dir); !maps.Equal(before, after) {
		t.Errorf("--dry-run changed the directory tree:\nbefore %v\nafter  %v", before, after)
	}
	for _, h := range hidden {
		if strings.Contains(out+errOut, h) {
			t.Errorf("--dry-run printed a secret value (%s):\n%s%s", h, out, errOut)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	}
	return code, out
}

func wantLines(t *testing.T, out string, want ...string) {
	t.Helper()
	got := strings.Split(strings.TrimSpace(out), "\n")
	if !slicesEqual(got, want) {
		t.Errorf("stdout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestOnceDryRun: --dry-run reads and renders every secret against a real
// Vault, writes nothing (no file, directory or status file; the tree's
// names, modes and mtimes are unchanged), prints one line per secret with
// the fields and key names that would change but no value, and exits 3
// when something would change, 0 when nothing would, 1 on an error.
func TestOnceDryRun(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	const oldMarker, newMarker, keptMarker = "dryOLDmarker1", "dryNEWmarker2", "dryKEPTmarker3"
	srv.PutKV2(t, "secret", p+"/app", map[string]any{"A": oldMarker, "B": keptMarker})
	srv.PutKV2(t, "secret", p+"/other", map[string]any{"B": keptMarker})
	out := filepath.Join(dir, "out", "sub")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
secrets:
  - {name: app, path: %[1]s/app, destination: %[2]s/app.env, format: env}
  - {name: tmpl, path: %[1]s/other, destination: %[2]s/t.txt, template: "B={{ .B }}", mode: "0440"}
`, p, out))
	status := filepath.Join(dir, "status.json")
	env := []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token, "SIDECAR_STATUS_FILE=" + status,
		"SIDECAR_HTTP_ADDR=", "SIDECAR_LOG_LEVEL=debug"}
	app, tmpl := filepath.Join(out, "app.env"), filepath.Join(out, "t.txt")

	code, stdout := dryRun(t, env, cfg, dir, oldMarker, keptMarker)
	if code != exitChanges {
		t.Errorf("create: exit %d, want 3", code)
	}
	wantLines(t, stdout, "create app "+app, "create tmpl "+tmpl)
	for _, p := range []string{filepath.Join(dir, "out"), status} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("--dry-run created %s", p)
		}
	}

	if code, _, errOut := runBinary(t, env, "once", "--config", cfg, "--timeout", "20s"); code != exitOK {
		t.Fatalf("once: exit %d\n%s", code, errOut)
	}
	code, stdout = dryRun(t, env, cfg, dir, oldMarker, keptMarker)
	if code != exitOK {
		t.Errorf("after once: exit %d, want 0", code)
	}
	wantLines(t, stdout, "unchanged app "+app, "unchanged tmpl "+tmpl)

	// A changes, B goes, C comes; the template's file gets a new mode.
	srv.PutKV2(t, "secret", p+"/app", map[string]any{"A": newMarker, "C": "c"})
	if err := os.Chmod(tmpl, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout = dryRun(t, env, cfg, dir, oldMarker, newMarker, keptMarker)
	if code != exitChanges {
		t.Errorf("update: exit %d, want 3", code)
	}
	wantLines(t, stdout, "update app "+app+" (content) keys: +C -B ~A", "update tmpl "+tmpl+" (mode)")

	// An unreadable destination is an error, exit 1: a symbolic link, a
	// directory.
	if err := os.Remove(app); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tmpl, app); err != nil {
		t.Fatal(err)
	}
	code, stdout = dryRun(t, env, cfg, dir, oldMarker, newMarker, keptMarker)
	if code != exitFailure {
		t.Errorf("symlink destination: exit %d, want 1", code)
	}
	wantLines(t, stdout, "error app "+app+": write: "+app+": is a symbolic link: refusing to follow it", "update tmpl "+tmpl+" (mode)")

	if err := os.Remove(app); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(app, 0o755); err != nil {
		t.Fatal(err)
	}
	code, stdout = dryRun(t, env, cfg, dir)
	if code != exitFailure || !strings.HasPrefix(stdout, "error app "+app+": write: ") {
		t.Errorf("directory destination: exit %d, want 1 and an error line\n%s", code, stdout)
	}

	bad := writeConfig(t, dir, "secrets:\n  - {name: x, path: p, destination: relative, key: k}\n")
	if code, _ := dryRun(t, env, bad, dir); code != exitUsage {
		t.Errorf("invalid config: exit %d, want 2", code)
	}
}
