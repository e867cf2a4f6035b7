package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pair is a self-signed certificate with the given serial and its key, as
// PEM blocks.
func pair(t *testing.T, serial int64) (keyPEM, certPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "tlsapp.internal"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestLoad: a bundle laid out as the sidecar's `content: bundle` (the key,
// then the certificate, then the CA) loads, its serial printed as Vault
// prints serials; a key of another issuance, or no file, does not load.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	key, cert := pair(t, 0x0a0b0c)
	_, ca := pair(t, 1)
	good := filepath.Join(dir, "bundle.pem")
	if err := os.WriteFile(good, append(append(key, cert...), ca...), 0o400); err != nil {
		t.Fatal(err)
	}
	c, err := load(good)
	if err != nil {
		t.Fatal(err)
	}
	if got := serial(c); got != "0a:0b:0c" || len(c.Certificate) != 2 {
		t.Errorf("serial %q with %d certificates, want 0a:0b:0c with 2", got, len(c.Certificate))
	}

	otherKey, _ := pair(t, 2)
	mixed := filepath.Join(dir, "mixed.pem")
	if err := os.WriteFile(mixed, append(otherKey, cert...), 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := load(mixed); err == nil || !strings.Contains(err.Error(), "mixed.pem") {
		t.Errorf("a certificate with another key loaded (%v)", err)
	}
	if _, err := load(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("a missing bundle loaded")
	}
}
