package jobs

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestWaitRetryEndsWhenVaultRecovers: an hour's backoff ends the moment
// the recovery signal fires.
func TestWaitRetryEndsWhenVaultRecovers(t *testing.T) {
	b := vault.Backoff{Base: time.Hour, Max: time.Hour, Rand: rand.New(rand.NewPCG(1, 2))}
	recovered := make(chan struct{})
	time.AfterFunc(50*time.Millisecond, func() { close(recovered) })
	start := time.Now()
	if err := waitRetry(t.Context(), b, 0, errors.New("vault read: circuit breaker is open"), recovered); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("waited %s", took)
	}
	// Without a signal (nil: it is optional) the backoff runs out.
	if err := waitRetry(t.Context(), vault.Backoff{Base: 20 * time.Millisecond}, 0, errors.New("x"), nil); err != nil {
		t.Fatal(err)
	}
}

// TestWaitRetryAfterRejectedLogin: no backoff retries (they would only
// meet the held-back login): the wait ends when the credential file
// changes, well before the retry time.
func TestWaitRetryAfterRejectedLogin(t *testing.T) {
	srv := vaulttest.Shared(t)
	mount := "gate" + filepath.Base(t.TempDir())
	roleID, secretID := srv.AppRole(t, mount, "app", map[string]any{"token_ttl": "1h"})
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := vault.NewClient(vault.Settings{
		Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{
			Mount: mount, RoleIDFile: write("role", roleID), SecretIDFile: write("sid", "wrong"),
		}}},
		LookupEnv: func(string) (string, bool) { return "", false },
	}, vault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(t.Context(), vault.ReadRequest{Mount: "secret", Path: "x", KVVersion: config.KV2})
	if !vault.IsLoginRejected(err) {
		t.Fatalf("err = %v, want a rejected login", err)
	}
	time.AfterFunc(300*time.Millisecond, func() { write("sid", secretID) })
	start := time.Now()
	b := vault.Backoff{Base: time.Millisecond}
	if err := waitRetry(t.Context(), b, 0, err, nil); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("new secret_id written after 300ms; wait ended after %s", took)
	if took < 250*time.Millisecond || took > 3*time.Second {
		t.Fatalf("wait ended after %s", took)
	}
}
