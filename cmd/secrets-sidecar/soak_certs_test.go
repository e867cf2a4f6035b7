//go:build soak

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestSoakCertificateSet (`make test-soak`): a 7 s certificate as a
// files: set, issued again about every 2 s by the real binary against the
// dev server's PKI, 100 times, while readers hammer the set. A reader that
// resolves the data link once must never see a certificate with another
// issuance's key; the count of name-by-name mismatches is reported.
func TestSoakCertificateSet(t *testing.T) {
	const renewals = 100
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	role := pkiRole(t, srv, "soak-certs", nil)
	out := filepath.Join(dir, "tls")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
notify: {debounce: 100ms}
leases: {max_new_leases: 1000}
secrets:
  - name: web-tls
    lease: {path: pki/issue/%[1]s, method: POST, parameters: {common_name: app.example, ttl: 7s}}
    refresh_interval: 1s
    files:
      - {destination: %[2]s/tls.crt, key: certificate}
      - {destination: %[2]s/tls.key, key: private_key}
      - {destination: %[2]s/bundle.pem, content: bundle}
`, role, out))
	d := startDaemon(t, cfg, dir, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_HTTP_ADDR="+freeAddr(t))
	d.waitReady(t, time.Minute)

	reads, stop := hammerSet(out, "web-tls", 2)
	serials := map[string]bool{}
	start := time.Now()
	waitFor(t, 10*time.Minute, fmt.Sprintf("%d renewals", renewals), func() bool {
		if s, err := readPair(filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key")); err == nil {
			serials[s] = true
		}
		return len(serials) > renewals
	})
	stop()
	if reads.linkTorn.Load() > 0 || reads.bundleTorn.Load() > 0 {
		t.Errorf("torn reads: %s", reads)
	}
	sets, _ := filepath.Glob(filepath.Join(out, "..web-tls_*"))
	if len(sets) > 2 {
		t.Errorf("%d set directories left: %v", len(sets), sets)
	}
	if log := d.logs.String(); strings.Contains(log, "BEGIN") {
		t.Error("PEM content reached the log")
	}
	t.Logf("%d certificates in %s; %s", len(serials), time.Since(start).Round(time.Second), reads)
}

// TestSoakCertificateTenMinutes (`make test-soak`): a 60 s certificate
// refreshed every second, for ten minutes of real time against the dev
// server's PKI. A certificate is issued again at about 2/3 of its life
// (40 s, jittered), so the run sees about 15 issuances, not one per
// refresh (600).
func TestSoakCertificateTenMinutes(t *testing.T) {
	const window = 10 * time.Minute
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	role := pkiRole(t, srv, "soak-ten", nil)
	out := filepath.Join(dir, "tls")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
secrets:
  - name: web-tls
    lease: {path: pki/issue/%[1]s, method: POST, parameters: {common_name: app.example, ttl: 60s}}
    refresh_interval: 1s
    files:
      - {destination: %[2]s/tls.crt, key: certificate}
      - {destination: %[2]s/tls.key, key: private_key}
`, role, out))
	d := startDaemon(t, cfg, dir, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_HTTP_ADDR="+freeAddr(t))
	d.waitReady(t, time.Minute)
	start := time.Now()
	serials := map[string]bool{}
	// The window is the measurement, not a wait for an event: sample the
	// set once a second until it has passed.
	for time.Since(start) < window {
		if s, err := readPair(filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key")); err == nil {
			serials[s] = true
		}
		time.Sleep(time.Second)
	}
	m := d.metrics(t)
	issued := metricSum(m, "secrets_sidecar_leases_issued_total")
	fetches := metricSum(m, "secrets_sidecar_fetch_total")
	t.Logf("%s: %v issuances (%v initial, %v certificate), %d serials seen in the files, %v fetches",
		window, issued, metricSum(m, "secrets_sidecar_leases_issued_total", `reason="initial"`),
		metricSum(m, "secrets_sidecar_leases_issued_total", `reason="certificate"`), len(serials), fetches)
	// 600 s / 40 s = 15, give or take the jitter at each end.
	if issued < 13 || issued > 18 {
		t.Errorf("%v issuances in %s of a 60 s certificate, want about 15", issued, window)
	}
	if float64(len(serials)) > issued {
		t.Errorf("%d serials in the files but %v issuances counted", len(serials), issued)
	}
}
