package render

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func TestHexdec(t *testing.T) {
	sum := sha256.Sum256([]byte("example"))
	runFuncCases(t, []funcCase{
		{name: "sha256sum | hexdec | b64enc is ESO's digest idiom", tpl: `{{ .example | sha256sum | hexdec | b64enc }}`, data: map[string]any{"example": "example"}, want: base64.StdEncoding.EncodeToString(sum[:])},
		{name: "upper case hex", tpl: `{{ .h | hexdec }}`, data: map[string]any{"h": "48692C"}, want: "Hi,"},
		{name: "empty", tpl: `{{ .h | hexdec }}`, data: map[string]any{"h": ""}, want: ""},
		{name: "invalid character", tpl: `{{ .h | hexdec }}`, data: map[string]any{"h": "zz"}, wantErr: "hexdec: input is not valid hex (invalid character)"},
		{name: "odd length", tpl: `{{ .h | hexdec }}`, data: map[string]any{"h": "abc"}, wantErr: "hexdec: input is not valid hex (odd length)"},
	})
}

func TestHtpasswd(t *testing.T) {
	data := map[string]any{"user": "alice", "pass": "s3cr3t pass"}
	sha := sha1.Sum([]byte("s3cr3t pass"))
	bcryptOK := func(t *testing.T, out string) {
		user, hash, ok := strings.Cut(out, ":")
		if !ok || user != "alice" {
			t.Fatalf("output %q is not alice:<hash>", out)
		}
		if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("s3cr3t pass")); err != nil {
			t.Fatalf("the hash does not match the password: %v", err)
		}
		if bcrypt.CompareHashAndPassword([]byte(hash), []byte("other")) == nil {
			t.Fatal("the hash matches another password")
		}
	}
	runFuncCases(t, []funcCase{
		{name: "two arguments: bcrypt", tpl: `{{ htpasswd .user .pass }}`, data: data, check: bcryptOK},
		{name: "sha", tpl: `{{ htpasswd .user .pass "sha" }}`, data: data, want: "alice:{SHA}" + base64.StdEncoding.EncodeToString(sha[:])},
		{name: "bcrypt named", tpl: `{{ htpasswd .user .pass "bcrypt" }}`, data: data, check: bcryptOK},
		{name: "any other algorithm is bcrypt", tpl: `{{ htpasswd .user .pass "md5" }}`, data: data, check: bcryptOK},
		{name: "SHA is case-sensitive like ESO", tpl: `{{ htpasswd .user .pass "SHA" }}`, data: data, check: bcryptOK},
		{name: "user with a colon", tpl: `{{ htpasswd "a:b" .pass "sha" }}`, data: data, wantErr: "htpasswd: the user name must not contain ':'"},
		{name: "two algorithms", tpl: `{{ htpasswd .user .pass "sha" "sha" }}`, data: data, wantErr: "at most one hash algorithm"},
	})
}

// leakMarker is planted in the input of every decoding function; no error may
// show it, in any encoding, nor any of its characters quoted on their own.
const leakMarker = "QZXMARKERQZX"

func assertNoLeak(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	msg := err.Error()
	forms := []string{leakMarker, hex.EncodeToString([]byte(leakMarker)), strings.ToUpper(hex.EncodeToString([]byte(leakMarker))),
		base64.StdEncoding.EncodeToString([]byte(leakMarker))[:12], base64.RawURLEncoding.EncodeToString([]byte(leakMarker))[:12],
		"'Q'", "'Z'", "'X'", "'M'", "U+0051", "U+005A"}
	for _, f := range forms {
		if strings.Contains(msg, f) {
			t.Errorf("%s: error %q shows the input (%q)", what, msg, f)
		}
	}
}

