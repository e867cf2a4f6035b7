package notify_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// sidecarEnv is an environment as the sidecar may have it: credentials
// among harmless settings.
func sidecarEnv() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=/home/app",
		"APP_SETTING=kept",
		"VAULT_TOKEN=hvs.token-value-0001",
		"VAULT_ROLE_ID=role-id-value-0002",
		"VAULT_SECRET_ID=secret-id-value-0003",
		"VAULT_UNWRAP_TOKEN=unwrap-value-0004",
		"VAULT_CLIENT_KEY=/etc/vault/client.key",
		"VAULT_ADDR=https://vaultuser:addr-password-0005@vault.example:8200",
		"VAULT_NAMESPACE=team-a",
		"VAULT_CACERT=/etc/vault/ca.pem",
		"VAULT_SKIP_VERIFY=false",
		"BAO_TOKEN=bao-token-value-0006",
		"BAO_ADDR=https://bao.example:8200",
		"OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer otel-header-0007,x-tenant=t1",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS=x-key=otel-traces-key-0008",
		"SIDECAR_CHANGED=stale",
	}
}

var credentials = []string{
	"hvs.token-value-0001", "role-id-value-0002", "secret-id-value-0003", "unwrap-value-0004",
	"addr-password-0005", "bao-token-value-0006", "otel-header-0007", "otel-traces-key-0008",
}

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

func TestExecOncePerWindowWithoutCredentials(t *testing.T) {
	dir := t.TempDir()
	envFile, runsFile := filepath.Join(dir, "env"), filepath.Join(dir, "runs")
	// The command is argv: no shell parses the config. The test's command
	// happens to be a shell, to write what it saw.
	action := execAction(0, "sh", "-c", `env -0 > "$1"; echo run >> "$2"`, "sh", envFile, runsFile)
	r := newRuns()
	log, logs := logtest.New(t)
	n := start(t, notify.Settings{Notify: fast(3), Environ: sidecarEnv}, notify.Options{Log: log, Recorder: r, Status: status{r}})

	n.Changed(change("tls", action))
	n.Changed(change("db", action))
	n.Changed(change("api", action))
	n.Changed(change("other")) // no actions: not part of this one
	r.wait(t, 1)
	env := readEnvFile(t, envFile)
	want := map[string]string{
		"APP_SETTING":           "kept",
		"VAULT_ADDR":            "https://vault.example:8200",
		"VAULT_NAMESPACE":       "team-a",
		"VAULT_CACERT":          "/etc/vault/ca.pem",
		"VAULT_SKIP_VERIFY":     "false",
		"BAO_ADDR":              "https://bao.example:8200",
		"SIDECAR_CHANGED":       "api,db,tls",
		"SIDECAR_CHANGED_FILES": "/secrets/api.json,/secrets/db.json,/secrets/tls.json",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID", "VAULT_UNWRAP_TOKEN", "VAULT_CLIENT_KEY",
		"BAO_TOKEN", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		if v, ok := env[k]; ok {
			t.Errorf("%s reached the command: %q", k, v)
		}
	}
	raw, _ := os.ReadFile(envFile)
	for _, c := range credentials {
		if strings.Contains(string(raw), c) {
			t.Errorf("credential %q reached the command's environment", c)
		}
	}

	n.Changed(change("db", action))
	r.wait(t, 2)
	stopNow(t, n)
	if b, _ := os.ReadFile(runsFile); strings.Count(string(b), "run") != 2 || r.count() != 2 {
		t.Fatalf("2 windows: the command ran %d times (%d reported), want 2", strings.Count(string(b), "run"), r.count())
	}
	if env := readEnvFile(t, envFile); env["SIDECAR_CHANGED"] != "db" || env["SIDECAR_CHANGED_FILES"] != "/secrets/db.json" {
		t.Fatalf("second window: SIDECAR_CHANGED=%q SIDECAR_CHANGED_FILES=%q", env["SIDECAR_CHANGED"], env["SIDECAR_CHANGED_FILES"])
	}
	if !strings.Contains(logs.String(), `"target":"sh"`) {
		t.Fatalf("log line has no target summary:\n%s", logs)
	}
}

