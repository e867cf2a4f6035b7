//go:build containers

package containers

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// hardening is how the README runs the image: read-only root, a tmpfs for
// the status file, no capabilities, no privilege escalation.
var hardening = []string{"--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true"}

// TestImage runs the image built from the prebuilt binary as a user would:
// its configuration and files, then `version`, `validate`, `once` and `run`
// as uid 65534 with a read-only root against a Vault dev server on
// 127.0.0.1 (host network), the health check turning healthy, and
// `docker stop` ending the daemon with exit code 0.
func TestImage(t *testing.T) {
	st := images(t)
	t.Run("config", func(t *testing.T) { testImageConfig(t, st) })
	t.Run("files", testImageFiles)

	t.Run("version", func(t *testing.T) {
		removeContainer(t, "secrets-sidecar-test-version")
		out := docker(t, append(append([]string{"run", "--name", "secrets-sidecar-test-version", "--label", label, "--network", "none"}, hardening...),
			imageSidecar, "version")...)
		want := "secrets-sidecar " + st.version + " (commit " + st.commit + ", go1."
		if !strings.HasPrefix(out, want) {
			t.Fatalf("version printed %q, want the prefix %q", out, want)
		}
		t.Logf("version: %s", out)
	})

	configDir, err := filepath.Abs("../../examples/compose/test/sidecar")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("validate", func(t *testing.T) {
		removeContainer(t, "secrets-sidecar-test-validate")
		out := docker(t, append(append([]string{"run", "--name", "secrets-sidecar-test-validate", "--label", label, "--network", "none"}, hardening...),
			"-v", configDir+":/etc/secrets-sidecar:ro", imageSidecar, "validate")...)
		if !strings.HasPrefix(out, "/etc/secrets-sidecar/config.yaml: ok (") {
			t.Fatalf("validate printed %q", out)
		}

		bad := t.TempDir()
		chmod(t, bad, 0o755)
		writeFile(t, filepath.Join(bad, "config.yaml"), "secrets:\n  - {name: a, path: p, destination: /secrets/a, key: k, mode: \"0999\"}\n", 0o644)
		removeContainer(t, "secrets-sidecar-test-invalid")
		r := dockerTry(t, append(append([]string{"run", "--name", "secrets-sidecar-test-invalid", "--label", label, "--network", "none"}, hardening...),
			"-v", bad+":/etc/secrets-sidecar:ro", imageSidecar, "validate")...)
		if r.code != 2 || !strings.Contains(r.stderr, "/etc/secrets-sidecar/config.yaml:2: secrets[0].mode") {
			t.Fatalf("validate of a bad config: exit %d, want 2 naming file, line and field:\n%s", r.code, r.stderr)
		}
		t.Logf("validate: %s; a bad config: exit 2: %s", out, strings.TrimSpace(r.stderr))
	})

	// A Vault with the test config's secrets and an AppRole that may read
	// only them; the password needs quoting in the env format.
	v := vaulttest.Start(t)
	password := "img p@ss'w0rd $HOME \"" + randomHex(t)
	apiKey := "api-" + randomHex(t)
	v.PutKV2(t, "secret", "demo/db", map[string]any{"username": "app", "password": password, "host": "db.internal", "port": "5432", "database": "app"})
	v.PutKV2(t, "secret", "demo/api", map[string]any{"api_key": apiKey})
	v.Policy(t, "secrets-sidecar", `path "secret/data/demo/*" { capabilities = ["read"] }
path "sys/internal/ui/mounts/*" { capabilities = ["read"] }`)
	roleID, secretID := v.AppRole(t, "approle", "secrets-sidecar", map[string]any{"token_policies": "secrets-sidecar", "token_ttl": "1h"})
	approle := filepath.Join(t.TempDir(), "approle")
	if err := os.Mkdir(approle, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(approle, "role-id"), roleID, 0o400)
	writeFile(t, filepath.Join(approle, "secret-id"), secretID, 0o400)
	for _, f := range []string{approle, filepath.Join(approle, "role-id"), filepath.Join(approle, "secret-id")} {
		if err := os.Chown(f, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	mounts := []string{"-v", configDir + ":/etc/secrets-sidecar:ro", "-v", approle + ":/run/secrets/approle:ro"}
	secrets := []string{password, secretID, apiKey}

	t.Run("once", func(t *testing.T) {
		vol, dir := volume(t, "secrets-sidecar-test-once")
		removeContainer(t, "secrets-sidecar-test-once")
		r := dockerTry(t, append(append(append([]string{"run", "--name", "secrets-sidecar-test-once", "--label", label, "--network", "host"}, hardening...),
			mounts...), "-v", vol+":/secrets", "-e", "VAULT_ADDR="+v.Addr, "-e", "SIDECAR_HTTP_ADDR=", imageSidecar, "once", "--timeout", "60s")...)
		if r.code != 0 {
			t.Fatalf("once: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		checkSecretFiles(t, vol, dir, password, apiKey)
		noSecrets(t, "once's output", r.stdout+r.stderr, secrets)
		t.Logf("once: exit 0; /secrets/db.env and /secrets/api-key written as 65534, 0400, in a new named volume")
	})

	t.Run("run", func(t *testing.T) {
		vol, dir := volume(t, "secrets-sidecar-test-run")
		name := "secrets-sidecar-test-run"
		removeContainer(t, name)
		httpAddr := "127.0.0.1:" + freePort(t)
		started := time.Now()
		docker(t, append(append(append([]string{"run", "--detach", "--name", name, "--label", label, "--network", "host"}, hardening...),
			mounts...), "-v", vol+":/secrets", "-e", "VAULT_ADDR="+v.Addr, "-e", "SIDECAR_HTTP_ADDR="+httpAddr,
			// Docker before 25 has no --health-start-interval: check every
			// second throughout instead of the image's 10 s.
			"--health-interval", "1s", "--health-timeout", "3s", "--health-retries", "3", "--health-start-period", "30s",
			imageSidecar)...) // the image's CMD: run
		healthy := waitHealthy(t, name, time.Minute)
		t.Logf("run: healthy %s after `docker run` returned (%s from the call)", healthy.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))

		// ps on the host, for the container's processes: PID and UID.
		top := strings.Split(docker(t, "top", name, "-o", "pid,uid"), "\n")
		if len(top) != 2 || !strings.HasSuffix(strings.TrimSpace(top[1]), " 65534") {
			t.Errorf("the container's processes, want one with uid 65534:\n%s", strings.Join(top, "\n"))
		}
		resp, err := http.Get("http://" + httpAddr + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /ready: %s", resp.Status)
		}
		checkSecretFiles(t, vol, dir, password, apiKey)

		start := time.Now()
		docker(t, "stop", "--time", "20", name)
		stopped := time.Since(start)
		s := inspect(t, name)
		if s.State.ExitCode != 0 || s.State.OOMKilled || s.RestartCount != 0 {
			t.Fatalf("after docker stop: exit code %d (OOM killed %v, restarts %d), want 0", s.State.ExitCode, s.State.OOMKilled, s.RestartCount)
		}
		if stopped > 15*time.Second {
			t.Errorf("docker stop took %s: the daemon should end within its shutdown timeout, well before Docker's SIGKILL", stopped)
		}
		r := dockerTry(t, "logs", name)
		logs := r.stdout + r.stderr
		noSecrets(t, "the daemon's logs", logs, secrets)
		noSecrets(t, "the health check's output", strings.Join(healthOutputs(s), "\n"), secrets)
		t.Logf("run: docker stop -t 20 took %s, exit code 0", stopped.Round(time.Millisecond))
	})
}

func testImageConfig(t *testing.T, st stamp) {
	var img []struct {
		Config struct {
			User         string
			Entrypoint   []string
			Cmd          []string
			ExposedPorts map[string]any
			Labels       map[string]string
			Healthcheck  struct {
				Test                           []string
				Interval, Timeout, StartPeriod time.Duration
				Retries                        int
			}
		}
		Os, Architecture string
	}
	if err := json.Unmarshal([]byte(docker(t, "image", "inspect", imageSidecar)), &img); err != nil || len(img) != 1 {
		t.Fatalf("docker image inspect: %v", err)
	}
	c := img[0].Config
	for _, check := range []struct {
		what      string
		got, want any
	}{
		{"USER", c.User, "65534:65534"},
		{"ENTRYPOINT", c.Entrypoint, []string{"/secrets-sidecar"}},
		{"CMD", c.Cmd, []string{"run"}},
		{"EXPOSE", len(c.ExposedPorts), 1},
		{"HEALTHCHECK CMD", c.Healthcheck.Test, []string{"CMD", "/secrets-sidecar", "isready"}},
		{"HEALTHCHECK --interval", c.Healthcheck.Interval, 10 * time.Second},
		{"HEALTHCHECK --timeout", c.Healthcheck.Timeout, 3 * time.Second},
		{"HEALTHCHECK --start-period", c.Healthcheck.StartPeriod, 30 * time.Second},
		{"HEALTHCHECK --retries", c.Healthcheck.Retries, 3},
		{"label version", c.Labels["org.opencontainers.image.version"], st.version},
		{"label revision", c.Labels["org.opencontainers.image.revision"], st.commit},
		{"label title", c.Labels["org.opencontainers.image.title"], "secrets-sidecar"},
	} {
		if !equal(check.got, check.want) {
			t.Errorf("%s: %v, want %v", check.what, check.got, check.want)
		}
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("EXPOSE: %v, want 8080/tcp", c.ExposedPorts)
	}
}

func equal(a, b any) bool {
	as, ok1 := a.([]string)
	bs, ok2 := b.([]string)
	if ok1 && ok2 {
		return slices.Equal(as, bs)
	}
	return a == b
}

// testImageFiles reads the image's layers (docker save) and checks that they
// hold exactly the final stage's files, with their owners and modes.
func testImageFiles(t *testing.T) {
	type entry struct {
		mode     int64
		uid, gid int
	}
	archive := filepath.Join(t.TempDir(), "image.tar")
	docker(t, "save", "--output", archive, imageSidecar)
	saved, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer saved.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(saved)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b, err := io.ReadAll(tr); err == nil {
			files[h.Name] = b
		}
	}
	var manifest []struct{ Layers []string }
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil || len(manifest) != 1 {
		t.Fatalf("docker save: manifest.json: %v", err)
	}
	got := map[string]entry{}
	for _, layer := range manifest[0].Layers {
		lr := tar.NewReader(bytes.NewReader(files[layer]))
		for {
			h, err := lr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %s: %v", layer, err)
			}
			got[strings.TrimSuffix(h.Name, "/")] = entry{h.Mode & 0o7777, h.Uid, h.Gid}
		}
	}
	want := map[string]entry{
		// Root's and execute-only: a same-uid co-tenant may run it but not
		// read it, so the process is non-dumpable from execve on.
		"secrets-sidecar":                       {0o511, 0, 0},
		"etc":                                   {0o755, 0, 0},
		"etc/passwd":                            {0o644, 0, 0},
		"etc/group":                             {0o644, 0, 0},
		"etc/ssl":                               {0o755, 0, 0},
		"etc/ssl/certs":                         {0o755, 0, 0},
		"etc/ssl/certs/ca-certificates.crt":     {0o644, 0, 0},
		"tmp":                                   {0o1777, 0, 0},
		"usr":                                   {0o755, 0, 0},
		"usr/share":                             {0o755, 0, 0},
		"usr/share/doc":                         {0o755, 0, 0},
		"usr/share/doc/secrets-sidecar":         {0o755, 0, 0},
		"usr/share/doc/secrets-sidecar/LICENSE": {0o644, 0, 0},
		"usr/share/doc/secrets-sidecar/THIRD_PARTY_NOTICES": {0o644, 0, 0},
		"secrets": {0o755, 65534, 65534},
	}
	for path, w := range want {
		if g, ok := got[path]; !ok {
			t.Errorf("the image has no /%s", path)
		} else if g != w {
			t.Errorf("/%s: mode %04o owner %d:%d, want %04o %d:%d", path, g.mode, g.uid, g.gid, w.mode, w.uid, w.gid)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("the image holds /%s, which the final stage does not put there", path)
		}
	}
	t.Logf("files: the image's layers hold exactly %d entries, with the final stage's owners and modes", len(want))
}

// checkSecretFiles checks the files a sync wrote into the volume: owned by
// the image's user, mode 0400, the api key as is, and db.env sourcing back
// to the password in a POSIX shell (busybox sh, as the example app does).
func checkSecretFiles(t *testing.T, vol, dir, password, apiKey string) {
	t.Helper()
	for _, f := range []string{"", "db.env", "api-key"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		sys := fi.Sys().(*syscall.Stat_t)
		if sys.Uid != 65534 || sys.Gid != 65534 {
			t.Errorf("/secrets/%s is owned by %d:%d, want 65534:65534", f, sys.Uid, sys.Gid)
		}
		if f != "" && fi.Mode().Perm() != 0o400 {
			t.Errorf("/secrets/%s has mode %v, want 0400", f, fi.Mode().Perm())
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "api-key")); err != nil || string(b) != apiKey {
		t.Errorf("/secrets/api-key does not hold the api key (%v)", err)
	}
	name := "secrets-sidecar-test-source"
	removeContainer(t, name)
	got := docker(t, "run", "--name", name, "--label", label, "--network", "none", "--read-only", "--user", "65534:65534",
		"-v", vol+":/secrets:ro", imageBusybox, "-c", `set -a; . /secrets/db.env; printf '%s' "$password"`)
	docker(t, "rm", name)
	if got != password {
		t.Errorf("db.env sourced in busybox sh does not give back the password")
	}
}

// healthOutputs lists what the health check printed.
func healthOutputs(s state) []string {
	var out []string
	if s.State.Health != nil {
		for _, l := range s.State.Health.Log {
			out = append(out, l.Output)
		}
	}
	return out
}

// noSecrets fails the test if text shows any of the secrets.
func noSecrets(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s show a secret value", what)
		}
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
