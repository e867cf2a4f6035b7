package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

var (
	sigappOnce sync.Once
	sigappPath string
	sigappErr  error
)

// sigapp builds testdata/sigapp once and returns a copy of it named name
// in dir, so that tests can find it by process name.
func sigapp(t *testing.T, dir, name string) string {
	t.Helper()
	sigappOnce.Do(func() {
		d, err := os.MkdirTemp("", "sigapp-*")
		if err != nil {
			sigappErr = err
			return
		}
		sigappPath = filepath.Join(d, "sigapp")
		out, err := exec.CommandContext(context.Background(), "go", "build", "-o", sigappPath, "./testdata/sigapp").CombinedOutput()
		if err != nil {
			sigappErr = fmt.Errorf("go build sigapp: %w\n%s", err, out)
		}
	})
	if sigappErr != nil {
		t.Fatal(sigappErr)
	}
	raw, err := os.ReadFile(sigappPath)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// appLog reads the lines a sigapp recorded.
func appLog(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(string(raw), "\n", " \n"))
}

// count is how many lines of the app's log are exactly s.
func count(lines []string, s string) int {
	n := 0
	for _, l := range lines {
		if l == s {
			n++
		}
	}
	return n
}

// startApp runs a sigapp named name beside the sidecar; it is killed when
// the test ends.
func startApp(t *testing.T, dir, name string, env ...string) (logPath string) {
	t.Helper()
	logPath = filepath.Join(dir, name+".log")
	cmd := exec.CommandContext(context.Background(), sigapp(t, dir, name))
	cmd.Env = append([]string{"SIGAPP_LOG=" + logPath}, env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitFor(t, 10*time.Second, name+" to start", func() bool { return len(appLog(t, logPath)) > 0 })
	return logPath
}

// TestActionSignalOncePerRotation runs the real binary against the dev
// server with a signal action by process name: the application hears
// nothing when the files are first created or stay unchanged, exactly one
// SIGHUP after one secret changes, one per window when three change
// together (one window when the sidecar wrote the three files within the
// debounce of each other, as its own log times them), and one when a
// secret changed while the sidecar was down. The test waits for the
// sidecar's own events (reads, writes, action runs), never for a guessed
// time: "no more signals" is judged after the action ran and the sidecar
// then read every secret twice more without writing anything.
func TestActionSignalOncePerRotation(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	name := fmt.Sprintf("sapp%d", os.Getpid()%100000) // comm is at most 15 bytes
	log := startApp(t, dir, name)
	const debounce = 2 * time.Second
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "notify: {debounce: %s}\ndefaults:\n  refresh_interval: 1s\n  on_change: [{signal: {name: HUP, process: %s}}]\nsecrets:\n", debounce, name)
	for _, s := range []string{"a", "b", "c"} {
		srv.PutKV2(t, "secret", p+"/"+s, map[string]any{"v": s + "1"})
		fmt.Fprintf(&cfg, "  - {name: %s, path: %s/%s, destination: %s/out/%s, key: v}\n", s, p, s, dir, s)
	}
	cfgPath := writeConfig(t, dir, cfg.String())
	addr := freeAddr(t)
	env := []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token, "SIDECAR_HTTP_ADDR=" + addr}
	d := startDaemon(t, cfgPath, dir, env...)
	d.waitReady(t, 30*time.Second)
	sighups := func() int { return count(appLog(t, log), "SIGHUP") }

	// settled waits until every secret was read twice more after the
	// signal actions logged so far, and returns the writes and signal runs
	// seen by then: a later signal would need a later write.
	settled := func(d *daemon, runs int) (writes, actions int) {
		t.Helper()
		waitFor(t, 60*time.Second, fmt.Sprintf("%d signal action runs", runs), func() bool { return len(signalRuns(d)) >= runs })
		reads := metricSum(d.metrics(t), "secrets_sidecar_fetch_total", `result="success"`)
		waitFor(t, 60*time.Second, "two more reads of every secret", func() bool {
			return metricSum(d.metrics(t), "secrets_sidecar_fetch_total", `result="success"`) >= reads+6
		})
		return len(logLines(d, "secret file written")), len(signalRuns(d))
	}

	// Unchanged: 10 refresh cycles of every secret, not one signal.
	reads := metricSum(d.metrics(t), "secrets_sidecar_fetch_total", `result="success"`)
	waitFor(t, 120*time.Second, "30 unchanged reads", func() bool {
		return metricSum(d.metrics(t), "secrets_sidecar_fetch_total", `result="success"`) >= reads+30
	})
	if n := sighups(); n != 0 || len(signalRuns(d)) != 0 {
		t.Fatalf("%d SIGHUPs (%d action runs) while the files were created and then stayed unchanged, want 0", n, len(signalRuns(d)))
	}
	created := len(logLines(d, "secret file written"))

	srv.PutKV2(t, "secret", p+"/a", map[string]any{"v": "a2"})
	changed := time.Now()
	waitFor(t, 30*time.Second, "one SIGHUP after one secret changed", func() bool { return sighups() >= 1 })
	oneLatency := time.Since(changed)
	writes, runs := settled(d, 1)
	if n := sighups(); n != 1 || runs != 1 || writes != created+1 {
		t.Fatalf("%d SIGHUPs, %d action runs and %d writes after one change, want 1, 1 and 1", n, runs, writes-created)
	}

	for _, s := range []string{"a", "b", "c"} {
		srv.PutKV2(t, "secret", p+"/"+s, map[string]any{"v": s + "3"})
	}
	waitFor(t, 30*time.Second, "all three files", func() bool {
		for _, s := range []string{"a", "b", "c"} {
			if raw, _ := os.ReadFile(filepath.Join(dir, "out", s)); string(raw) != s+"3" {
				return false
			}
		}
		return true
	})
	writes3 := logLines(d, "secret file written")[writes:]
	if len(writes3) != 3 {
		t.Fatalf("%d writes for three changes, want 3", len(writes3))
	}
	spread := logTime(t, writes3[2]).Sub(logTime(t, writes3[0]))
	waitFor(t, 30*time.Second, "the signal for the three changes", func() bool { return sighups() >= 2 })
	_, runs = settled(d, 2)
	batches := signalRuns(d)[1:]
	var covered []string
	for _, b := range batches {
		for _, s := range b["secrets"].([]any) {
			covered = append(covered, s.(string))
		}
	}
	slices.Sort(covered)
	if n := sighups(); n != runs || !slices.Equal(covered, []string{"a", "b", "c"}) {
		t.Fatalf("%d SIGHUPs for %d action runs covering %v after three changes: want one SIGHUP per run, each secret in exactly one", n, runs, covered)
	}
	// The window opens at the first change: writes within the debounce of
	// it (with room for the log line coming just after the announcement)
	// are one batch.
	if spread < debounce-500*time.Millisecond && len(batches) != 1 {
		t.Fatalf("three writes %s apart (debounce %s) made %d batches, want 1", spread, debounce, len(batches))
	}
	body := d.metrics(t)
	if ok := metricSum(body, "secrets_sidecar_actions_total", `kind="signal"`, `result="success"`); int(ok) != runs {
		t.Errorf("actions_total{kind=signal,result=success} = %v, want %d", ok, runs)
	}
	if took, code := d.term(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d %s after SIGTERM", code, took)
	}

	// A rotation while the sidecar was down is a change at its next start.
	before := sighups()
	srv.PutKV2(t, "secret", p+"/b", map[string]any{"v": "b4"})
	d = startDaemon(t, cfgPath, dir, env...)
	d.waitReady(t, 30*time.Second)
	waitFor(t, 30*time.Second, "the SIGHUP for a change made while the sidecar was down", func() bool {
		return sighups() >= before+1
	})
	writes, runs = settled(d, 1)
	if n := sighups() - before; n != 1 || runs != 1 || writes != 1 {
		t.Fatalf("%d SIGHUPs, %d action runs and %d writes for one change while down, want 1 each", n, runs, writes)
	}
	if _, code := d.term(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	t.Logf("0 signals over 30 unchanged reads; one change -> 1 SIGHUP after %s (refresh 1s + debounce %s); three changes written %s apart -> %d batch(es); change while down -> 1 SIGHUP",
		oneLatency.Round(10*time.Millisecond), debounce, spread.Round(time.Millisecond), len(batches))
}

