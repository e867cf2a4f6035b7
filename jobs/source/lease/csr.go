package lease

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"strings"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// With lease.generate_key the sidecar makes the private key itself and
// sends Vault only a certificate signing request (pki/sign/ROLE): the key
// never leaves the pod. A new key is made for every issuance. The key's
// type and size come from the request's key_type and key_bits parameters
// (as for pki/issue; they are not sent), and the CSR carries common_name,
// alt_names and ip_sans. The key is added to the response's data as
// private_key (PKCS #8 PEM) and private_key_type, so templates read it as
// they would from pki/issue.

// csrRequest makes a key and a CSR for params and returns the parameters
// to send (csr added, key_type and key_bits left out) and the key as PEM.
func csrRequest(params map[string]any) (send map[string]any, keyPEM, keyType string, err error) {
	keyType, bits, err := config.KeySpec(params)
	if err != nil {
		return nil, "", "", err
	}
	var key crypto.Signer
	switch keyType {
	case "ec":
		curve := map[int]elliptic.Curve{224: elliptic.P224(), 256: elliptic.P256(), 384: elliptic.P384(), 521: elliptic.P521()}[bits]
		key, err = ecdsa.GenerateKey(curve, rand.Reader)
	case "rsa":
		key, err = rsa.GenerateKey(rand.Reader, bits)
	default:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("generate a %s key: %w", keyType, err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: fmt.Sprint(params["common_name"])}}
	for _, n := range list(params["alt_names"]) {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	for _, n := range list(params["ip_sans"]) {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, "", "", fmt.Errorf("certificate signing request: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, "", "", fmt.Errorf("encode the %s key: %w", keyType, err)
	}
	send = maps.Clone(params)
	delete(send, "key_type")
	delete(send, "key_bits")
	send["csr"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	return send, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})), keyType, nil
}

// list splits a comma-separated parameter ("a,b") into its names.
func list(v any) []string {
	if v == nil {
		return nil
	}
	var out []string
	for _, n := range strings.Split(fmt.Sprint(v), ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}
