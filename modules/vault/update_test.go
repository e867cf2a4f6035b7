package vault

import (
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

func TestUpdate(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": "update-value"})
	token := srv.CreateToken(t, map[string]any{"policies": []string{policy}, "ttl": "1h"})
	mount := uniq(t)
	roleID, secretID := srv.AppRole(t, mount, "app", map[string]any{"token_policies": policy, "token_ttl": "1h"})
	dir := t.TempDir()
	tokenCfg := config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthToken, TokenFile: writeFile(t, dir, "token", token)}}
	log, logs := newLogger(t)
	c := newClient(t, Settings{Vault: tokenCfg}, Options{Logger: log})
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, path, "update-value")

	first := c.cur.Load()
	same := tokenCfg
	if err := c.Update(t.Context(), same); err != nil || c.cur.Load() != first {
		t.Fatalf("an equal block rebuilt the client (err %v)", err)
	}

	bad := tokenCfg
	bad.TLS.CACert = dir + "/no-such-ca.pem"
	if err := c.Update(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "vault.tls") {
		t.Fatalf("err = %v, want a vault.tls error", err)
	}
	if c.cur.Load() != first {
		t.Fatal("a failed update replaced the client")
	}
	mustRead(t, c, path, "update-value")

	appRoleCfg := config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{
		Mount: mount, RoleIDFile: writeFile(t, dir, "role", roleID), SecretIDFile: writeFile(t, dir, "sid", secretID),
	}}}
	if err := c.Update(t.Context(), appRoleCfg); err != nil {
		t.Fatal(err)
	}
	if c.cur.Load() == first {
		t.Fatal("a changed block kept the old client")
	}
	mustRead(t, c, path, "update-value")
	if c.currentToken() == token {
		t.Fatal("still reading with the old auth method's token")
	}
	// The new client's renewer logs in at once, the old one has stopped.
	eventually(t, 10*time.Second, "the new auth method logs in", func() bool {
		return strings.Contains(logs.String(), `"logged in to vault"`)
	})
	if !strings.Contains(logs.String(), "vault client reconfigured") {
		t.Error("the swap is not logged")
	}
}
