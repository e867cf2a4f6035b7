//go:build containers

package containers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// What examples/compose/test/seed/seed.sh writes (the same values as
// deployments/seed/seed.sh).
const (
	seededUsername = "app"
	seededPassword = `s3cr3t pa$$word "quoted"`
	seededAPIKey   = "demo-api-key-v2" // the second of two versions
)

// composeProject is one Compose file of examples/compose/test, up under a
// project name of its own, with the dev server and the sidecar's HTTP
// server on free ports of 127.0.0.1.
type composeProject struct {
	t                      *testing.T
	name, file             string
	vaultPort, sidecarPort string
	since                  time.Time // before `up`: where its events begin
}

// composeUp brings a test Compose file up (`docker-compose up --detach`,
// which returns once every depends_on condition held and every service
// started) and tears it down, containers and volumes, when the test ends.
// It fails the test if Compose created a network.
func composeUp(t *testing.T, project, file string) *composeProject {
	t.Helper()
	images(t)
	abs, err := filepath.Abs(filepath.Join("../../examples/compose/test", file))
	if err != nil {
		t.Fatal(err)
	}
	p := &composeProject{t: t, name: project, file: abs, vaultPort: freePort(t), sidecarPort: freePort(t)}
	p.down() // a leftover from a failed run
	p.since = time.Now()
	before := networks(t)
	t.Cleanup(func() {
		if t.Failed() {
			r := p.compose("logs", "--no-color", "--timestamps")
			t.Logf("docker-compose logs:\n%s%s", r.stdout, r.stderr)
		}
		p.down()
		if after := networks(t); after != before {
			t.Errorf("networks after the test: %s, before: %s", after, before)
		}
	})
	start := time.Now()
	if r := p.compose("up", "--detach", "--no-color"); r.code != 0 {
		t.Fatalf("docker-compose up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("%s: `docker-compose up --detach` returned after %s", file, time.Since(start).Round(time.Millisecond))
	if after := networks(t); after != before {
		t.Errorf("docker-compose created a network: %s, before: %s (every service must use network_mode: host)", after, before)
	}
	return p
}

func (p *composeProject) compose(args ...string) result {
	p.t.Helper()
	env := []string{"VAULT_PORT=" + p.vaultPort, "SIDECAR_HTTP_PORT=" + p.sidecarPort}
	return execute(p.t, 3*time.Minute, env, "docker-compose", append([]string{"--project-name", p.name, "--file", p.file}, args...)...)
}

func (p *composeProject) down() {
	p.t.Helper()
	if r := p.compose("down", "--volumes", "--remove-orphans", "--timeout", "20"); r.code != 0 {
		p.t.Errorf("docker-compose down: exit %d\n%s", r.code, r.stderr)
	}
}

// container is the ID of the service's container.
func (p *composeProject) container(service string) string {
	p.t.Helper()
	r := p.compose("ps", "--quiet", service)
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || id == "" || strings.Contains(id, "\n") {
		p.t.Fatalf("docker-compose ps %s: exit %d, %q %s", service, r.code, id, r.stderr)
	}
	return id
}

// vault is a root client of the project's dev server.
func (p *composeProject) vault() *api.Client {
	p.t.Helper()
	c, err := api.NewClient(&api.Config{Address: "http://127.0.0.1:" + p.vaultPort})
	if err != nil {
		p.t.Fatal(err)
	}
	c.SetToken("root")
	return c
}

// event is one of the engine's container events (`docker events`).
type event struct {
	Action   string
	TimeNano int64 `json:"timeNano"`
	Actor    struct{ Attributes map[string]string }
}

// events returns the project's container events from since until now: the
// engine's own record of when each container started, died (with its exit
// code) and changed health, in order.
func (p *composeProject) events(since time.Time) []event {
	p.t.Helper()
	unix := func(t time.Time) string { return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond()) }
	out := docker(p.t, "events", "--since", unix(since), "--until", unix(time.Now()),
		"--filter", "type=container", "--filter", "label=com.docker.compose.project="+p.name, "--format", "{{json .}}")
	var evs []event
	for _, line := range strings.Split(out, "\n") {
		var e event
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			p.t.Fatalf("docker events: %v: %s", err, line)
		}
		evs = append(evs, e)
	}
	return evs
}

// first is the time of a service's first event with action (and, for
// "die", exit code 0), or the zero time.
func first(evs []event, service, action string) time.Time {
	for _, e := range evs {
		if e.Actor.Attributes["com.docker.compose.service"] != service || e.Action != action {
			continue
		}
		if action == "die" && e.Actor.Attributes["exitCode"] != "0" {
			continue
		}
		return time.Unix(0, e.TimeNano)
	}
	return time.Time{}
}

// order checks, from the engine's events, that service started only after
// dep reached action (health_status: healthy, or die with exit code 0), and
// logs the gap: what depends_on promises.
func order(t *testing.T, evs []event, service, dep, action string) {
	t.Helper()
	began, after := first(evs, service, "start"), first(evs, dep, action)
	switch {
	case began.IsZero():
		t.Errorf("%s never started", service)
	case after.IsZero():
		t.Errorf("%s started, but %s never reached %q", service, dep, action)
	case began.Before(after):
		t.Errorf("%s started %s before %s reached %q", service, after.Sub(began), dep, action)
	default:
		t.Logf("%s started %s after %s reached %q", service, began.Sub(after).Round(time.Millisecond), dep, action)
	}
}

