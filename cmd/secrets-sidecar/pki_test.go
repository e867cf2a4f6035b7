package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestPKICertificateLease: a certificate from the dev server's real PKI
// engine through `lease.method: POST` on pki/issue/ROLE. The certificate
// and the key are two secrets with the same request, so they come from one
// issuance (the pair loads as a TLS key pair and chains to the dev CA); a
// second `once` with the same state_dir reuses the recorded issuance (same
// serial, files untouched) instead of issuing another certificate; the
// private key never reaches the log.
func TestPKICertificateLease(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	role := strings.ReplaceAll(p, "/", "-")
	srv.Write(t, "pki/roles/"+role, map[string]any{
		"allow_any_name": true, "max_ttl": "1h", "generate_lease": true, "key_type": "ec", "key_bits": 256,
	})
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
leases: {state_dir: %[3]s}
secrets:
  - name: tls-cert
    lease:
      path: pki/issue/%[1]s
      method: POST
      parameters: {common_name: app.example, ttl: 30m}
    destination: %[2]s/tls.crt
    template: "{{ .certificate }}\n{{ .issuing_ca }}\n"
  - name: tls-key
    lease:
      path: pki/issue/%[1]s
      method: POST
      parameters: {common_name: app.example, ttl: 30m}
    destination: %[2]s/tls.key
    key: private_key
`, role, out, state))
	env := []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token, "SIDECAR_STATUS_FILE=" + filepath.Join(dir, "status.json"),
		"SIDECAR_HTTP_ADDR=", "SIDECAR_LOG_LEVEL=debug"}

	code, _, stderr := runBinary(t, env, "once", "--config", cfg, "--timeout", "20s")
	if code != exitOK {
		t.Fatalf("once: exit %d\n%s", code, stderr)
	}
	certPEM, keyPEM := readFile(t, filepath.Join(out, "tls.crt")), readFile(t, filepath.Join(out, "tls.key"))
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatalf("certificate and key are not one pair: %v", err)
	}
	if strings.Contains(stderr, strings.TrimSpace(keyPEM)[30:90]) {
		t.Errorf("the private key reached the log:\n%s", stderr)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	ca := srv.Client(t)
	caSecret, err := ca.Logical().Read("pki/cert/ca")
	if err != nil || caSecret == nil {
		t.Fatalf("read pki/cert/ca: %v", err)
	}
	block, _ := pem.Decode([]byte(caSecret.Data["certificate"].(string)))
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "app.example"}); err != nil {
		t.Errorf("the certificate does not chain to the dev CA for app.example: %v", err)
	}

	// The same request with the same state_dir: the recorded issuance is
	// still valid, so no new certificate is issued and nothing is rewritten.
	before := statFile(t, filepath.Join(out, "tls.crt"))
	code, _, stderr = runBinary(t, env, "once", "--config", cfg, "--timeout", "20s")
	if code != exitOK {
		t.Fatalf("second once: exit %d\n%s", code, stderr)
	}
	if got := readFile(t, filepath.Join(out, "tls.crt")); got != certPEM {
		t.Errorf("a second run with the same state_dir issued a new certificate")
	}
	if after := statFile(t, filepath.Join(out, "tls.crt")); !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("a second run rewrote an unchanged certificate")
	}
}

func statFile(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}