func TestExecOutputIsRedactedAndBounded(t *testing.T) {
	secret := "Zq9XkW2pLm7Rt4Vb-db-password"
	pem := "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n-----END KEY-----\n"
	jsonForm, _ := json.Marshal("quote\"d<value>&more")
	// On stdout the value straddles the 4 KiB cut: not even its start may
	// show. stderr prints it in several forms.
	filler := strings.Repeat("f", 4096-6)
	script := `printf '%s%s' "$6" "$1"; printf 'tail%.0s' $(seq 1 2000); printf '%s\n' "raw=$1" "json=$2" "b64=$3" "pemline=$4" "cred=$5" "short=abc" >&2`
	action := logOutput(execAction(0, "sh", "-c", script, "sh", secret, string(jsonForm[1:len(jsonForm)-1]),
		base64.StdEncoding.EncodeToString([]byte(secret)), "MIIEvQIBADANBgkqhkiG9w0B", "hvs.token-value-0001", filler))
	r := newRuns()
	log, logs := logtest.New(t)
	n := start(t, notify.Settings{Notify: fast(1), Environ: sidecarEnv}, notify.Options{Log: log, Recorder: r, Status: status{r}})
	c := change("db", action)
	c.Redact = []logging.Redacted{logging.Redacted(secret), logging.Redacted(pem), "quote\"d<value>&more", "abc"}
	n.Changed(c)
	r.wait(t, 1)
	out := logs.String()
	for _, leak := range []string{"Zq9XkW", "MIIEvQIBADANBgkqhkiG9w0B", `d\u003cvalue`, "d<value", "hvs.token-value-0001",
		base64.StdEncoding.EncodeToString([]byte(secret))} {
		if strings.Contains(out, leak) {
			t.Errorf("log holds %q", leak)
		}
	}
	for _, want := range []string{"raw=[REDACTED]", "json=[REDACTED]", "b64=[REDACTED]", "pemline=[REDACTED]", "cred=[REDACTED]"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr was not logged redacted: no %q", want)
		}
	}
	if !strings.Contains(out, "short=abc") {
		t.Errorf("a value under 4 bytes was scrubbed (it need not be; the line shows it was logged at all)")
	}
	var line struct{ Stdout string }
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "change action succeeded") {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("stdout logged: %d bytes, ending %q", len(line.Stdout), line.Stdout[max(0, len(line.Stdout)-60):])
	if len(line.Stdout) > 4096+100 || !strings.Contains(line.Stdout, "[output cut:") {
		t.Fatalf("stdout logged with %d bytes, marked cut: %v", len(line.Stdout), strings.Contains(line.Stdout, "[output cut:"))
	}
}

func TestExecTimeoutKillsTheProcessGroup(t *testing.T) {
	dir := t.TempDir()
	childPID := filepath.Join(dir, "child.pid")
	// The shell starts a child of its own and waits: both must go.
	action := execAction(300*time.Millisecond, "sh", "-c", `sleep 300 & echo $! > "$1"; wait`, "sh", childPID)
	r := newRuns()
	n := start(t, notify.Settings{Notify: fast(1)}, notify.Options{Recorder: r, Status: status{r}})
	began := time.Now()
	n.Changed(change("db", action))
	r.wait(t, 1)
	took := time.Since(began)
	t.Logf("timed-out run reported after %s (timeout 300ms)", took)
	if took > 10*time.Second {
		t.Fatalf("the timeout did not end the run: %s", took)
	}
	rep := r.reports("db")[0]
	if rep.Result != metrics.ResultError || !strings.Contains(rep.Error, "timed out after 300ms") {
		t.Fatalf("report: %+v", rep)
	}
	b, err := os.ReadFile(childPID)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the shell's child to die", func() bool { return gone(pid) })
}

