package notify_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// ownCreds is a CredentialSource with fixed credentials.
type ownCreds []logging.Redacted

func (c ownCreds) Credentials() []logging.Redacted { return c }

func reverse(s string) string {
	r := []rune(s)
	slices.Reverse(r)
	return string(r)
}

// twoSecrets writes a.env and b.env as a sync would, holds both secrets'
// values in n and returns the files and the values.
func twoSecrets(t *testing.T, n *notify.Notifier) (a, b, aPass, bPass string) {
	t.Helper()
	dir := t.TempDir()
	aPass, bPass = "a-pass-Kx81LqWv3z", "b-pass-Jy72MwTn9c"
	a, b = filepath.Join(dir, "a.env"), filepath.Join(dir, "b.env")
	for f, v := range map[string]string{a: "A_PASSWORD=" + aPass + "\n", b: "B_PASSWORD=" + bPass + "\n"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n.Hold("a", notify.Values(map[string]any{"password": aPass}))
	n.Hold("b", notify.Values(map[string]any{"password": bPass}))
	return a, b, aPass, bPass
}

// An action that only a's change triggered prints b's file too: by
// default no output is logged at all, only its size.
func TestExecOutputNotLoggedByDefault(t *testing.T) {
	r := newRuns()
	log, logs := logtest.New(t)
	n := start(t, notify.Settings{Notify: fast(1), Environ: sidecarEnv}, notify.Options{Log: log, Recorder: r, Status: status{r}})
	a, b, aPass, bPass := twoSecrets(t, n)
	// Plain, hex-encoded and reversed: no scrubbing catches the last two.
	script := `cat "$1" "$2"; od -An -tx1 "$2" | tr -d ' \n' >&2; rev "$2"`
	c := change("a", execAction(0, "sh", "-c", script, "sh", a, b))
	c.Redact = notify.Values(map[string]any{"password": aPass})
	n.Changed(c)
	r.wait(t, 1)
	if rep := r.reports("a")[0]; rep.Result != metrics.ResultSuccess {
		t.Fatalf("report: %+v", rep)
	}
	out := logs.String()
	for _, leak := range []string{aPass, bPass, hex.EncodeToString([]byte(bPass)), reverse(bPass), "B_PASSWORD", "A_PASSWORD"} {
		if strings.Contains(out, leak) {
			t.Errorf("log holds %q:\n%s", leak, out)
		}
	}
	if !strings.Contains(out, `"stdout_bytes":`) || !strings.Contains(out, `"stderr_bytes":`) {
		t.Fatalf("the log does not say there was output:\n%s", out)
	}
	if strings.Contains(out, `"stdout":`) || strings.Contains(out, `"stderr":`) {
		t.Fatalf("output was logged without log_output:\n%s", out)
	}
}

// With log_output the output is logged, scrubbed of every value the
// sidecar holds: the other secret's, the triggering one's, the sidecar's
// own credentials and those removed from the command's environment.
func TestExecLogOutputScrubsEveryHeldValue(t *testing.T) {
	r := newRuns()
	log, logs := logtest.New(t)
	own := logging.Redacted("hvs.own-login-token-5521")
	n := start(t, notify.Settings{Notify: fast(1), Environ: sidecarEnv},
		notify.Options{Log: log, Recorder: r, Status: status{r}, Credentials: ownCreds{own, ""}})
	a, b, aPass, bPass := twoSecrets(t, n)
	n.Hold("gone", notify.Values(map[string]any{"k": "forgotten-value-7781"}))
	n.Forget("gone")
	script := `cat "$1" "$2"; echo "own=$3" "env=$4" "gone=$5" >&2`
	c := change("a", logOutput(execAction(0, "sh", "-c", script, "sh", a, b, own.Reveal(), "hvs.token-value-0001", "forgotten-value-7781")))
	c.Redact = notify.Values(map[string]any{"password": aPass})
	n.Changed(c)
	r.wait(t, 1)
	out := logs.String()
	for _, leak := range []string{aPass, bPass, own.Reveal(), "hvs.token-value-0001"} {
		if strings.Contains(out, leak) {
			t.Errorf("log holds %q:\n%s", leak, out)
		}
	}
	for _, want := range []string{`A_PASSWORD=[REDACTED]`, `B_PASSWORD=[REDACTED]`, `own=[REDACTED]`, `env=[REDACTED]`,
		// A secret that left the config is no longer held.
		`gone=forgotten-value-7781`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// Hold replaces a secret's values: a rotated-away value is not scrubbed
// for ever, the new one is.
func TestHoldReplacesValues(t *testing.T) {
	r := newRuns()
	log, logs := logtest.New(t)
	n := start(t, notify.Settings{Notify: fast(1)}, notify.Options{Log: log, Recorder: r, Status: status{r}})
	n.Hold("b", notify.Values(map[string]any{"password": "old-value-1234", "n": 987654}))
	n.Hold("b", notify.Values(map[string]any{"password": "new-value-5678", "n": 123456789}))
	n.Changed(change("a", logOutput(execAction(0, "echo", "old-value-1234", "new-value-5678", "123456789"))))
	r.wait(t, 1)
	if out := logs.String(); !strings.Contains(out, `old-value-1234 [REDACTED] [REDACTED]`) {
		t.Fatalf("stdout not scrubbed of the held values only:\n%s", out)
	}
}
