package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// The tests in this file run the binary against the dev server's real
// database engine and PostgreSQL plugin, and a real PostgreSQL: the
// credentials in the written file log in with psql, and pg_roles and a
// table the creation statement fills (one row per role Vault made) count
// what was minted.

// pgRig is a PostgreSQL and a dev server whose database engine manages it.
type pgRig struct {
	pg  *vaulttest.Postgres
	srv *vaulttest.Server
	env []string
}

func startPGRig(t *testing.T) *pgRig {
	t.Helper()
	pg := vaulttest.StartPostgres(t)
	pg.Query(t, "CREATE TABLE minted(name text)")
	srv := vaulttest.Start(t, vaulttest.Database())
	srv.ConfigurePostgres(t, "pg", pg)
	return &pgRig{pg: pg, srv: srv, env: []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token}}
}

// role writes database/roles/NAME: every role Vault creates logs in until
// its lease ends and adds a row to minted. renew replaces the plugin's
// renew statement when set.
func (r *pgRig) role(t *testing.T, name, ttl, maxTTL string, renew ...string) {
	t.Helper()
	data := map[string]any{
		"db_name": "pg",
		"creation_statements": []string{
			`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';`,
			`INSERT INTO minted(name) VALUES ('{{name}}');`,
		},
		"default_ttl": ttl,
		"max_ttl":     maxTTL,
	}
	if len(renew) > 0 {
		data["renew_statements"] = renew
	}
	r.srv.Write(t, "database/roles/"+name, data)
}

