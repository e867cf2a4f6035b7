package vault

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestLogsHoldNoSecrets drives logins (approle, jwt), renewals, re-logins,
// reads and errors with the module logging at debug level, then checks
// that no token, secret_id, role_id, JWT or secret value appears in the
// logs or in any error message.
func TestLogsHoldNoSecrets(t *testing.T) {
	srv := vaulttest.Shared(t)
	value := "value-" + uniq(t) + "-never-logged"
	base := uniq(t)
	path := base + "/db"
	srv.PutKV2(t, "secret", path, map[string]any{"password": value, "nested": map[string]any{"pin": value}})
	policy := uniq(t)
	srv.Policy(t, policy, readPolicy("secret/data/"+base+"/*"))
	mount := uniq(t)
	roleID, secretID := srv.AppRole(t, mount, "app", map[string]any{
		"token_policies": policy, "token_ttl": "2s", "token_max_ttl": "4s",
	})
	key, pubPEM := newKey(t)
	jwtMount := uniq(t)
	srv.EnableAuth(t, jwtMount, "jwt")
	srv.Write(t, "auth/"+jwtMount+"/config", map[string]any{"jwt_validation_pubkeys": []string{pubPEM}})
	srv.Write(t, "auth/"+jwtMount+"/role/app", map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"sidecar"}, "token_policies": []string{policy},
	})
	now := time.Now()
	jwt := signJWT(t, key, josejwt.Claims{Subject: "app", Audience: josejwt.Audience{"sidecar"},
		IssuedAt: josejwt.NewNumericDate(now), NotBefore: josejwt.NewNumericDate(now.Add(-time.Minute)),
		Expiry: josejwt.NewNumericDate(now.Add(time.Hour))})
	dir := t.TempDir()
	logs := &logtest.Buffer{} // never dumped: it is what is being checked
	log, err := logging.NewLogger(logging.Options{Level: "debug"}, logs)
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	secrets := []string{value, roleID, secretID, jwt, srv.Token}
	remember := func(c *Client) {
		mu.Lock()
		defer mu.Unlock()
		if tok := c.currentToken(); tok != "" {
			secrets = append(secrets, tok)
		}
	}
	var errs []error

	approle := newClient(t, Settings{
		Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{
			Mount: mount, RoleIDFile: writeFile(t, dir, "role", roleID), SecretIDFile: writeFile(t, dir, "sid", secretID),
		}}},
	}, Options{Logger: log})
	if err := approle.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(6 * time.Second) // past the max TTL: renewals and a re-login
	for time.Now().Before(end) {
		if _, err := approle.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KVAuto}); err != nil {
			t.Fatal(err)
		}
		remember(approle)
		time.Sleep(100 * time.Millisecond)
	}
	for _, req := range []ReadRequest{
		{Mount: "secret", Path: path + "-missing", KVVersion: config.KV2},
		{Mount: "secret", Path: "not-allowed/" + uniq(t), KVVersion: config.KV2},
		{Mount: "kv", Path: path, KVVersion: config.KV1},
	} {
		_, err := approle.Read(t.Context(), req)
		errs = append(errs, err)
	}

	jwtClient := newClient(t, Settings{
		Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthJWT, JWT: config.JWT{
			Mount: jwtMount, Role: "app", TokenFile: writeFile(t, dir, "jwt", jwt),
		}}},
	}, Options{Logger: log})
	if err := jwtClient.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := jwtClient.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2}); err != nil {
		t.Fatal(err)
	}
	remember(jwtClient)

	badSecretID := "bad-secret-id-" + uniq(t)
	bad := newClient(t, Settings{
		Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{
			Mount: mount, RoleIDFile: writeFile(t, dir, "role2", roleID), SecretIDFile: writeFile(t, dir, "bad", badSecretID),
		}}},
	}, Options{Logger: log})
	if err := bad.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err = bad.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2})
	errs = append(errs, err)
	secrets = append(secrets, badSecretID)

	out := logs.String()
	for _, want := range []string{"logged in to vault", "vault token renewed", "invalid secret id", "vault KV version detected"} {
		if !strings.Contains(out, want) {
			t.Errorf("the run did not exercise %q", want)
		}
	}
	if n := strings.Count(out, `"msg":"logged in to vault"`); n < 3 { // approle, its re-login, jwt
		t.Errorf("%d logins logged, want a re-login too", n)
	}
	msgs := []string{out}
	for _, e := range errs {
		if e == nil {
			t.Fatal("an error case succeeded")
		}
		msgs = append(msgs, e.Error())
	}
	for _, m := range msgs {
		for _, s := range secrets {
			if s != "" && strings.Contains(m, s) {
				t.Fatalf("a secret (%d chars) leaked into:\n%s", len(s), strings.ReplaceAll(m, s, "<LEAKED>"))
			}
		}
	}
	if len(secrets) < 8 {
		t.Fatalf("only %d secrets collected: the check proves little", len(secrets))
	}
	if !errors.Is(errs[0], ErrNotFound) || !IsAuthError(errs[1]) || !IsAuthError(errs[2]) || !IsAuthError(errs[3]) {
		t.Errorf("errors: %v", errs)
	}
}
