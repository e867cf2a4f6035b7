package vaulttest_test

import (
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestPostgresNeedsPassword starts a real PostgreSQL and checks that it
// answers over TCP and refuses a wrong password (so a login test with
// written credentials proves something).
func TestPostgresNeedsPassword(t *testing.T) {
	pg := vaulttest.StartPostgres(t)
	if got := pg.Query(t, "SELECT 40 + 2"); got != "42" {
		t.Fatalf("SELECT 40 + 2 = %q", got)
	}
	if _, err := pg.Psql(t.Context(), pg.User, pg.Password+"x", "SELECT 1"); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("a wrong password: err = %v, want password authentication failed", err)
	}
}

// TestDatabaseEngineMintsPostgresRoles drives Vault's own database engine
// and PostgreSQL plugin: a role's credentials log in, and revoking the
// lease drops the role.
func TestDatabaseEngineMintsPostgresRoles(t *testing.T) {
	pg := vaulttest.StartPostgres(t)
	srv := vaulttest.Start(t, vaulttest.Database())
	srv.ConfigurePostgres(t, "pg", pg)
	srv.Write(t, "database/roles/app", map[string]any{
		"db_name":             "pg",
		"creation_statements": []string{`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`},
		"default_ttl":         "1h",
		"max_ttl":             "2h",
	})
	sec, err := srv.Client(t).Logical().Read("database/creds/app")
	if err != nil {
		t.Fatal(err)
	}
	if sec == nil || sec.LeaseID == "" || !sec.Renewable {
		t.Fatalf("database/creds/app: want a renewable lease, got %+v", sec)
	}
	user, _ := sec.Data["username"].(string)
	pass, _ := sec.Data["password"].(string)
	got, err := pg.Psql(t.Context(), user, pass, "SELECT current_user")
	if err != nil {
		t.Fatalf("login with the minted credentials: %v", err)
	}
	if got != user {
		t.Fatalf("current_user = %q, want the minted user", got)
	}
	if _, err := srv.Client(t).Logical().Write("sys/leases/revoke", map[string]any{"lease_id": sec.LeaseID}); err != nil {
		t.Fatal(err)
	}
	if n := pg.Query(t, "SELECT count(*) FROM pg_roles WHERE rolname = '"+user+"'"); n != "0" {
		t.Fatalf("after revoking the lease, %s roles with the minted name, want 0", n)
	}
}
