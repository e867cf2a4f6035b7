package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestRejectedSecretIDDoesNotLockTheRole: the daemon's secret_id is
// destroyed and stays broken for 20 s at a 1 s refresh. Logins with it are
// not repeated (Vault's user lockout, 5 failures, would lock the role), and
// a fresh secret_id written to secret_id_file is used at once.
func TestRejectedSecretIDDoesNotLockTheRole(t *testing.T) {
	srv := vaulttest.Start(t)
	p := prefix(t)
	srv.PutKV2(t, "secret", p+"/db", map[string]any{"v": "one"})
	srv.Policy(t, "read-"+p, fmt.Sprintf("path %q { capabilities = [\"read\"] }", "secret/data/"+p+"/*"))
	// Short tokens: the renewer logs in again every few seconds, and the
	// syncs need a new token soon after the secret_id stops working.
	roleID, secretID := srv.AppRole(t, "approle", "app", map[string]any{
		"token_policies": "read-" + p, "token_ttl": "4s", "token_max_ttl": "4s",
	})
	proxy := newFaultProxy(t, srv.Addr)
	dir := t.TempDir()
	roleFile, sidFile := filepath.Join(dir, "role_id"), filepath.Join(dir, "secret_id")
	for f, v := range map[string]string{roleFile: roleID, sidFile: secretID} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(dir, "out", "db")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
vault:
  auth: {method: approle, approle: {role_id_file: %s, secret_id_file: %s}}
secrets: [{name: db, path: %s/db, destination: %s, key: v, refresh_interval: 1s}]
`, roleFile, sidFile, p, dest))
	d := startDaemon(t, cfg, dir, "VAULT_ADDR="+proxy.URL)
	d.waitReady(t, 30*time.Second)
	waitFile(t, dest, "one", 10*time.Second)

	srv.Write(t, "auth/approle/role/app/secret-id/destroy", map[string]any{"secret_id": secretID})
	broken := time.Now()
	before := proxy.count("/login")
	var lastErr string
	waitFor(t, 15*time.Second, "a sync to fail on the rejected login", func() bool {
		snap, err := status.ReadFile(d.status)
		if err == nil && len(snap.Secrets) == 1 {
			lastErr = snap.Secrets[0].LastError
		}
		return strings.Contains(lastErr, "login")
	})
	srv.PutKV2(t, "secret", p+"/db", map[string]any{"v": "two"}) // unreachable until the fix
	time.Sleep(20*time.Second - time.Since(broken))
	logins := proxy.count("/login") - before
	brokenFor := time.Since(broken)

	fresh := srv.Write(t, "auth/approle/role/app/secret-id", nil).Data["secret_id"].(string)
	if err := os.WriteFile(sidFile, []byte(fresh), 0o600); err != nil {
		t.Fatal(err)
	}
	fixed := time.Now()
	t.Logf("%d login attempts in %s while the secret_id was rejected (gate: at most 3 per 15 min: after 5, 10, then 20 min)",
		logins, brokenFor.Round(time.Second))
	written := waitFile(t, dest, "two", 30*time.Second)
	t.Logf("fresh secret_id written -> synced: %s", written.Sub(fixed).Round(time.Millisecond))
	t.Logf("status while broken: %s", lastErr)

	if logins > 1 {
		t.Errorf("%d logins with a rejected secret_id in %s, want 1", logins, brokenFor)
	}
	if took := written.Sub(fixed); took > 5*time.Second {
		t.Errorf("synced %s after the fresh secret_id was written, want within about one refresh (1 s)", took)
	}
	sec, err := srv.Client(t).Logical().ReadWithContext(t.Context(), "sys/locked-users")
	if err != nil {
		t.Fatal(err)
	}
	if total, _ := sec.Data["total"].(json.Number); total != "" && total != "0" {
		t.Errorf("sys/locked-users: %v", sec.Data)
	}
	for _, want := range []string{"vault login (approle at auth/approle/login) rejected: invalid secret id (HTTP 500)",
		"tried again at", "write them to " + sidFile} {
		if !strings.Contains(lastErr, want) {
			t.Errorf("the sync error %q lacks %q", lastErr, want)
		}
	}
	out := d.logs.String()
	statusFile, _ := os.ReadFile(d.status)
	for _, s := range []string{secretID, fresh, roleID} {
		if strings.Contains(out, s) || strings.Contains(string(statusFile), s) {
			t.Error("a credential reached the logs or the status file")
		}
	}
}
