package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestChildCannotReadTheSidecarsCredentials runs exec mode with a child of
// the same user that tries what an application in a shared PID namespace
// can: read the sidecar's environment (VAULT_TOKEN) and a credential file
// through /proc/<pid>/root. Both must be refused. As root, the sidecar and
// its child run as 65534 (root could read anything anyway).
func TestChildCannotReadTheSidecarsCredentials(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Shared(t)
	dir, err := os.MkdirTemp("", "dumpable-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/s", map[string]any{"v": "x"})
	cred := filepath.Join(dir, "token")
	if err := os.WriteFile(cred, []byte(srv.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf("vault: {auth: {token_file: %s}}\nsecrets: [{name: s, path: %s/s, destination: %s/out/s, key: v}]\n", cred, p, dir))
	out := filepath.Join(dir, "probe")
	probe := fmt.Sprintf(`cat /proc/$PPID/environ > %[1]s.env 2>/dev/null; echo "environ=$?" > %[1]s
cat /proc/$PPID/root%[2]s > %[1]s.root 2>/dev/null; echo "root=$?" >> %[1]s`, out, cred)
	raw, err := os.ReadFile(sidecarBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "secrets-sidecar") // where 65534 can run it
	if err := os.WriteFile(bin, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), bin, "exec", "--config", cfg, "--", "sh", "-c", probe)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token,
		"SIDECAR_STATUS_FILE=" + filepath.Join(dir, "st", "status.json")}
	if os.Geteuid() == 0 {
		for _, f := range []string{dir, cred, cfg} {
			if err := os.Chown(f, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	done := make(chan struct{})
	var output []byte
	go func() { output, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("exec did not finish")
	}
	if err != nil {
		t.Fatalf("exec: %v\n%s", err, output)
	}
	got := readOrEmpty(out)
	if !strings.Contains(got, "environ=") || !strings.Contains(got, "root=") {
		t.Fatalf("the probe did not run: %q\n%s", got, output)
	}
	if strings.Contains(got, "environ=0") || strings.Contains(readOrEmpty(out+".env"), srv.Token) {
		t.Errorf("the child read the sidecar's environment: %q", got)
	}
	if strings.Contains(got, "root=0") || strings.Contains(readOrEmpty(out+".root"), srv.Token) {
		t.Errorf("the child read the token file through /proc/<sidecar>/root: %q", got)
	}
	t.Logf("child of the same user (uid %d): %s", map[bool]int{true: 65534, false: os.Geteuid()}[os.Geteuid() == 0], strings.ReplaceAll(strings.TrimSpace(got), "\n", ", "))
}
