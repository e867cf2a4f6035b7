package config_test

import (
	"net/http"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// A leased secret gets the leases: block's fractions unless it sets its
// own, keeps mount and kv_version of defaults: out of its request, and is
// known by its API path; the same request with other parameters is
// another lease.
func TestLeaseDefaults(t *testing.T) {
	cfg, err := config.Loader{LookupEnv: noEnv, Templates: render.NewSet()}.Parse("leases.yaml", []byte(`
defaults:
  mount: kv
  kv_version: "1"
leases:
  replace_fraction: 0.8
secrets:
  - name: user
    lease: {path: /database/creds/app/}
    destination: /secrets/user
    key: username
  - name: pass
    lease: {path: database/creds/app, method: get}
    destination: /secrets/pass
    key: password
  - name: cert
    lease:
      path: pki/issue/web
      method: post
      parameters: {common_name: a.example, ttl: 1h}
      renew_fraction: 0.5
    destination: /secrets/cert.pem
    key: certificate
  - name: cert2
    lease:
      path: pki/issue/web
      method: POST
      parameters: {common_name: b.example, ttl: 1h}
    destination: /secrets/cert2.pem
    key: certificate
  - name: plain
    path: app
    destination: /secrets/plain
    key: k
`))
	if err != nil {
		t.Fatal(err)
	}
	user, pass, cert, cert2, plain := &cfg.Secrets[0], &cfg.Secrets[1], &cfg.Secrets[2], &cfg.Secrets[3], &cfg.Secrets[4]
	if user.Lease.Method != http.MethodGet || pass.Lease.Method != http.MethodGet || cert.Lease.Method != http.MethodPost {
		t.Errorf("methods: %q %q %q", user.Lease.Method, pass.Lease.Method, cert.Lease.Method)
	}
	if user.VaultPath() != "database/creds/app" || plain.VaultPath() != "kv/app" {
		t.Errorf("vault paths: %q, %q", user.VaultPath(), plain.VaultPath())
	}
	if user.Lease.Fingerprint() != pass.Lease.Fingerprint() {
		t.Error("the same request (path written two ways, method in two cases) has two fingerprints")
	}
	if cert.Lease.Fingerprint() == cert2.Lease.Fingerprint() {
		t.Error("other parameters, the same fingerprint")
	}
	if *user.Lease.RenewFraction != config.DefaultRenewFraction || *user.Lease.ReplaceFraction != 0.8 ||
		*cert.Lease.RenewFraction != 0.5 || *cfg.Leases.MaxNewLeases != config.DefaultMaxNewLeases ||
		cfg.Leases.RevokeOnShutdown != config.RevokeNone {
		t.Errorf("fractions: %v %v %v, leases %+v", *user.Lease.RenewFraction, *user.Lease.ReplaceFraction, *cert.Lease.RenewFraction, cfg.Leases)
	}
	if !user.IsLeased() || plain.IsLeased() {
		t.Error("IsLeased")
	}
}
