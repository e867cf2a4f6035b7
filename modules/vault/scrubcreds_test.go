package vault_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// Credentials gives what the client logs in with, for scrubbing: the
// environment's token, role_id and secret_id, and the credential files.
func TestCredentialsForScrubbing(t *testing.T) {
	env := map[string]string{"VAULT_TOKEN": "hvs.env-token-1234", "VAULT_ROLE_ID": "role-from-env-5678"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	has := func(c *vault.Client, want ...string) {
		t.Helper()
		var got []string
		for _, v := range c.Credentials() {
			got = append(got, v.Reveal())
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("Credentials() lacks %q", w)
			}
		}
	}
	tok, err := vault.NewClient(vault.Settings{Vault: config.Vault{Address: "http://127.0.0.1:1"}, LookupEnv: lookup}, vault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	has(tok, "hvs.env-token-1234")

	secretID := filepath.Join(t.TempDir(), "secret-id")
	if err := os.WriteFile(secretID, []byte("secret-id-from-file-9012\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ar, err := vault.NewClient(vault.Settings{Vault: config.Vault{Address: "http://127.0.0.1:1", Auth: config.Auth{
		Method: config.AuthAppRole, AppRole: config.AppRole{SecretIDFile: secretID}}}, LookupEnv: lookup}, vault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	has(ar, "role-from-env-5678", "secret-id-from-file-9012")
}
