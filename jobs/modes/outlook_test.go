package modes_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// selfSigned is a PEM certificate valid until notAfter.
func selfSigned(t *testing.T, cn string, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestOutlookMetrics against the real Vault: a KV v2 secret exports when
// its version was created (about now) and its interval; a rendered chain
// exports exactly its earliest NotAfter, a malformed CERTIFICATE block
// beside it is ignored and never logged; a KV v1 secret and a file without
// a certificate export neither; a reload that drops a certificate from the
// output drops the series, and one that removes a secret drops all of its.
func TestOutlookMetrics(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	leafExpiry := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second).UTC()
	caExpiry := time.Now().Add(400 * 24 * time.Hour).Truncate(time.Second).UTC()
	const junk = "bm90LWEtY2VydGlmaWNhdGUtYnV0LWEtc2VjcmV0" // base64, not DER
	chain := selfSigned(t, "leaf", leafExpiry) + selfSigned(t, "ca", caExpiry) +
		"-----BEGIN CERTIFICATE-----\n" + junk + "\n-----END CERTIFICATE-----\n"
	before := time.Now()
	srv.PutKV2(t, "secret", p+"/tls", map[string]any{"chain": chain, "v": "x"})
	after := time.Now()
	srv.PutKV1(t, "kv", p+"/legacy", map[string]any{"v": "old"})

	out := filepath.Join(w.dir, "out")
	text := func(tlsTemplate string, legacy bool) string {
		s := fmt.Sprintf("secrets:\n  - {name: tls, path: %s/tls, destination: %s/tls.pem, refresh_interval: 90s, template: %q}\n",
			p, out, tlsTemplate)
		if legacy {
			s += fmt.Sprintf("  - {name: legacy, mount: kv, path: %s/legacy, destination: %s/legacy, refresh_interval: 2m, key: v}\n", p, out)
		}
		return s
	}
	cfg := loadConfig(t, w.dir, text("{{ .chain }}", true))
	d := w.daemon(t, cfg)
	eventually(t, 10*time.Second, "both files written", w.status.Ready)

	gauge := func(name, secret string) float64 {
		return counter(t, w.reg, "secrets_sidecar_"+name, map[string]string{"secret_name": secret})
	}
	if got := gauge("certificate_expiry_timestamp_seconds", "tls"); got != float64(leafExpiry.Unix()) {
		t.Errorf("certificate expiry = %v, want the leaf's NotAfter %d", got, leafExpiry.Unix())
	}
	created := gauge("secret_version_created_timestamp_seconds", "tls")
	t.Logf("version created %.3f, put between %.3f and %.3f", created, float64(before.UnixNano())/1e9, float64(after.UnixNano())/1e9)
	if created < float64(before.Add(-2*time.Second).Unix()) || created > float64(after.Add(2*time.Second).Unix()) {
		t.Errorf("version created = %v, want the time of the put (%v .. %v)", created, before, after)
	}
	for secret, want := range map[string]float64{"tls": 90, "legacy": 120} {
		if got := gauge("secret_refresh_interval_seconds", secret); got != want {
			t.Errorf("refresh interval of %s = %v, want %v", secret, got, want)
		}
	}
	series := func(name string) int {
		n, err := testutil.GatherAndCount(w.reg, "secrets_sidecar_"+name)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := series("certificate_expiry_timestamp_seconds"); n != 1 {
		t.Errorf("%d certificate expiry series, want 1 (legacy holds no certificate)", n)
	}
	if n := series("secret_version_created_timestamp_seconds"); n != 1 {
		t.Errorf("%d version created series, want 1 (legacy is KV v1)", n)
	}
	if logs := w.logs.String(); strings.Contains(logs, junk) || strings.Contains(logs, "MII") {
		t.Fatal("certificate content reached the logs")
	}
	if !strings.Contains(w.logs.String(), "PEM CERTIFICATE blocks that do not parse") {
		t.Error("the malformed block was not mentioned at debug level")
	}

	// The certificate leaves the output; then legacy leaves the config.
	if err := d.Apply(t.Context(), loadConfig(t, w.dir, text("{{ .v }}", true))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the certificate series gone", func() bool {
		return series("certificate_expiry_timestamp_seconds") == 0
	})
	if err := d.Apply(t.Context(), loadConfig(t, w.dir, text("{{ .v }}", false))); err != nil {
		t.Fatal(err)
	}
	if gauge("secret_refresh_interval_seconds", "legacy") != 0 || series("secret_refresh_interval_seconds") != 1 {
		t.Error("the removed secret's refresh interval series is still there")
	}
	if gauge("secret_version_created_timestamp_seconds", "tls") == 0 {
		t.Error("the kept secret lost its version created series")
	}
}

// TestNewJobStartsCountersAtZero: a secret's fetch, error and write
// counters exist at 0 from the moment its job is made, before any sync, so
// that rate() and increase() in the shipped alerts see the first error.
func TestNewJobStartsCountersAtZero(t *testing.T) {
	w := newWorld(t, vaulttest.Shared(t), breaker.Settings{})
	cfg := loadConfig(t, w.dir, fmt.Sprintf(`
secrets:
  - name: fresh
    path: %s/never-read
    destination: %s/out/fresh
    key: v
`, uniq(t), w.dir))
	if _, err := w.syncer.NewJob(cfg.Secrets[0]); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{"errors_total": 4, "fetch_total": 2, "file_writes_total": 1} {
		n, err := testutil.GatherAndCount(w.reg, "secrets_sidecar_"+name)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s: %d series after NewJob, want %d (one per stage or result, at 0)", name, n, want)
		}
	}
}