// appReads waits for the app's report of what it read: digests of the
// sourced password and of the api key file, then the example app's own
// line, and checks them against what was seeded.
func appReads(t *testing.T, app string) {
	t.Helper()
	logs := waitLogs(t, app, time.Minute,
		"app-test: db.env sourced: password sha256 "+sha(seededPassword),
		"app-test: api-key sha256 "+sha(seededAPIKey),
		fmt.Sprintf("app: connected to db.internal:5432/app as %s (password: %d characters, api key: %d characters)",
			seededUsername, len(seededPassword), len(seededAPIKey)))
	noSecrets(t, "the app's output", logs, []string{seededPassword, seededAPIKey})
	t.Logf("app: read the seeded password (sourcing db.env) and api key; the example app.sh connected")
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// noRestarts fails the test if a service's container restarted.
func noRestarts(t *testing.T, p *composeProject, services ...string) {
	t.Helper()
	for _, svc := range services {
		if n := inspect(t, p.container(svc)).RestartCount; n != 0 {
			t.Errorf("%s restarted %d times", svc, n)
		}
	}
}

// stopApp stops the app's container: examples/compose/app/app.sh, PID 1
// there, traps SIGTERM and exits 0 at once; without the trap the kernel
// would not deliver SIGTERM to it and Docker would SIGKILL it at the stop
// timeout (exit code 137).
func stopApp(t *testing.T, app string) {
	t.Helper()
	start := time.Now()
	docker(t, "stop", "--time", "10", app)
	took := time.Since(start)
	if code := inspect(t, app).State.ExitCode; code != 0 || took > 5*time.Second {
		t.Errorf("app: docker stop -t 10 took %s, exit code %d; want exit code 0 well before the timeout (app.sh traps SIGTERM)",
			took.Round(time.Millisecond), code)
	}
	waitLogs(t, app, 10*time.Second, "app: SIGTERM or SIGINT, exiting")
	t.Logf("app: docker stop took %s, exit code 0", took.Round(time.Millisecond))
}

// TestComposeSidecar: examples/compose/test/docker-compose.yml, the sidecar
// pattern. The dev server turns healthy, the seed writes the secrets and
// the AppRole and exits 0, the sidecar starts after that and turns healthy,
// and only then the app starts, reads the files and finds the seeded
// values. A change in Vault reaches the app through the shared tmpfs
// volume; `docker stop` ends the sidecar with exit code 0.
func TestComposeSidecar(t *testing.T) {
	p := composeUp(t, "secrets-sidecar-test-sidecar", "docker-compose.yml")
	seed, sidecar, app := p.container("vault-seed"), p.container("secrets-sidecar"), p.container("app")
	if s := inspect(t, seed); s.State.Running || s.State.ExitCode != 0 {
		t.Fatalf("vault-seed: %s, exit %d, want exited 0", s.State.Status, s.State.ExitCode)
	}
	if s := inspect(t, sidecar); s.State.Health == nil || s.State.Health.Status != "healthy" {
		t.Errorf("secrets-sidecar: health %+v, want healthy", s.State.Health)
	}
	evs := p.events(p.since)
	order(t, evs, "vault-seed", "vault", "health_status: healthy")
	order(t, evs, "secrets-sidecar", "vault-seed", "die")
	order(t, evs, "app", "secrets-sidecar", "health_status: healthy")
	appReads(t, app)
	resp, err := http.Get("http://127.0.0.1:" + p.sidecarPort + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the sidecar's GET /ready on the host network: %s", resp.Status)
	}

	// A change in Vault: the sidecar rewrites the file within its refresh
	// interval (2s) and the app sees it within its poll (5s).
	rotated := "rotated-" + randomHex(t)
	start := time.Now()
	if _, err := p.vault().KVv2("secret").Put(t.Context(), "demo/api", map[string]any{"api_key": rotated}); err != nil {
		t.Fatal(err)
	}
	waitLogs(t, app, time.Minute, "app: secrets changed on disk, reloading",
		fmt.Sprintf("api key: %d characters)", len(rotated)))
	t.Logf("a new api key in Vault reached the app in %s", time.Since(start).Round(time.Millisecond))
	noRestarts(t, p, "vault", "secrets-sidecar", "app")

	start = time.Now()
	docker(t, "stop", "--time", "20", sidecar)
	if s := inspect(t, sidecar); s.State.ExitCode != 0 {
		t.Errorf("secrets-sidecar after docker stop: exit code %d, want 0", s.State.ExitCode)
	}
	r := dockerTry(t, "logs", sidecar)
	noSecrets(t, "the sidecar's logs", r.stdout+r.stderr, []string{seededPassword, seededAPIKey, rotated})
	t.Logf("docker stop -t 20 secrets-sidecar: %s, exit code 0", time.Since(start).Round(time.Millisecond))
	stopApp(t, app)
}

// TestComposeInit: examples/compose/test/docker-compose.init.yml, the
// init-container pattern. `secrets-sidecar once` writes every file into a
// named volume and exits 0; the app starts only after that
// (service_completed_successfully) and finds the seeded values.
func TestComposeInit(t *testing.T) {
	p := composeUp(t, "secrets-sidecar-test-init", "docker-compose.init.yml")
	for _, svc := range []string{"vault-seed", "secrets-init"} {
		if s := inspect(t, p.container(svc)); s.State.Running || s.State.ExitCode != 0 {
			t.Fatalf("%s: %s, exit %d, want exited 0", svc, s.State.Status, s.State.ExitCode)
		}
	}
	app := p.container("app")
	evs := p.events(p.since)
	order(t, evs, "vault-seed", "vault", "health_status: healthy")
	order(t, evs, "secrets-init", "vault-seed", "die")
	order(t, evs, "app", "secrets-init", "die")
	appReads(t, app)
	noRestarts(t, p, "vault", "app")
	stopApp(t, app)
}
