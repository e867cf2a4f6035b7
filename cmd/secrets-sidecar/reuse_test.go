package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestCertificateReusedWithoutStateDir: `once` (an init container) issues
// three certificates, without leases.state_dir: a files: set (key files,
// the chain and the bundle), one templated file, and a pki/sign set with
// a key made by the sidecar. The daemon started after it, then again
// after kill -9, issues none: it finds each on disk, checks it against
// the request and the issuer Vault reports, and keeps it; nothing is
// rewritten and no change action runs. A dry run says unchanged. A file
// a co-tenant replaced with a self-signed pair of the same name is not
// kept: that certificate alone is issued again.
func TestCertificateReusedWithoutStateDir(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	role := pkiRole(t, srv, p, nil)
	signRole := pkiRole(t, srv, p+"-sign", map[string]any{"key_type": "any"})
	out := filepath.Join(dir, "tls")
	single := filepath.Join(dir, "single.pem")
	signed := filepath.Join(dir, "signed")
	changes := filepath.Join(dir, "changes.log")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
secrets:
  - name: web-tls
    lease: {path: pki/issue/%[1]s, method: POST, parameters: {common_name: app.example, alt_names: www.app.example, ttl: 30m}}
    on_start: true
    files:
      - {destination: %[2]s/tls.crt, key: certificate}
      - {destination: %[2]s/tls.key, key: private_key}
      - {destination: %[2]s/chain.pem, content: chain}
      - {destination: %[2]s/bundle.pem, content: bundle}
    on_change:
      - exec: {command: ["sh", "-c", "echo \"$SIDECAR_CHANGED_FILES\" >> %[3]s"]}
  - name: single
    lease: {path: pki/issue/%[1]s, method: POST, parameters: {common_name: single.example, ttl: 30m}}
    on_start: true
    destination: %[4]s
    template: "{{ .private_key }}\n{{ .certificate }}\n{{ .issuing_ca }}\n"
    on_change:
      - exec: {command: ["sh", "-c", "echo \"$SIDECAR_CHANGED_FILES\" >> %[3]s"]}
  - name: signed
    lease:
      path: pki/sign/%[5]s
      method: POST
      generate_key: true
      parameters: {common_name: signed.example, ttl: 30m, key_type: ec, key_bits: 384}
    files:
      - {destination: %[6]s/bundle.pem, content: bundle}
`, role, out, changes, single, signRole, signed))
	env := []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token, "SIDECAR_STATUS_FILE=" + filepath.Join(t.TempDir(), "status.json"), "SIDECAR_HTTP_ADDR="}
	code, _, stderr := runBinary(t, env, "once", "--config", cfg, "--timeout", "30s")
	if code != exitOK {
		t.Fatalf("once: exit %d\n%s", code, stderr)
	}
	if n := strings.Count(stderr, "lease minted"); n != 3 {
		t.Fatalf("once minted %d certificates, want 3\n%s", n, stderr)
	}
	type snapshot struct {
		link, signedLink string
		single           os.FileInfo
		serials          []string
	}
	take := func() snapshot {
		t.Helper()
		var s snapshot
		var err error
		if s.link, err = os.Readlink(filepath.Join(out, "..web-tls.data")); err != nil {
			t.Fatal(err)
		}
		if s.signedLink, err = os.Readlink(filepath.Join(signed, "..signed.data")); err != nil {
			t.Fatal(err)
		}
		s.single = statFile(t, single)
		for _, pair := range [][2]string{
			{filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key")},
			{filepath.Join(out, "bundle.pem"), filepath.Join(out, "bundle.pem")},
			{single, single},
			{filepath.Join(signed, "bundle.pem"), filepath.Join(signed, "bundle.pem")},
		} {
			serial, err := readPair(pair[0], pair[1])
			if err != nil {
				t.Fatalf("%s: %v", pair[0], err)
			}
			s.serials = append(s.serials, serial)
		}
		return s
	}
	before := take()
	same := func(when string) {
		t.Helper()
		now := take()
		if now.link != before.link || now.signedLink != before.signedLink {
			t.Errorf("%s: a set was written again: %s -> %s, %s -> %s", when, before.link, now.link, before.signedLink, now.signedLink)
		}
		if !os.SameFile(now.single, before.single) || !now.single.ModTime().Equal(before.single.ModTime()) {
			t.Errorf("%s: %s was written again", when, single)
		}
		if !slices.Equal(now.serials, before.serials) {
			t.Errorf("%s: serials %v, want %v", when, now.serials, before.serials)
		}
		if b, err := os.ReadFile(changes); err == nil && len(b) > 0 {
			t.Errorf("%s: a change action ran:\n%s", when, b)
		}
	}

	daemonEnv := func() []string {
		return []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token, "SIDECAR_HTTP_ADDR=" + freeAddr(t)}
	}
	for _, when := range []string{"the daemon after once", "the daemon after kill -9"} {
		d := startDaemon(t, cfg, t.TempDir(), daemonEnv()...)
		d.waitReady(t, time.Minute)
		if n := metricSum(d.metrics(t), "secrets_sidecar_leases_issued_total"); n != 0 {
			t.Errorf("%s: %v certificates issued, want 0\n%s", when, n, d.logs.String())
		}
		if n := strings.Count(d.logs.String(), "certificate on disk reused"); n != 3 {
			t.Errorf("%s: %d certificates reused, want 3\n%s", when, n, d.logs.String())
		}
		if log := d.logs.String(); strings.Contains(log, "PRIVATE KEY") || strings.Contains(log, "BEGIN CERTIFICATE") {
			t.Errorf("%s: PEM in the log", when)
		}
		same(when)
		d.kill(t)
	}

	code, stdout, stderr := runBinary(t, env, "once", "--dry-run", "--config", cfg, "--timeout", "30s")
	if code != exitOK || strings.Count(stdout, "unchanged ") != 6 {
		t.Errorf("dry run: exit %d, want 0 and 6 files unchanged\n%s%s", code, stdout, stderr)
	}

	// A co-tenant swaps in a self-signed pair with the same name and SANs.
	forged := selfSignedPair(t, "single.example")
	if err := os.Remove(single); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(single, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg, t.TempDir(), daemonEnv()...)
	d.waitReady(t, time.Minute)
	if n := metricSum(d.metrics(t), "secrets_sidecar_leases_issued_total"); n != 1 {
		t.Errorf("after the forged file: %v certificates issued, want 1", n)
	}
	if log := d.logs.String(); !strings.Contains(log, "does not chain to the issuer") || strings.Count(log, "certificate on disk reused") != 2 {
		t.Errorf("the forged certificate was not refused for its issuer, or the others not reused:\n%s", log)
	}
	if b, err := os.ReadFile(single); err != nil || string(b) == forged {
		t.Errorf("the forged file is still there (%v)", err)
	}
	t.Logf("once then two daemons: 3 issuances in all, 0 by either daemon; the forged file replaced by 1 issuance")
}

// selfSignedPair is a key and a self-signed certificate for cn (and the
// same DNS SAN) valid for 30 minutes, as one PEM text.
func selfSignedPair(t *testing.T, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: now.Add(-30 * time.Second), NotAfter: now.Add(30 * time.Minute)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