// logLines are the sidecar's JSON log lines with message msg, in order.
func logLines(d *daemon, msg string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(d.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// signalRuns are the log lines of the signal actions that ran.
func signalRuns(d *daemon) []map[string]any {
	var out []map[string]any
	for _, m := range logLines(d, "change action succeeded") {
		if m["kind"] == "signal" {
			out = append(out, m)
		}
	}
	return out
}

// logTime is a log line's ts.
func logTime(t *testing.T, m map[string]any) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(m["ts"]))
	if err != nil {
		t.Fatalf("log line without a time: %v", m)
	}
	return ts
}

// TestActionExecAndHTTP: an exec and an http action each run exactly once
// per rotation; a failing action is retried, reported in /ready, and the
// other secrets keep syncing and notifying.
func TestActionExecAndHTTP(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	var posts, failing atomic.Int64
	var bodies sync.Map
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/fail" {
			failing.Add(1)
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("X-Token") != "t0k3n" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		bodies.Store(posts.Add(1), string(b))
	}))
	t.Cleanup(hook.Close)
	execLog := filepath.Join(dir, "exec.log")
	srv.PutKV2(t, "secret", p+"/good", map[string]any{"v": "g1"})
	srv.PutKV2(t, "secret", p+"/bad", map[string]any{"v": "b1"})
	cfg := fmt.Sprintf(`notify: {debounce: 500ms, attempts: 3}
defaults: {refresh_interval: 1s}
secrets:
  - name: good
    path: %[1]s/good
    destination: %[2]s/out/good
    key: v
    on_change:
      - exec: {command: ["sh", "-c", "echo \"$SIDECAR_CHANGED $SIDECAR_CHANGED_FILES token=${VAULT_TOKEN:-none}\" >> %[3]s"]}
      - http: {url: "%[4]s/reload", headers: {X-Token: t0k3n}}
  - name: bad
    path: %[1]s/bad
    destination: %[2]s/out/bad
    key: v
    on_change:
      - http: {url: "%[4]s/fail"}
`, p, dir, execLog, hook.URL)
	cfgPath := writeConfig(t, dir, cfg)
	addr := freeAddr(t)
	d := startDaemon(t, cfgPath, dir, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_HTTP_ADDR="+addr)
	d.waitReady(t, 30*time.Second)
	// moreReads waits until the sidecar read both secrets twice more: any
	// action of an earlier write has run by then (a window is 500ms, the
	// refresh 1s, and actions run in order).
	moreReads := func() {
		t.Helper()
		reads := metricSum(d.metrics(t), "secrets_sidecar_fetch_total", `result="success"`)
		waitFor(t, 60*time.Second, "four more reads", func() bool {
			return metricSum(d.metrics(t), "secrets_sidecar_fetch_total", `result="success"`) >= reads+4
		})
	}
	moreReads()
	if posts.Load() != 0 || failing.Load() != 0 {
		t.Fatalf("actions ran for files that were only created: %d posts, %d failing", posts.Load(), failing.Load())
	}

	srv.PutKV2(t, "secret", p+"/good", map[string]any{"v": "g2"})
	srv.PutKV2(t, "secret", p+"/bad", map[string]any{"v": "b2"})
	waitFor(t, 30*time.Second, "the failing action's three attempts and the good actions", func() bool {
		return failing.Load() >= 3 && posts.Load() >= 1
	})
	// Both runs reported: their attempts are over; more would need a write.
	waitFor(t, 30*time.Second, "the runs' reports", func() bool {
		return metricSum(d.metrics(t), "secrets_sidecar_actions_total") >= 3
	})
	moreReads()
	if n := posts.Load(); n != 1 {
		t.Errorf("%d POSTs for one rotation, want 1", n)
	}
	if n := failing.Load(); n != 3 {
		t.Errorf("the failing action was tried %d times, want 3 (attempts)", n)
	}
	lines := strings.Split(strings.TrimSpace(readFile(t, execLog)), "\n")
	if want := fmt.Sprintf("good %s/out/good token=none", dir); len(lines) != 1 || lines[0] != want {
		t.Errorf("exec action ran %d times with %q, want once with %q", len(lines), lines, want)
	}
	if b, _ := bodies.Load(int64(1)); !strings.Contains(fmt.Sprint(b), `"secrets":["good"]`) {
		t.Errorf("http body %v does not name the secret", b)
	}

	// /ready shows the failure per secret and stays 200.
	resp, err := http.Get("http://" + addr + "/ready")
	if err != nil {
		t.Fatal(err)
	}
	var snap status.Snapshot
	err = json.NewDecoder(resp.Body).Decode(&snap)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/ready: %d %v", resp.StatusCode, err)
	}
	for _, s := range snap.Secrets {
		switch a := s.LastAction; {
		case a == nil:
			t.Errorf("/ready: %s has no last_action", s.Name)
		case s.Name == "bad" && (a.Result != "error" || a.Attempts != 3 || a.Kind != "http"):
			t.Errorf("/ready: bad's last_action = %+v, want an http error after 3 attempts", *a)
		case s.Name == "good" && a.Result != "success":
			t.Errorf("/ready: good's last_action = %+v, want success", *a)
		}
	}

	// The other secret keeps syncing and notifying after the failure.
	srv.PutKV2(t, "secret", p+"/good", map[string]any{"v": "g3"})
	waitFor(t, 15*time.Second, "the good secret's next rotation", func() bool { return posts.Load() >= 2 })
	if raw, _ := os.ReadFile(filepath.Join(dir, "out", "good")); string(raw) != "g3" {
		t.Errorf("good file = %q after the failure, want g3", raw)
	}
	body := d.metrics(t)
	if n := metricSum(body, "secrets_sidecar_actions_total", `kind="http"`, `result="error"`); n != 1 {
		t.Errorf("actions_total{kind=http,result=error} = %v, want 1 (one run, three attempts)", n)
	}
	if strings.Contains(d.logs.String(), "g3") || strings.Contains(d.logs.String(), "t0k3n") {
		t.Error("a secret value or the header token reached the log")
	}
	if _, code := d.term(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// TestExecSupervisor runs `secrets-sidecar exec` with a sigapp child: the
// child sees the --env secret in its environment and no Vault token; a
// change to that secret restarts it with the new value; a change to
// another secret's file sends --signal; SIGTERM goes to the child, whose
// exit code becomes the sidecar's; SIGKILL of the sidecar leaves no child.
func TestExecSupervisor(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/env", map[string]any{"DB_PASS": "one"})
	srv.PutKV2(t, "secret", p+"/file", map[string]any{"v": "f1"})
	cfg := fmt.Sprintf(`notify: {debounce: 500ms}
defaults: {refresh_interval: 1s}
secrets:
  - {name: env, path: %[1]s/env, destination: %[2]s/out/env, format: env}
  - {name: file, path: %[1]s/file, destination: %[2]s/out/file, key: v}
`, p, dir)
	cfgPath := writeConfig(t, dir, cfg)
	app := sigapp(t, dir, "child")
	log := filepath.Join(dir, "child.log")

	run := func(t *testing.T) (*exec.Cmd, chan error) {
		cmd := exec.CommandContext(context.Background(), sidecarBinary(t), "exec", "--config", cfgPath, "--env", "env", "--", app)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token,
			"SIDECAR_STATUS_FILE=" + filepath.Join(dir, "status.json"), "SIDECAR_LOG_LEVEL=debug",
			"SIGAPP_LOG=" + log, "SIGAPP_ENV=DB_PASS", "SIGAPP_EXIT=3"}
		var out strings.Builder
		var mu sync.Mutex
		cmd.Stdout, cmd.Stderr = lockedWriter{&mu, &out}, lockedWriter{&mu, &out}
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			if t.Failed() {
				mu.Lock()
				t.Logf("sidecar output:\n%s", out.String())
				mu.Unlock()
			}
		})
		return cmd, done
	}
	cmd, done := run(t)
	waitFor(t, 30*time.Second, "the child to start with the secret", func() bool {
		return strings.Contains(readOrEmpty(log), "DB_PASS=one")
	})
	first := childPID(t, log, "one")

	srv.PutKV2(t, "secret", p+"/env", map[string]any{"DB_PASS": "two"})
	waitFor(t, 15*time.Second, "the child to restart with the new value", func() bool {
		return strings.Contains(readOrEmpty(log), "DB_PASS=two")
	})
	second := childPID(t, log, "two")
	if second == first {
		t.Fatal("the child was not restarted")
	}
	if processAlive(first) {
		t.Errorf("the old child %d is still running", first)
	}
	if count(appLog(t, log), "SIGTERM") != 1 {
		t.Errorf("the old child did not get exactly one SIGTERM (the stop signal): %q", appLog(t, log))
	}

	srv.PutKV2(t, "secret", p+"/file", map[string]any{"v": "f2"})
	waitFor(t, 15*time.Second, "the file-only change's SIGHUP", func() bool { return count(appLog(t, log), "SIGHUP") == 1 })
	if childPID(t, log, "two") != second || !processAlive(second) {
		t.Error("a file-only change restarted the child")
	}
	if got := readOrEmpty(log); strings.Contains(got, "vault_token_set=true") || !strings.Contains(got, "vault_token_set=false") {
		t.Errorf("the child's view of VAULT_TOKEN: %q", got)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("exec did not exit after SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Errorf("exit code %d after SIGTERM, want the child's 3", code)
	}
	if count(appLog(t, log), "SIGTERM") != 2 {
		t.Errorf("the child did not get the forwarded SIGTERM: %q", appLog(t, log))
	}

	// SIGKILL of the sidecar: the child goes too.
	cmd, done = run(t)
	waitFor(t, 30*time.Second, "the child to start again", func() bool { return strings.Count(readOrEmpty(log), "ready ") == 3 })
	lines := appLog(t, log)
	var third int
	_, _ = fmt.Sscan(lines[len(lines)-1], &third)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-done
	waitFor(t, 10*time.Second, "the child to die with the sidecar", func() bool { return !processAlive(third) })
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func readOrEmpty(path string) string {
	raw, _ := os.ReadFile(path)
	return string(raw)
}

// childPID is the PID of the sigapp that started with DB_PASS=value.
func childPID(t *testing.T, log, value string) int {
	t.Helper()
	for _, line := range strings.Split(readOrEmpty(log), "\n") {
		var pid int
		var v string
		if n, _ := fmt.Sscanf(line, "pid=%d DB_PASS=%s", &pid, &v); n == 2 && v == value {
			return pid
		}
	}
	t.Fatalf("no child started with DB_PASS=%s", value)
	return 0
}

// processAlive reports whether pid runs (a zombie counts as gone).
func processAlive(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(raw), ')')
	return i > 0 && i+2 < len(raw) && raw[i+2] != 'Z'
}

