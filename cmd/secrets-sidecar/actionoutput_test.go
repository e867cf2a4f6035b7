package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestActionOutputHoldsNoSecret runs the real binary with two secrets; a's
// change runs two exec actions that print both files, b's too, and the
// sidecar's own token: one without log_output (nothing of the output is
// logged, not even in a transformed form) and one with it (logged, every
// value the sidecar holds scrubbed, not only the triggering secret's).
func TestActionOutputHoldsNoSecret(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	aPass, bPass := "a-rotated-Qw83Zp1x", "b-untouched-Lm47Rt9k"
	srv.PutKV2(t, "secret", p+"/a", map[string]any{"v": "a-first-Hs62Nb0c"})
	srv.PutKV2(t, "secret", p+"/b", map[string]any{"v": bPass})
	a, b := filepath.Join(dir, "out", "a"), filepath.Join(dir, "out", "b")
	cfg := fmt.Sprintf(`notify: {debounce: 200ms}
defaults: {refresh_interval: 1s}
secrets:
  - name: a
    path: %[1]s/a
    destination: %[2]s
    key: v
    on_change:
      - exec: {command: ["sh", "-c", "cat %[2]s %[3]s; echo; od -An -tx1 %[3]s; rev %[3]s; echo DEFAULT-DONE"]}
      - exec: {command: ["sh", "-c", "cat %[2]s %[3]s; echo; echo token=%[4]s; echo LOGGED-DONE"], log_output: true}
  - name: b
    path: %[1]s/b
    destination: %[3]s
    key: v
`, p, a, b, srv.Token)
	cfgPath := writeConfig(t, dir, cfg)
	d := startDaemon(t, cfgPath, dir, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token)
	d.waitReady(t, 30*time.Second)

	srv.PutKV2(t, "secret", p+"/a", map[string]any{"v": aPass})
	waitFor(t, 30*time.Second, "both change actions", func() bool {
		return strings.Count(d.logs.String(), "change action succeeded") >= 2
	})
	if _, code := d.term(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	out := d.logs.String()
	for _, leak := range []string{aPass, bPass, odHex(bPass[:8]), reverse(bPass), srv.Token, "DEFAULT-DONE"} {
		if strings.Contains(out, leak) {
			t.Errorf("the log holds %q", leak)
		}
	}
	if !strings.Contains(out, `"stdout_bytes":`) {
		t.Error("the default action's line does not say it had output")
	}
	if !strings.Contains(out, `[REDACTED][REDACTED]\ntoken=[REDACTED]\nLOGGED-DONE`) {
		t.Errorf("the log_output action's stdout was not logged scrubbed:\n%s", out)
	}
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// odHex is s as od -An -tx1 prints it.
func odHex(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		fmt.Fprintf(&b, " %02x", c)
	}
	return b.String()
}