// gone reports whether pid has exited (a zombie nobody reaped yet counts).
func gone(pid int) bool {
	if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return strings.HasPrefix(rest, "Z")
}

func TestExecFailureIsRetriedThenReported(t *testing.T) {
	tries := filepath.Join(t.TempDir(), "tries")
	action := logOutput(execAction(0, "sh", "-c", `echo try >> "$1"; echo broken >&2; exit 3`, "sh", tries))
	r := newRuns()
	log, logs := logtest.New(t)
	n := start(t, notify.Settings{Notify: fast(3), Backoff: 10 * time.Millisecond}, notify.Options{Log: log, Recorder: r, Status: status{r}})
	n.Changed(change("db", action))
	n.Changed(change("api", action))
	r.wait(t, 1)
	if b, _ := os.ReadFile(tries); strings.Count(string(b), "try") != 3 {
		t.Fatalf("tried %d times, want 3", strings.Count(string(b), "try"))
	}
	for _, s := range []string{"api", "db"} {
		reps := r.reports(s)
		if len(reps) != 1 || reps[0].Result != metrics.ResultError || reps[0].Attempts != 3 || !strings.Contains(reps[0].Error, "exit status 3") {
			t.Fatalf("report for %s: %+v", s, reps)
		}
	}
	if got := r.all(); len(got) != 1 || got[0].kind != notify.KindExec || got[0].result != metrics.ResultError {
		t.Fatalf("recorder: %+v", got)
	}
	if n := strings.Count(logs.String(), "change action failed"); n != 1 {
		t.Fatalf("%d failure lines, want one per failed run", n)
	}
	if !strings.Contains(logs.String(), `"stderr":"broken\n"`) {
		t.Fatalf("the failure line lacks the command's stderr:\n%s", logs)
	}
}

func TestExecStdinIsDevNull(t *testing.T) {
	out := filepath.Join(t.TempDir(), "stdin")
	r := newRuns()
	n := start(t, notify.Settings{Notify: fast(1)}, notify.Options{Recorder: r, Status: status{r}})
	n.Changed(change("db", execAction(5*time.Second, "sh", "-c", `cat > "$1"; readlink /proc/self/fd/0 >> "$1"`, "sh", out)))
	r.wait(t, 1)
	b, _ := os.ReadFile(out)
	if rep := r.reports("db")[0]; rep.Result != metrics.ResultSuccess || strings.TrimSpace(string(b)) != "/dev/null" {
		t.Fatalf("stdin: %q, report %+v", b, rep)
	}
}

func TestDistinctActionsAcrossSecrets(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	cmd := func(tag string, timeout time.Duration) config.Action {
		return execAction(timeout, "sh", "-c", `echo "$1" >> "$2"`, "sh", tag, log)
	}
	r := newRuns()
	n := start(t, notify.Settings{Notify: fast(1)}, notify.Options{Recorder: r, Status: status{r}})
	// a: spelled with and without the default timeout; b: another
	// argument; c: another timeout. Each secret's list runs in order.
	n.Changed(change("s1", cmd("a", 0), cmd("b", 0)))
	n.Changed(change("s2", cmd("a", config.DefaultExecTimeout)))
	n.Changed(change("s3", cmd("b", 0), cmd("c", time.Minute)))
	n.Changed(change("s4", cmd("a", 0)))
	r.wait(t, 3)
	stopNow(t, n)
	b, _ := os.ReadFile(log)
	if got := strings.Fields(string(b)); !slices.Equal(got, []string{"a", "b", "c"}) || r.count() != 3 {
		t.Fatalf("ran %v (%d reported), want [a b c]", got, r.count())
	}
	if reps := r.reports("s4"); len(reps) != 1 {
		t.Fatalf("s4 reports: %+v", reps)
	}
	if reps := r.reports("s1"); len(reps) != 2 {
		t.Fatalf("s1 (two actions) reports: %+v", reps)
	}
}