// minted is how many roles Vault has created.
func (r *pgRig) minted(t *testing.T) int {
	t.Helper()
	n, err := strconv.Atoi(r.pg.Query(t, "SELECT count(*) FROM minted"))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// login logs in with psql and returns current_user.
func (r *pgRig) login(t *testing.T, user, password string) (string, error) {
	t.Helper()
	return r.pg.Psql(t.Context(), user, password, "SELECT current_user")
}

// validUntil is the role's rolvaliduntil as Unix seconds ("" when the role
// is gone).
func (r *pgRig) validUntil(t *testing.T, user string) string {
	t.Helper()
	return r.pg.Query(t, "SELECT extract(epoch FROM rolvaliduntil) FROM pg_roles WHERE rolname = '"+user+"'")
}

// roles counts the roles named user.
func (r *pgRig) roles(t *testing.T, user string) string {
	t.Helper()
	return r.pg.Query(t, "SELECT count(*) FROM pg_roles WHERE rolname = '"+user+"'")
}

// creds reads PGUSER and PGPASSWORD from an env file the template wrote.
func creds(t *testing.T, path string) (user, password string) {
	t.Helper()
	for _, line := range strings.Split(readFile(t, path), "\n") {
		if v, ok := strings.CutPrefix(line, "PGUSER="); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(line, "PGPASSWORD="); ok {
			password = v
		}
	}
	if user == "" || password == "" {
		t.Fatalf("%s: no PGUSER/PGPASSWORD", path)
	}
	return user, password
}

const pgTemplate = `"PGUSER={{ .username }}\nPGPASSWORD={{ .password }}\n"`

// TestDatabaseCredsRenewedThenReplaced: a database role with a 4s TTL and
// a 20s max TTL. The written credentials log in; renewals move the role's
// rolvaliduntil without minting; when the max TTL truncates a renewal a
// replacement is minted and written while the old role still works, and
// the new credentials log in. Two roles in all.
func TestDatabaseCredsRenewedThenReplaced(t *testing.T) {
	r := startPGRig(t)
	r.role(t, "app", "4s", "20s")
	dir := t.TempDir()
	out := filepath.Join(dir, "db.env")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
secrets:
  - name: db
    lease: {path: database/creds/app}
    destination: %s
    template: %s
`, out, pgTemplate))
	addr := freeAddr(t)
	d := startDaemon(t, cfg, dir, append(r.env, "SIDECAR_HTTP_ADDR="+addr, "SIDECAR_LOG_LEVEL=debug")...)
	d.waitReady(t, time.Minute)

	user1, pass1 := creds(t, out)
	if got, err := r.login(t, user1, pass1); err != nil || got != user1 {
		t.Fatalf("login with the written credentials: %q, %v", got, err)
	}
	if n := r.minted(t); n != 1 {
		t.Fatalf("%d roles minted at start, want 1", n)
	}
	// The status table says when the file last changed (it was created)
	// and what comes next for the lease, never a value.
	code, table, stderr := runBinary(t, nil, "status", "--status-file", d.status)
	if code != exitOK || !regexp.MustCompile(`\bdb\s+lease\s+true\b.* ago\s+\S+ ago\s+(renew|replace) (in|now)`).MatchString(table) || strings.Contains(table, pass1) {
		t.Errorf("status: exit %d\n%s%s", code, table, stderr)
	}
	first := r.validUntil(t, user1)
	waitFor(t, time.Minute, "a renewal to move rolvaliduntil", func() bool { return r.validUntil(t, user1) != first })
	if n := r.minted(t); n != 1 {
		t.Fatalf("%d roles minted after a renewal, want 1: a renewal must not mint", n)
	}

	waitFor(t, 2*time.Minute, "the replacement credentials in the file", func() bool {
		u, _ := creds(t, out)
		return u != user1
	})
	written := statFile(t, out).ModTime()
	user2, pass2 := creds(t, out)
	// The new credentials were written while the old role was still valid.
	if v, err := strconv.ParseFloat(r.validUntil(t, user1), 64); err == nil && v <= float64(written.UnixNano())/1e9 {
		t.Errorf("the replacement was written at %s, after the old role ended (%s)", written, time.Unix(int64(v), 0))
	}
	if got, err := r.login(t, user2, pass2); err != nil || got != user2 {
		t.Fatalf("login with the replacement credentials: %q, %v", got, err)
	}
	m := d.metrics(t)
	renewals := metricSum(m, "secrets_sidecar_lease_renewals_total", `result="success"`)
	if renewals < 1 {
		t.Errorf("%v successful renewals in the metrics", renewals)
	}
	if n := metricSum(m, "secrets_sidecar_leases_issued_total", `reason="max_ttl"`); n != 1 {
		t.Errorf("%v leases issued for max_ttl, want 1", n)
	}
	if n := r.minted(t); n != 2 {
		t.Errorf("%d roles minted over one max TTL, want 2", n)
	}
	if _, code := d.term(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	if strings.Contains(d.logs.String(), pass1) || strings.Contains(d.logs.String(), pass2) {
		t.Error("a database password reached the log")
	}
	t.Logf("default_ttl 4s, max_ttl 20s: %d roles, %v renewals (rolvaliduntil moved), both credentials logged in", r.minted(t), renewals)
}

// TestDatabaseLeaseAdoptedAfterKill: an init container (`once`) and then
// daemons share a state_dir. The daemon adopts the lease `once` minted,
// a daemon started after kill -9 adopts it again, the file is never
// rewritten and no role is added; a daemon with revoke_on_shutdown: lease
// revokes it on SIGTERM and the role is dropped.
func TestDatabaseLeaseAdoptedAfterKill(t *testing.T) {
	r := startPGRig(t)
	r.role(t, "app", "1h", "2h")
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "app", "db.env") // the application's volume, apart from the state
	config := func(revoke string) string {
		return writeConfig(t, dir, fmt.Sprintf(`
leases: {state_dir: %s, revoke_on_shutdown: %s}
secrets:
  - name: db
    lease: {path: database/creds/app}
    destination: %s
    template: %s
`, state, revoke, out, pgTemplate))
	}
	cfg := config("none")
	// once's status file is its own: a daemon's readiness is the daemon's.
	env := slices.Concat(r.env, []string{"SIDECAR_STATUS_FILE=" + filepath.Join(t.TempDir(), "status.json"), "SIDECAR_HTTP_ADDR="})
	if code, _, stderr := runBinary(t, env, "once", "--config", cfg, "--timeout", "30s"); code != exitOK {
		t.Fatalf("once: exit %d\n%s", code, stderr)
	}
	user, pass := creds(t, out)
	before := statFile(t, out)
	unchanged := func(when string) {
		t.Helper()
		if n := r.minted(t); n != 1 {
			t.Errorf("%s: %d roles minted, want 1", when, n)
		}
		if after := statFile(t, out); !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
			t.Errorf("%s: the file was rewritten", when)
		}
		if got, err := r.login(t, user, pass); err != nil || got != user {
			t.Errorf("%s: login with the written credentials: %q, %v", when, got, err)
		}
	}
	adopted := func(d *daemon) {
		t.Helper()
		if len(logLines(d, "lease adopted from the state directory")) != 1 {
			t.Errorf("the daemon did not log an adoption")
		}
		m := d.metrics(t)
		if n := metricSum(m, "secrets_sidecar_leases_issued_total"); n != 0 {
			t.Errorf("the daemon issued %v leases, want 0", n)
		}
	}

	// Each daemon has its own status file: one killed leaves "ready" behind.
	// A dry run answers from the state directory: nothing to mint, the
	// file unchanged; also while a daemon holds the directory.
	dry := func(when string) {
		t.Helper()
		code, stdout := dryRun(t, env, cfg, dir, pass)
		if code != exitOK || strings.TrimSpace(stdout) != "unchanged db "+out {
			t.Errorf("dry run %s: exit %d, %q; want 0 and the file unchanged", when, code, stdout)
		}
	}
	dry("after once")

	d := startDaemon(t, cfg, t.TempDir(), append(r.env, "SIDECAR_HTTP_ADDR="+freeAddr(t))...)
	d.waitReady(t, time.Minute)
	adopted(d)
	unchanged("daemon after once")
	dry("beside the daemon")
	d.kill(t)

	d = startDaemon(t, cfg, t.TempDir(), append(r.env, "SIDECAR_HTTP_ADDR="+freeAddr(t))...)
	d.waitReady(t, time.Minute)
	adopted(d)
	unchanged("daemon after kill -9")
	if n := r.pg.Query(t, "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'v-%'"); n != "1" {
		t.Errorf("%s roles made by Vault after a kill -9 restart, want 1", n)
	}
	if _, code := d.term(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	if r.roles(t, user) != "1" {
		t.Fatal("revoke_on_shutdown: none dropped the role")
	}

	d = startDaemon(t, config("lease"), t.TempDir(), append(r.env, "SIDECAR_HTTP_ADDR="+freeAddr(t))...)
	d.waitReady(t, time.Minute)
	adopted(d)
	unchanged("daemon with revoke_on_shutdown")
	if _, code := d.term(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	if len(logLines(d, "lease revoked on shutdown")) != 1 {
		t.Error("no revocation logged")
	}
	// sync=false: Vault drops the role after it answered the revocation.
	waitFor(t, time.Minute, "Vault to drop the revoked role", func() bool { return r.roles(t, user) == "0" })
	if _, err := r.login(t, user, pass); err == nil {
		t.Error("the revoked credentials still log in")
	}
	t.Logf("once + daemon + kill -9 + daemon: %d role minted, file never rewritten; revoke_on_shutdown: lease dropped it", r.minted(t))
}

// TestDatabaseBrokenRenewStatementIsBounded: a role whose renew statement
// always fails. Every renewal errors, so each lease is replaced before it
// ends; the new-lease cap stops the replacements at max_new_leases within
// one lease period, with a log line and a metric, instead of a loop of
// new roles.
func TestDatabaseBrokenRenewStatementIsBounded(t *testing.T) {
	r := startPGRig(t)
	r.role(t, "app", "3s", "1h", `ALTER ROLE "{{name}}" VALID UNTIL 'not a date';`)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf(`
leases: {max_new_leases: 3}
secrets:
  - name: db
    lease: {path: database/creds/app}
    destination: %s
    template: %s
`, filepath.Join(dir, "db.env"), pgTemplate))
	d := startDaemon(t, cfg, dir, append(r.env, "SIDECAR_HTTP_ADDR="+freeAddr(t))...)
	d.waitReady(t, time.Minute)
	waitFor(t, 2*time.Minute, "the new-lease cap", func() bool {
		return len(logLines(d, "new-lease cap reached: no new lease for this request until one lease period has passed")) > 0
	})
	m := d.metrics(t)
	if n := r.minted(t); n != 4 {
		t.Errorf("%d roles when the cap was reached, want 4 (the first and max_new_leases 3)", n)
	}
	if n := metricSum(m, "secrets_sidecar_lease_cap_reached_total", `secret_name="db"`); n < 1 {
		t.Errorf("cap metric %v, want at least 1", n)
	}
	if n := metricSum(m, "secrets_sidecar_lease_renewals_total", `result="error"`); n < 3 {
		t.Errorf("%v failed renewals in the metrics, want one per lease at least", n)
	}
	for _, l := range logLines(d, "lease replacement failed; trying again") {
		if wait, err := time.ParseDuration(fmt.Sprint(l["retry_in"])); err != nil || wait < time.Minute {
			t.Errorf("after the cap, the next try in %v (%v); want a lease period at least", l["retry_in"], err)
		}
	}
	if n := r.minted(t); n != 4 {
		t.Errorf("%d roles after the cap, want 4", n)
	}
	t.Logf("broken renew statement, default_ttl 3s, max_new_leases 3: %d roles, then the cap", r.minted(t))
}

// TestDatabaseStaticRoleRotation: a static role (database/static-creds)
// has no lease; a manual rotation in Vault reaches the file at the next
// refresh interval. The new password logs in and the old one no longer
// does.
func TestDatabaseStaticRoleRotation(t *testing.T) {
	r := startPGRig(t)
	r.pg.Query(t, `CREATE ROLE appstatic WITH LOGIN PASSWORD 'not-yet-rotated'`)
	r.srv.Write(t, "database/static-roles/appstatic", map[string]any{
		"db_name": "pg", "username": "appstatic", "rotation_period": "1h",
	})
	dir := t.TempDir()
	out := filepath.Join(dir, "db.env")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
secrets:
  - name: db
    lease: {path: database/static-creds/appstatic}
    refresh_interval: 1s
    destination: %s
    template: %s
`, out, pgTemplate))
	d := startDaemon(t, cfg, dir, append(r.env, "SIDECAR_HTTP_ADDR="+freeAddr(t))...)
	d.waitReady(t, time.Minute)
	user, pass1 := creds(t, out)
	if user != "appstatic" || pass1 == "not-yet-rotated" {
		t.Fatalf("static creds: user %q, password rotated: %v", user, pass1 != "not-yet-rotated")
	}
	if _, err := r.login(t, user, pass1); err != nil {
		t.Fatalf("login with the static role's password: %v", err)
	}
	r.srv.Write(t, "database/rotate-role/appstatic", map[string]any{})
	waitFor(t, time.Minute, "the rotated password in the file", func() bool {
		_, p := creds(t, out)
		return p != pass1
	})
	_, pass2 := creds(t, out)
	if _, err := r.login(t, user, pass2); err != nil {
		t.Errorf("login with the rotated password: %v", err)
	}
	if _, err := r.login(t, user, pass1); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("the password from before the rotation: %v, want refused", err)
	}
	if n := metricSum(d.metrics(t), "secrets_sidecar_leases_issued_total"); n != 0 {
		t.Errorf("a static role issued %v leases", n)
	}
	if _, code := d.term(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}
