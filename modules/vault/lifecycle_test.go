package vault

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestTokenLifecycle: an AppRole token with a 2 s TTL and a 6 s max TTL.
// For 20 s every read must succeed, which takes renewals (at ~2/3 of the
// TTL) and, each time the max TTL is reached, a new login.
func TestTokenLifecycle(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": "lifecycle-value"})
	mount := uniq(t)
	roleID, secretID := srv.AppRole(t, mount, "short", map[string]any{
		"token_policies": policy, "token_ttl": "2s", "token_max_ttl": "6s",
	})
	dir := t.TempDir()
	log, logs := newLogger(t)
	expiries := &expiryRecorder{}
	c := newClient(t, Settings{
		Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{
			Mount: mount, RoleIDFile: writeFile(t, dir, "role-id", roleID), SecretIDFile: writeFile(t, dir, "secret-id", secretID),
		}}},
	}, Options{Logger: log, TokenObserver: expiries})
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]bool{}
	end := time.Now().Add(20 * time.Second)
	reads := 0
	for time.Now().Before(end) {
		// KV v2 explicitly: a failed read must not be hidden by a fallback.
		sec, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2})
		if err != nil {
			t.Fatalf("read %d at %s: %v", reads, time.Until(end), err)
		}
		if sec.Data["password"] != "lifecycle-value" {
			t.Fatalf("read %d: wrong data", reads)
		}
		tokens[c.currentToken()] = true
		reads++
		time.Sleep(100 * time.Millisecond)
	}
	out := logs.String()
	renewals := strings.Count(out, `"msg":"vault token renewed"`)
	relogins := strings.Count(out, `"msg":"logged in to vault"`) - strings.Count(out, `"reason":"start"`)
	atMax := strings.Count(out, `"reason":"max TTL reached"`)
	t.Logf("%d reads, %d tokens, %d renewals, %d re-logins (%d at max TTL)", reads, len(tokens), renewals, relogins, atMax)
	if renewals < 3 {
		t.Errorf("%d renewals logged, want several", renewals)
	}
	// With a 6 s max TTL, 20 s need at least 3 new tokens. On a loaded
	// machine a renewal may come too late and the next read or renewal
	// logs in instead of the max-TTL check; either way it is a re-login.
	if relogins < 2 || atMax < 1 {
		t.Errorf("%d re-logins logged (%d at max TTL), want at least 2 (1)", relogins, atMax)
	}
	if len(tokens) < 3 {
		t.Errorf("reads used %d tokens, want the token replaced at least twice", len(tokens))
	}
	if n := len(expiries.seen()); n < renewals+relogins {
		t.Errorf("TokenObserver told %d expiries, want one per renewal and login (%d)", n, renewals+relogins)
	}
	if strings.Contains(out, `"level":"error"`) {
		t.Errorf("errors logged:\n%s", out)
	}
}

func TestStaticTokenLifecycle(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, policy := seedSecret(t, srv, map[string]any{"password": "static"})

	t.Run("renewable", func(t *testing.T) {
		token := srv.CreateToken(t, map[string]any{"policies": []string{policy}, "ttl": "3s", "explicit_max_ttl": "1h"})
		log, logs := newLogger(t)
		c := newClient(t, Settings{
			Vault:     config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthToken}},
			LookupEnv: env("VAULT_TOKEN", token),
		}, Options{Logger: log})
		if err := c.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		eventually(t, 15*time.Second, "the static token is renewed twice", func() bool {
			return strings.Count(logs.String(), `"msg":"vault token renewed"`) >= 2
		})
		time.Sleep(2 * time.Second) // past the original 3 s TTL
		mustRead(t, c, path, "static")
	})

	t.Run("not renewable", func(t *testing.T) {
		token := srv.CreateToken(t, map[string]any{"policies": []string{policy}, "ttl": "3s", "renewable": false})
		log, logs := newLogger(t)
		c := newClient(t, Settings{
			Vault:     config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthToken}},
			LookupEnv: env("VAULT_TOKEN", token),
		}, Options{Logger: log})
		if err := c.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		eventually(t, 15*time.Second, "a warning that the token expires", func() bool {
			return strings.Contains(logs.String(), "vault token expires soon and cannot be renewed")
		})
		if strings.Count(logs.String(), "expires soon") != 1 {
			t.Errorf("want exactly one warning:\n%s", logs.String())
		}
	})
}

func TestStartWithVaultDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	_ = l.Close() // nothing listens there now
	log, logs := newLogger(t)
	c := newClient(t, Settings{
		Vault:     config.Vault{Address: addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{Mount: "approle"}}},
		LookupEnv: env("VAULT_ROLE_ID", "role"),
	}, Options{Logger: log})
	start := time.Now()
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("Start failed with Vault down: %v", err)
	}
	if d := time.Since(start); d > startCheckTimeout+time.Second {
		t.Fatalf("Start took %s", d)
	}
	if !strings.Contains(logs.String(), "vault not reachable at start") {
		t.Errorf("not logged:\n%s", logs.String())
	}
	_, err = c.Read(t.Context(), ReadRequest{Mount: "secret", Path: "x", KVVersion: config.KV2})
	if err == nil || IsAuthError(err) {
		t.Fatalf("err = %v: Vault down is not an auth error", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestStopLeavesNoGoroutines: after Stop, neither the renewer nor the
// connection pool leaves a goroutine behind, also after an Update.
func TestStopLeavesNoGoroutines(t *testing.T) {
	srv := vaulttest.Shared(t) // started before the snapshot: its goroutines are not ours
	path, policy := seedSecret(t, srv, map[string]any{"password": "leak-check"})
	mount := uniq(t)
	roleID, secretID := srv.AppRole(t, mount, "app", map[string]any{"token_policies": policy, "token_ttl": "1h"})
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	c, err := NewClient(Settings{
		Vault:     config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{Mount: mount}}},
		LookupEnv: env("VAULT_ROLE_ID", roleID, "VAULT_SECRET_ID", secretID),
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, path, "leak-check")
	changed := c.cur.Load().cfg
	changed.Timeout = config.NewDuration(20 * time.Second)
	if err := c.Update(ctx, changed); err != nil {
		t.Fatal(err)
	}
	mustRead(t, c, path, "leak-check")
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