// markerCert is a certificate whose URI SAN holds the marker and is no valid
// URI, which x509.ParseCertificate rejects with an error quoting it.
func markerCert(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "leak"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		URIs: []*url.URL{{Scheme: "https", Host: leakMarker + ":port"}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// TestDecodeErrorsNeverShowInput calls every decoding function on malformed
// input that carries a marker and checks that the error shows none of it.
func TestDecodeErrorsNeverShowInput(t *testing.T) {
	cert := markerCert(t)
	key := fixture(t, "leaf-pkcs8.key")
	// DER whose structure breaks where the marker sits.
	junkDER := append([]byte{0x30, 0x82, 0x01, 0x00, 0x04, byte(len(leakMarker))}, leakMarker...)
	pfxLike := string(junkDER)
	calls := map[string]func() error{
		"pkcs12key junk":  func() error { _, err := pkcs12key(pfxLike); return err },
		"pkcs12key text":  func() error { _, err := pkcs12key(leakMarker); return err },
		"pkcs12keyPass":   func() error { _, err := pkcs12keyPass(leakMarker, pfxLike); return err },
		"pkcs12cert junk": func() error { _, err := pkcs12cert(pfxLike); return err },
		"pkcs12certPass":  func() error { _, err := pkcs12certPass("pw", pfxLike); return err },
		"certSANs":        func() error { _, err := certSANs(cert); return err },
		"filterCertChain": func() error { _, err := filterCertChain("leaf", cert); return err },
		"pemToPkcs12":     func() error { _, err := pemToPkcs12(cert, key); return err },
		"fullPemToPkcs12": func() error { _, err := fullPemToPkcs12(cert, key); return err },
		"pemTruststore":   func() error { _, err := pemTruststoreToPKCS12(cert); return err },
		"jwkPublicKeyPem crv": func() error {
			_, err := jwkPublicKeyPem(`{"kty":"EC","crv":"` + leakMarker + `","x":"AA","y":"AA"}`)
			return err
		},
		"jwkPublicKeyPem kty": func() error { _, err := jwkPublicKeyPem(`{"kty":"` + leakMarker + `"}`); return err },
		"jwkPrivateKeyPem":    func() error { _, err := jwkPrivateKeyPem(`{"kty": ` + leakMarker + `}`); return err },
		"hexdec":              func() error { _, err := hexdec(leakMarker); return err },
		"mustFromJson":        func() error { _, err := mustFromJSON(`{"a": ` + leakMarker + `}`); return err },
		"rsaDecrypt key": func() error {
			_, err := rsaDecrypt("RSA-OAEP", "SHA256", "x", "-----BEGIN PRIVATE KEY-----\n"+base64.StdEncoding.EncodeToString(junkDER)+"\n-----END PRIVATE KEY-----\n")
			return err
		},
	}
	for name, call := range calls {
		assertNoLeak(t, name, call())
	}
}

// TestDecodeErrorsNeverShowInputThroughRender: the marker reaches the
// function decoded (b64dec), so the renderer's scrubbing of the secret's own
// values cannot catch it; only the function's fixed error keeps it out.
func TestDecodeErrorsNeverShowInputThroughRender(t *testing.T) {
	data := map[string]any{
		"cert": base64.StdEncoding.EncodeToString([]byte(markerCert(t))),
		"hex":  base64.StdEncoding.EncodeToString([]byte(leakMarker)),
		"json": base64.StdEncoding.EncodeToString([]byte(`{"kty":"EC","crv":"` + leakMarker + `","x":"AA","y":"AA"}`)),
	}
	for _, tpl := range []string{
		`{{ .cert | b64dec | certSANs }}`,
		`{{ .cert | b64dec | filterCertChain "leaf" }}`,
		`{{ .hex | b64dec | hexdec }}`,
		`{{ .json | b64dec | jwkPublicKeyPem }}`,
		`{{ .hex | b64dec | mustFromJson }}`,
		`{{ .hex | b64dec | pkcs12key }}`,
	} {
		_, err := renderTemplate(t, tpl, data)
		assertNoLeak(t, tpl, err)
	}
}
