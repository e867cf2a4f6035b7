package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// runImageTest runs scripts/image-test.sh with extra environment and returns
// its combined output and error.
func runImageTest(t *testing.T, env ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", "../../scripts/image-test.sh")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// imageStatusFile writes a status file the daemon's way (jobs/status), with
// every secret written when ready is true and one still waiting otherwise.
func imageStatusFile(t *testing.T, path string, ready bool) {
	t.Helper()
	tr := status.NewTracker(path, nil, nil, nil)
	tr.Configure([]status.SecretInfo{
		{Name: "db", VaultPath: "secret/demo/db", RefreshInterval: time.Minute},
		{Name: "api-key", VaultPath: "secret/demo/api", RefreshInterval: time.Minute},
	})
	tr.Succeeded("db", time.Now(), 3)
	if ready {
		tr.Succeeded("api-key", time.Now(), 1)
	} else {
		tr.Failed("api-key", time.Now(), "permission denied")
	}
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestImage proves the scratch image's contract without a Docker engine:
// the script builds the binary with the Dockerfile's own build steps,
// assembles exactly the final stage's files into an empty directory and
// runs the ENTRYPOINT (version, validate, once, run) and the HEALTHCHECK
// inside it with chroot (or a user namespace) as uid 65534, against a real
// Vault dev server. See scripts/image-test.sh.
func TestImage(t *testing.T) {
	dir := t.TempDir()
	waiting, ready := filepath.Join(dir, "waiting.json"), filepath.Join(dir, "ready.json")
	imageStatusFile(t, waiting, false)
	imageStatusFile(t, ready, true)

	// A Vault with one secret and an AppRole that may read only it.
	const password = "image-test p@ss'w0rd $HOME"
	v := vaulttest.Start(t)
	v.PutKV2(t, "secret", "image/db", map[string]any{"username": "app", "password": password})
	v.Policy(t, "image", `path "secret/data/image/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }`)
	roleID, secretID := v.AppRole(t, "approle", "image", map[string]any{"token_policies": "image", "token_ttl": "1h"})

	out, err := runImageTest(t,
		"IMAGE_TEST_STATUS_WAITING="+waiting, "IMAGE_TEST_STATUS_READY="+ready,
		"IMAGE_TEST_VAULT_ADDR="+v.Addr, "IMAGE_TEST_VAULT_PATH=image/db", "IMAGE_TEST_PASSWORD="+password,
		"IMAGE_TEST_ROLE_ID="+roleID, "IMAGE_TEST_SECRET_ID="+secretID)
	t.Log(out)
	if err != nil {
		t.Fatalf("image-test.sh: %v", err)
	}
	for _, want := range []string{
		"drwxrwxrwt 0:0", // sticky /tmp for the status file
		"statically linked",
		"version: secrets-sidecar image-test (commit ",
		"validate: /etc/secrets-sidecar/config.yaml: ok (",
		"validate (bad config): exit 2: /etc/secrets-sidecar/bad.yaml:2: secrets[0].mode",
		"(no status file): exit 1: isready: no status file at /tmp/secrets-sidecar/status.json",
		"(status file: a secret not written yet): exit 1: ",
		"(status file: ready, fresh): exit 0: ",
		"once (AppRole login, KV v2 read) as 65534: wrote /secrets/app/db.env and /secrets/password",
		"run: HEALTHCHECK healthy from the daemon's own status file: ",
		"run: SIGTERM -> exit 0; HEALTHCHECK afterwards: exit 1: ",
		"run: the secret's value is in no log line and not in the status file",
		"image-test: ok: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("image-test.sh output lacks %q", want)
		}
	}
	if strings.Contains(out, "image-test: ok: mode chroot,") &&
		!strings.Contains(out, "runs as 65534: a root-only 0600 config is 'permission denied'") {
		t.Error("in chroot mode, the script must prove the process is not root")
	}
	for _, secret := range []string{password, secretID} {
		if strings.Contains(out, secret) {
			t.Errorf("image-test.sh output shows a secret value")
		}
	}
}

// TestImageRejectsBrokenDockerfiles: the script reads the Dockerfile rather
// than assuming it; a final stage that is not scratch, that runs as root, or
// whose binary its user may read (not execute-only), fails it.
func TestImageRejectsBrokenDockerfiles(t *testing.T) {
	orig, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"root user", "USER 65534:65534", "USER 0:0", "USER is '0:0', want 65534:65534"},
		{"not scratch", "FROM scratch", "FROM debian:bookworm-slim", "the final stage is FROM debian:bookworm-slim, want FROM scratch"},
		{"no healthcheck cmd", `CMD ["/secrets-sidecar", "isready"]`, "NONE", "HEALTHCHECK has no exec-form CMD"},
		{"cgo", "CGO_ENABLED=0", "CGO_ENABLED=1", "go build lacks 'CGO_ENABLED=0'"},
		{"readable binary", "chmod 0511 /image/root/secrets-sidecar", "chmod 0755 /image/root/secrets-sidecar", "/secrets-sidecar is mode 755, want 0511"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(orig), tc.from) {
				t.Fatalf("Dockerfile has no %q", tc.from)
			}
			f := filepath.Join(t.TempDir(), "Dockerfile")
			if err := os.WriteFile(f, []byte(strings.Replace(string(orig), tc.from, tc.to, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := runImageTest(t, "IMAGE_TEST_DOCKERFILE="+f)
			if err == nil || !strings.Contains(out, "image-test: FAIL: ") || !strings.Contains(out, tc.want) {
				t.Fatalf("want a failure naming %q, got %v:\n%s", tc.want, err, out)
			}
		})
	}
}
