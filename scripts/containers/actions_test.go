//go:build containers

package containers

import (
	"bufio"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hupLine is app.sh's line for each SIGHUP it handles: "app: SIGHUP (N so
// far), reloading", N counting every SIGHUP its trap ran for.
var hupLine = regexp.MustCompile(`app: SIGHUP \((\d+) so far\), reloading`)

// hups is the highest count app.sh reported in logs (0 when none).
func hups(logs string) int {
	n := 0
	for _, m := range hupLine.FindAllStringSubmatch(logs, -1) {
		if c, _ := strconv.Atoi(m[1]); c > n {
			n = c
		}
	}
	return n
}

// logs is a container's output, stdout and stderr merged in the order the
// engine received the lines (app.sh writes to stdout, the sidecar logs to
// stderr).
func logs(t *testing.T, container string) string {
	t.Helper()
	r := dockerTry(t, "logs", "--timestamps", container)
	type line struct {
		at   time.Time
		text string
	}
	var lines []line
	for _, l := range strings.Split(r.stdout+r.stderr, "\n") {
		stamp, text, ok := strings.Cut(l, " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if ok && err == nil {
			lines = append(lines, line{at, text})
		}
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.text + "\n")
	}
	return b.String()
}

// waitHUPs waits until app.sh has reported want SIGHUPs, then waits settle
// longer and fails the test if more came: a second SIGHUP for the same
// rotation (a second window, a retry) would come within that time. It
// counts in the app's output after the last line holding from (all of it
// when from is ""), and returns how long the first wait took and that
// output.
func waitHUPs(t *testing.T, app string, want int, settle time.Duration, from string) (time.Duration, string) {
	t.Helper()
	since := func() string {
		out := logs(t, app)
		if from == "" {
			return out
		}
		return after(out, from)
	}
	start := time.Now()
	for {
		out := since()
		n := hups(out)
		if n > want {
			t.Fatalf("app: %d SIGHUPs, want %d:\n%s", n, want, out)
		}
		if n == want {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("app: %d SIGHUPs after %s, want %d:\n%s", n, time.Minute, want, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
	time.Sleep(settle)
	out := since()
	if n := hups(out); n != want {
		t.Fatalf("app: %d SIGHUPs %s after the %s, want exactly %d:\n%s", n, settle, ordinal(want), want, out)
	}
	return took, out
}

func ordinal(n int) string {
	switch n {
	case 1:
		return "first"
	case 2:
		return "second"
	}
	return fmt.Sprintf("%dth", n)
}

// after is what follows the last occurrence of marker in s ("" when none).
func after(s, marker string) string {
	i := strings.LastIndex(s, marker)
	if i < 0 {
		return ""
	}
	return s[i+len(marker):]
}

// metric is the value of one sample of the sidecar's /metrics (its name
// with labels, exactly as exposed), or -1 when it is not there.
func metric(t *testing.T, addr, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("/metrics: %s: %v", sample, err)
			}
			return f
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return -1
}

// pidMode is a container's HostConfig.PidMode.
func pidMode(t *testing.T, container string) string {
	t.Helper()
	return docker(t, "inspect", "--format", "{{.HostConfig.PidMode}}", container)
}

// TestComposeSignal: examples/compose/test/docker-compose.signal.yml, a
// `signal` action across containers. The sidecar joins the app's PID
// namespace (pid: "service:app"), so the app starts first and waits for
// its files; the app (app.sh, PID 1 there, with a HUP trap) gets exactly
// one SIGHUP when one secret is rotated, and exactly one more when three
// are rotated together. When the app restarts, the sidecar dies with the
// namespace and its restart policy brings it back into the new one, where
// the next rotation signals the new app; SIGTERM ends the app at once
// with exit code 0.
func TestComposeSignal(t *testing.T) {
	p := composeUp(t, "secrets-sidecar-test-signal", "docker-compose.signal.yml")
	sidecar, app := p.container("secrets-sidecar"), p.container("app")
	if got, want := pidMode(t, sidecar), "container:"+app; got != want {
		t.Fatalf("the sidecar's PID mode: %q, want %q", got, want)
	}
	evs := p.events(p.since)
	order(t, evs, "secrets-sidecar", "vault-seed", "die")
	if appStart, sidecarStart := first(evs, "app", "start"), first(evs, "secrets-sidecar", "start"); appStart.IsZero() || !appStart.Before(sidecarStart) {
		t.Errorf("app started at %v, the sidecar at %v: the app must start first (the sidecar joins its PID namespace)", appStart, sidecarStart)
	}
	waitHealthy(t, sidecar, time.Minute)
	appReads(t, app)
	if n := hups(logs(t, app)); n != 0 {
		t.Fatalf("app: %d SIGHUPs before any rotation (files created at start must not signal)", n)
	}
	v := p.vault().KVv2("secret")
	addr := "127.0.0.1:" + p.sidecarPort

	// One secret: one SIGHUP.
	key := "rotated-" + randomHex(t)
	start := time.Now()
	if _, err := v.Put(t.Context(), "demo/api", map[string]any{"api_key": key}); err != nil {
		t.Fatal(err)
	}
	took, out := waitHUPs(t, app, 1, 4*time.Second, "")
	t.Logf("one secret rotated: one SIGHUP reached the app %s after the write to Vault (%s of waiting), none after it in 4s",
		(time.Since(start) - 4*time.Second).Round(time.Millisecond), took.Round(time.Millisecond))
	if !strings.Contains(after(out, "SIGHUP (1 so far)"), fmt.Sprintf("api key: %d characters)", len(key))) {
		t.Errorf("app: after the SIGHUP it did not load the new api key:\n%s", out)
	}

	// Three secrets at once: one more SIGHUP, after which every new value
	// is in place.
	password := "rotated pass " + randomHex(t)
	key = "rotated-again-" + randomHex(t)
	start = time.Now()
	for path, data := range map[string]map[string]any{
		"demo/db":     {"username": seededUsername, "password": password, "host": "db.internal", "port": "5432", "database": "app"},
		"demo/api":    {"api_key": key},
		"demo/config": {"log_level": "debug"},
	} {
		if _, err := v.Put(t.Context(), path, data); err != nil {
			t.Fatal(err)
		}
	}
	took, out = waitHUPs(t, app, 2, 5*time.Second, "")
	t.Logf("three secrets rotated together: one SIGHUP reached the app %s after the writes (%s of waiting), none after it in 5s",
		(time.Since(start) - 5*time.Second).Round(time.Millisecond), took.Round(time.Millisecond))
	if !strings.Contains(after(out, "SIGHUP (2 so far)"), fmt.Sprintf("(password: %d characters, api key: %d characters)", len(password), len(key))) {
		t.Errorf("app: after the second SIGHUP it did not load the new password and api key:\n%s", out)
	}

	// The sidecar's account: two signal runs, both succeeded at the first
	// attempt, each reaching one process.
	if ok, failed := metric(t, addr, `secrets_sidecar_actions_total{kind="signal",result="success"}`),
		metric(t, addr, `secrets_sidecar_actions_total{kind="signal",result="error"}`); ok != 2 || failed != 0 {
		t.Errorf("the sidecar's signal action runs: %v succeeded, %v failed; want 2 and 0", ok, failed)
	}
	sidecarLogs := logs(t, sidecar)
	if n := strings.Count(sidecarLogs, "change action succeeded"); n != 2 || strings.Count(sidecarLogs, `"signalled": 1`) != 2 {
		t.Errorf("the sidecar logged %d successful actions, want 2, each signalling one process:\n%s", n, sidecarLogs)
	}
	noSecrets(t, "the sidecar's logs", sidecarLogs, []string{seededPassword, seededAPIKey, password, key})
	noSecrets(t, "the app's output", logs(t, app), []string{seededPassword, seededAPIKey, password, key})
	noRestarts(t, p, "vault", "secrets-sidecar", "app")

	// The app restarts: its PID namespace ends with it, and the kernel
	// kills the sidecar in it (SIGKILL); the sidecar's restart policy starts
	// it again, in the app's new namespace, where it finds the app again.
	since := time.Now()
	docker(t, "restart", "--time", "10", app)
	code, died := dieCode(p, since, "secrets-sidecar")
	for deadline := time.Now().Add(30 * time.Second); !died && time.Now().Before(deadline); code, died = dieCode(p, since, "secrets-sidecar") {
		time.Sleep(200 * time.Millisecond)
	}
	if !died || code != 137 {
		t.Fatalf("the app restarted: the sidecar died %v, exit code %d, want 137 (killed with the PID namespace)", died, code)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if s := inspect(t, sidecar).State; s.Running && !s.Restarting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sidecar was not started again after the app's restart:\n%s", logs(t, sidecar))
		}
	}
	waitHealthy(t, sidecar, time.Minute)
	if got, want := pidMode(t, sidecar), "container:"+app; got != want {
		t.Errorf("the restarted sidecar's PID mode: %q, want %q", got, want)
	}
	t.Logf("the app restarted: the sidecar died with its PID namespace (exit 137), its restart policy started it again, healthy %s after `docker restart` began",
		time.Since(since).Round(time.Millisecond))
	key = "after-restart-" + randomHex(t)
	if _, err := v.Put(t.Context(), "demo/api", map[string]any{"api_key": key}); err != nil {
		t.Fatal(err)
	}
	_, out = waitHUPs(t, app, 1, 4*time.Second, "app: SIGTERM or SIGINT, exiting")
	if !strings.Contains(after(out, "SIGHUP (1 so far)"), fmt.Sprintf("api key: %d characters)", len(key))) {
		t.Errorf("app: after its restart, the SIGHUP did not load the new api key:\n%s", out)
	}
	t.Logf("after both restarts, a rotation sent the app (a new PID 1) exactly one SIGHUP")

	// Down in Compose's order: the sidecar (it depends on the app), then
	// the app, which as PID 1 ends on SIGTERM through its trap.
	docker(t, "stop", "--time", "20", sidecar)
	if code := inspect(t, sidecar).State.ExitCode; code != 0 {
		t.Errorf("secrets-sidecar after docker stop: exit code %d, want 0", code)
	}
	stopApp(t, app)
}

// childStopped is the supervisor's log line for a child that ended with
// exit code 0 when it was stopped for a restart.
var childStopped = regexp.MustCompile(`child stopped\t\{[^\n]*"exit_code": 0,`)

// dieCode is the exit code of the service's latest "die" event since
// since, and whether there was one.
func dieCode(p *composeProject, since time.Time, service string) (int, bool) {
	p.t.Helper()
	code, found := 0, false
	for _, e := range p.events(since) {
		if e.Actor.Attributes["com.docker.compose.service"] == service && e.Action == "die" {
			c, err := strconv.Atoi(e.Actor.Attributes["exitCode"])
			if err != nil {
				p.t.Fatalf("die event of %s: exitCode %q", service, e.Actor.Attributes["exitCode"])
			}
			code, found = c, true
		}
	}
	return code, found
}

// TestComposeExec: examples/compose/test/docker-compose.exec.yml, exec mode
// in an app image built FROM busybox with the sidecar binary COPY --from
// the sidecar's image. The child (app/report.sh, then app.sh) starts with
// secret db in its environment; a new password in Vault restarts it with
// the new value; a new api key (a file only) sends it SIGHUP; the
// container exits with the child's exit code: 128+10 when a forwarded
// SIGUSR1 kills it, 0 when `docker stop`'s forwarded SIGTERM ends it.
func TestComposeExec(t *testing.T) {
	p := composeUp(t, "secrets-sidecar-test-exec", "docker-compose.exec.yml")
	app := p.container("app")
	healthy := waitHealthy(t, app, time.Minute)
	t.Logf("app: healthy (isready in exec mode) %s after `up` returned", healthy.Round(time.Millisecond))
	waitLogs(t, app, time.Minute,
		"app-test: environment: password sha256 "+sha(seededPassword),
		"app: database settings from the environment",
		fmt.Sprintf("(password: %d characters, api key: %d characters)", len(seededPassword), len(seededAPIKey)))
	// The sidecar is PID 1 of the container; the child runs app.sh.
	top := docker(t, "top", app, "-o", "pid,ppid,comm,args")
	if !strings.Contains(top, "/secrets-sidecar exec --env db --") || !strings.Contains(top, "app.sh") {
		t.Errorf("docker top: want secrets-sidecar exec and its child app.sh:\n%s", top)
	}
	v := p.vault().KVv2("secret")

	// The environment secret changes: the child is stopped (SIGTERM, which
	// app.sh traps) and started again with the new password.
	password := "exec pass " + randomHex(t)
	start := time.Now()
	if _, err := v.Put(t.Context(), "demo/db", map[string]any{
		"username": seededUsername, "password": password, "host": "db.internal", "port": "5432", "database": "app",
	}); err != nil {
		t.Fatal(err)
	}
	waitLogs(t, app, time.Minute, "app-test: environment: password sha256 "+sha(password))
	t.Logf("a new password in Vault restarted the child with it in %s", time.Since(start).Round(time.Millisecond))
	// The old child ended on the SIGTERM (app.sh's trap: exit code 0, not
	// 143), the new one has the new password. (Lines of app.sh, on stdout,
	// keep their order; the sidecar's log, on stderr, may interleave out
	// of order with them by a fraction of a millisecond.)
	out := logs(t, app)
	if !strings.Contains(out, "environment secrets changed; restarting the child") ||
		!childStopped.MatchString(out) || !strings.Contains(out, "app: SIGTERM or SIGINT, exiting") ||
		!strings.Contains(after(out, "password sha256 "+sha(password)), fmt.Sprintf("(password: %d characters,", len(password))) {
		t.Errorf("want the sidecar's restart, the old child's exit 0 on SIGTERM, and the new password's length:\n%s", out)
	}
	if hups(out) != 0 {
		t.Errorf("the environment change signalled the child, want only a restart:\n%s", out)
	}

	// A file-only change: SIGHUP to the running child, which reloads the
	// api key; no restart.
	key := "exec-key-" + randomHex(t)
	start = time.Now()
	if _, err := v.Put(t.Context(), "demo/api", map[string]any{"api_key": key}); err != nil {
		t.Fatal(err)
	}
	_, out = waitHUPs(t, app, 1, 3*time.Second, "")
	t.Logf("a new api key in Vault sent the child one SIGHUP (%s, including 3s without another)", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(after(out, "SIGHUP (1 so far)"), fmt.Sprintf("api key: %d characters)", len(key))) {
		t.Errorf("app: after the SIGHUP it did not load the new api key:\n%s", out)
	}
	if n := strings.Count(out, "environment secrets changed; restarting the child"); n != 1 {
		t.Errorf("the child was restarted %d times, want once (for the password only):\n%s", n, out)
	}
	noSecrets(t, "the container's output", out, []string{seededPassword, seededAPIKey, password, key})

	// The container's exit code is the child's: SIGUSR1, forwarded to
	// app.sh, which does not trap it, kills it: 128+10.
	since := time.Now()
	docker(t, "kill", "--signal", "USR1", app)
	deadline := time.Now().Add(30 * time.Second)
	code, died := dieCode(p, since, "app")
	for ; !died && time.Now().Before(deadline); code, died = dieCode(p, since, "app") {
		time.Sleep(200 * time.Millisecond)
	}
	if !died || code != 128+10 {
		t.Fatalf("after docker kill --signal USR1: died %v, exit code %d, want 138 (the child's, killed by SIGUSR1):\n%s", died, code, logs(t, app))
	}
	waitLogs(t, app, 10*time.Second, "command exited; stopping")
	t.Logf("docker kill --signal USR1: the child died of it and the container exited %d", code)

	// docker stop: SIGTERM, forwarded; app.sh exits 0 at once, and so does
	// the container. (A restart policy may have started it again already.)
	if !inspect(t, app).State.Running {
		docker(t, "start", app)
	}
	waitHealthy(t, app, time.Minute)
	since = time.Now()
	docker(t, "stop", "--time", "10", app)
	took := time.Since(since)
	code, died = dieCode(p, since, "app")
	if !died || code != 0 || took > 5*time.Second {
		t.Errorf("docker stop -t 10: took %s, exit code %d (died %v), want 0 well before the timeout", took.Round(time.Millisecond), code, died)
	}
	out = logs(t, app)
	if !strings.Contains(after(out, "app-test: environment"), "app: SIGTERM or SIGINT, exiting") {
		t.Errorf("after docker stop: no sign that the child ended on the forwarded SIGTERM:\n%s", out)
	}
	t.Logf("docker stop: %s, the child exited 0 on the forwarded SIGTERM, and the container with it", took.Round(time.Millisecond))
}
