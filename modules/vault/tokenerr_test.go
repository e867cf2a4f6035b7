package vault

import (
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestBadTokenIsNotAKVv1Problem: a token Vault rejects is reported as
// such, and the mount's KV version as unknown; it used to read "vault read
// secret/app (KV v1): permission denied" on a KV v2 mount.
func TestBadTokenIsNotAKVv1Problem(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, _ := seedSecret(t, srv, map[string]any{"password": "p"})
	c := tokenClient(t, srv, "bogus-token-"+uniq(t))
	_, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KVAuto})
	if err == nil {
		t.Fatal("read with a bogus token succeeded")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "vault rejected the token from VAULT_TOKEN: vault token lookup: permission denied (HTTP 403)") ||
		!strings.Contains(msg, "the KV version of mount secret is unknown") || strings.Contains(msg, "KV v1") || strings.Contains(msg, "bogus") {
		t.Fatalf("err = %q", msg)
	}
	if !IsAuthError(err) {
		t.Fatal("a rejected token is not an auth error")
	}
}

// TestPolicyDenialClaimsNoVersion: a valid token without the policy gets
// a permission message that names no KV version it did not detect.
func TestPolicyDenialClaimsNoVersion(t *testing.T) {
	srv := vaulttest.Shared(t)
	path, _ := seedSecret(t, srv, map[string]any{"password": "p"})
	tok := srv.CreateToken(t, map[string]any{"policies": []string{"default"}, "ttl": "1h"})
	c := tokenClient(t, srv, tok)
	_, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KVAuto})
	want := "vault read secret/" + path + " (KV version unknown; tried as v2 and v1): permission denied (HTTP 403); the token is valid, its policies do not allow this read"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	// An explicit kv_version is the config's claim, not a detection.
	_, err = c.Read(t.Context(), ReadRequest{Mount: "secret", Path: path, KVVersion: config.KV2})
	if err == nil || !strings.Contains(err.Error(), "(KV v2): permission denied (HTTP 403); the token is valid") {
		t.Fatalf("err = %v", err)
	}
}