// TestExecFailures: exec mode's own exit codes. A secret that cannot be
// read ends the initial sync with 1 (naming it) and the command never
// starts; a command that does not exist is 127; an --env that names no
// secret, no command or a bad flag value is 2 with one line.
func TestExecFailures(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/ok", map[string]any{"v": "x"})
	good := writeConfig(t, dir, fmt.Sprintf("secrets: [{name: ok, path: %s/ok, destination: %s/out/ok, key: v}]\n", p, dir))
	missingDir := filepath.Join(dir, "m")
	if err := os.Mkdir(missingDir, 0o700); err != nil {
		t.Fatal(err)
	}
	missing := writeConfig(t, missingDir, fmt.Sprintf("secrets: [{name: gone, path: %s/never-written, destination: %s/out/gone, key: v}]\n", p, dir))
	marker := filepath.Join(dir, "started")
	env := []string{"PATH=" + os.Getenv("PATH"), "VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token,
		"SIDECAR_STATUS_FILE=" + filepath.Join(dir, "status.json")}
	for _, c := range []struct {
		name string
		args []string
		code int
		out  string // in stderr or the log
	}{
		{"secret cannot be read", []string{"--config", missing, "--timeout", "2s", "--", "sh", "-c", "touch " + marker}, 1, "gone"},
		{"command not found", []string{"--config", good, "--", filepath.Join(dir, "no-such-command")}, 127, "no-such-command"},
		{"--env names no secret", []string{"--config", good, "--env", "nosuch", "--", "true"}, 2, "exec --env nosuch: no secret of that name"},
		{"no command", []string{"--config", good}, 2, "exec: no command"},
		{"bad --on-change", []string{"--config", good, "--on-change", "reboot", "--", "true"}, 2, `--on-change "reboot"`},
		{"bad --signal", []string{"--config", good, "--signal", "SIGNOPE", "--", "true"}, 2, `--signal "SIGNOPE": not a signal name`},
	} {
		cmd := exec.CommandContext(t.Context(), sidecarBinary(t), append([]string{"exec"}, c.args...)...)
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != c.code || !strings.Contains(string(out), c.out) {
			t.Errorf("%s: exit %d, want %d with %q in:\n%s", c.name, code, c.code, c.out, out)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command started although the initial sync failed")
	}
}
