package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	role := pkiRole(t, srv, p, map[string]any{"generate_lease": true})
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

// TestPKICertificateRenewedByItsOwnClock: a PKI role without
// generate_lease (PKI's default) issues certificates with no lease. The
// certificate is its own clock: the daemon issues it again at about 2/3 of
// its 20s life, not at every 1s refresh. A TLS server that loads the
// written files at each handshake and a client that trusts only the dev CA
// see the serial change; Vault lists exactly one new certificate.
func TestPKICertificateRenewedByItsOwnClock(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	role := pkiRole(t, srv, p, nil)
	out := filepath.Join(dir, "out")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
secrets:
  - name: tls-cert
    lease:
      path: pki/issue/%[1]s
      method: POST
      parameters: {common_name: app.example, ttl: 20s}
    refresh_interval: 1s
    destination: %[2]s/tls.crt
    key: certificate
  - name: tls-key
    lease:
      path: pki/issue/%[1]s
      method: POST
      parameters: {common_name: app.example, ttl: 20s}
    refresh_interval: 1s
    destination: %[2]s/tls.key
    key: private_key
`, role, out))
	d := startDaemon(t, cfg, dir, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_HTTP_ADDR="+freeAddr(t))
	d.waitReady(t, time.Minute)

	issued := func() int {
		sec, err := srv.Client(t).Logical().List("pki/certs")
		if err != nil || sec == nil {
			t.Fatalf("list pki/certs: %v", err)
		}
		keys, _ := sec.Data["keys"].([]any)
		return len(keys)
	}
	before := issued()
	serve := tlsFromFiles(t, filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key"))
	roots := x509.NewCertPool()
	caSecret, err := srv.Client(t).Logical().Read("pki/cert/ca")
	if err != nil || caSecret == nil || !roots.AppendCertsFromPEM([]byte(caSecret.Data["certificate"].(string))) {
		t.Fatalf("read pki/cert/ca: %v", err)
	}
	serial := func() string {
		conn, err := tls.Dial("tcp", serve, &tls.Config{RootCAs: roots, ServerName: "app.example", MinVersion: tls.VersionTLS12})
		if err != nil {
			return "" // the files are between the two writes
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	var first string
	waitFor(t, time.Minute, "a TLS handshake with the written certificate", func() bool { first = serial(); return first != "" })
	var second string
	waitFor(t, 2*time.Minute, "the certificate issued again, served with its key", func() bool {
		second = serial()
		return second != "" && second != first
	})
	// status shows the file's certificate by serial, as Vault writes it.
	waitFor(t, time.Minute, "the status file to show the certificate in the file", func() bool {
		block, _ := pem.Decode([]byte(readFile(t, filepath.Join(out, "tls.crt"))))
		leaf, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		hexed := fmt.Sprintf("%x", leaf.SerialNumber.Bytes())
		var pairs []string
		for i := 0; i < len(hexed); i += 2 {
			pairs = append(pairs, hexed[i:i+2])
		}
		_, table, _ := runBinary(t, nil, "status", "--status-file", d.status)
		return strings.Contains(table, strings.Join(pairs, ":")+" until ")
	})
	m := d.metrics(t)
	if n := metricSum(m, "secrets_sidecar_leases_issued_total", `reason="certificate"`); n < 1 {
		t.Errorf("%v issuances for reason certificate", n)
	}
	// Issued again once (both files from one issuance), not at every refresh.
	if n := metricSum(m, "secrets_sidecar_leases_issued_total"); n < 2 || n > 3 {
		t.Errorf("%v issuances in the metrics for a 20s certificate, want 2 (or 3 if the next one came due)", n)
	}
	if got := issued() - before; got < 1 || got > 2 {
		t.Errorf("Vault issued %d certificates after the first, want 1 (2 if the next one came due)", got)
	}
	t.Logf("20s certificate without a lease, refreshed every 1s: serial %s then %s; %d issued by Vault since start", first, second, issued()-before+1)
}

// TestPKICertificateKeptAcrossReload: a config reload that keeps the
// certificate's request (here it adds a KV secret and changes the key's
// mode) issues no new certificate and leaves the certificate file alone.
func TestPKICertificateKeptAcrossReload(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	role := pkiRole(t, srv, p, nil)
	srv.PutKV2(t, "secret", p+"/app", map[string]any{"name": "app"})
	out := filepath.Join(dir, "out")
	config := func(keyMode, extra string) string {
		return fmt.Sprintf(`
secrets:
  - name: tls-cert
    lease: {path: pki/issue/%[1]s, method: POST, parameters: {common_name: app.example, ttl: 30m}}
    refresh_interval: 1s
    destination: %[2]s/tls.crt
    key: certificate
  - name: tls-key
    lease: {path: pki/issue/%[1]s, method: POST, parameters: {common_name: app.example, ttl: 30m}}
    refresh_interval: 1s
    mode: "%[3]s"
    destination: %[2]s/tls.key
    key: private_key
%[4]s`, role, out, keyMode, extra)
	}
	cfg := writeConfig(t, dir, config("0400", ""))
	d := startDaemon(t, cfg, dir, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_HTTP_ADDR="+freeAddr(t))
	d.waitReady(t, time.Minute)
	cert := readFile(t, filepath.Join(out, "tls.crt"))
	before := statFile(t, filepath.Join(out, "tls.crt"))

	writeConfig(t, dir, config("0440", fmt.Sprintf(`  - name: app
    path: %s/app
    destination: %s/app
    key: name
`, p, out)))
	waitFor(t, time.Minute, "the reload's new secret", func() bool {
		_, err := os.Stat(filepath.Join(out, "app"))
		return err == nil
	})
	waitFor(t, time.Minute, "the key's new mode", func() bool { return statFile(t, filepath.Join(out, "tls.key")).Mode().Perm() == 0o440 })
	if got := readFile(t, filepath.Join(out, "tls.crt")); got != cert {
		t.Error("a reload that keeps the request issued a new certificate")
	}
	if after := statFile(t, filepath.Join(out, "tls.crt")); !os.SameFile(before, after) {
		t.Error("a reload rewrote the unchanged certificate")
	}
	if n := metricSum(d.metrics(t), "secrets_sidecar_leases_issued_total"); n != 1 {
		t.Errorf("%v issuances across a reload, want 1", n)
	}
}

// tlsFromFiles serves TLS on 127.0.0.1 with the key pair loaded from the
// files at every handshake (a server that reloads its certificate), and
// returns its address.
func tlsFromFiles(t *testing.T, certFile, keyFile string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		return &pair, err
	}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = tls.Server(c, cfg).Handshake()
			}()
		}
	}()
	return ln.Addr().String()
}

// pkiRole makes the dev server's PKI role for a test whose prefix is p:
// any name, EC P-256 keys, a 1 h max TTL, overridden by extra. It
// returns the role's name.
func pkiRole(t *testing.T, srv *vaulttest.Server, p string, extra map[string]any) string {
	t.Helper()
	role := strings.ReplaceAll(p, "/", "-")
	settings := map[string]any{"allow_any_name": true, "max_ttl": "1h", "key_type": "ec", "key_bits": 256}
	maps.Copy(settings, extra)
	srv.Write(t, "pki/roles/"+role, settings)
	return role
}

func statFile(t *testing.T, path string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}
