package render

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// testPassword is the archives' password: no error may contain it.
const testPassword = "Kx9-archive-password-7Qz"

// pki is a CA and a leaf it issued, as Vault's PKI engine returns them.
type pki struct {
	caPEM, leafPEM, keyPEM string
	ca, leaf               *x509.Certificate
}

func newPKI(t *testing.T, leafKey any, keyPEM string) pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "app.example"}, DNSNames: []string{"app.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, publicKey(leafKey), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return pki{caPEM: pemString("CERTIFICATE", caDER), leafPEM: pemString("CERTIFICATE", leafDER), keyPEM: keyPEM, ca: ca, leaf: leaf}
}

func publicKey(k any) any {
	switch k := k.(type) {
	case *ecdsa.PrivateKey:
		return &k.PublicKey
	case *rsa.PrivateKey:
		return &k.PublicKey
	}
	panic("key type")
}

// ecPKI is a leaf with a P-256 key in SEC 1 PEM, as Vault's PKI writes EC keys.
func ecPKI(t *testing.T) pki {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return newPKI(t, k, pemString("EC PRIVATE KEY", der))
}

// response is p as a pki/issue response's data.
func (p pki) response() map[string]any {
	return map[string]any{
		"certificate": p.leafPEM, "private_key": p.keyPEM, "private_key_type": "ec",
		"issuing_ca": p.caPEM, "ca_chain": []any{p.caPEM}, "serial_number": "02",
	}
}

// passwordFile writes content to a new file and returns its path.
func passwordFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "keystore.pass")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// archiveSecret is a files: set with a content: pkcs12 entry reading pw.
func archiveSecret(pw string) *config.Secret {
	return &config.Secret{Name: "web-tls", Files: []config.OutputFile{
		{Destination: "/secrets/tls/tls.crt", Key: "certificate"},
		{Destination: "/secrets/tls/keystore.p12", Content: config.ContentPKCS12, PasswordFile: pw},
	}}
}

// archiveRenderer compiles the pkcs12 entry of archiveSecret(pw).
func archiveRenderer(t *testing.T, pw string) *Renderer {
	t.Helper()
	o := archiveSecret(pw).Output(1)
	r, err := Compile(&o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func renderArchive(t *testing.T, pw string, data map[string]any) []byte {
	t.Helper()
	out, err := archiveRenderer(t, pw).Render(data)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return out
}

// TestPKCS12Deterministic: the same key, certificates and password give
// the same bytes, from one renderer or another; a new password, a new
// certificate or another chain give new bytes.
func TestPKCS12Deterministic(t *testing.T) {
	p := ecPKI(t)
	pw := passwordFile(t, testPassword+"\n")
	r := archiveRenderer(t, pw)
	first, err := r.Render(p.response())
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Render(p.response())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, again) {
		t.Fatal("two renders of the same inputs differ: every refresh would rewrite the archive")
	}
	if other := renderArchive(t, passwordFile(t, testPassword), p.response()); !bytes.Equal(first, other) {
		t.Error("another renderer (and a password file without the line break) made other bytes")
	}

	differs := map[string][]byte{
		"password": renderArchive(t, passwordFile(t, testPassword+"2"), p.response()),
	}
	q := ecPKI(t)
	differs["certificate"] = renderArchive(t, pw, q.response())
	noChain := p.response()
	delete(noChain, "ca_chain")
	delete(noChain, "issuing_ca")
	differs["chain"] = renderArchive(t, pw, noChain)
	for what, b := range differs {
		if bytes.Equal(first, b) {
			t.Errorf("another %s made the same archive", what)
		}
	}
	// A rotated password is read at the next render.
	if err := os.WriteFile(pw, []byte(testPassword+"2"), 0o600); err != nil {
		t.Fatal(err)
	}
	rotated, err := r.Render(p.response())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rotated, differs["password"]) {
		t.Error("the same renderer did not take the rotated password")
	}
}

// TestPKCS12RoundTrip: the archive opens with the password and holds the
// key of the certificate, the certificate and the CA chain, encrypted
// with PBES2 and AES-256-CBC; a wrong password does not open it.
func TestPKCS12RoundTrip(t *testing.T) {
	p := ecPKI(t)
	pfx := renderArchive(t, passwordFile(t, testPassword+"\r\n"), p.response())
	if bytes.HasPrefix(pfx, []byte("MII")) || bytes.Contains(pfx, []byte("BEGIN")) {
		t.Fatal("the archive is base64 or PEM, want DER")
	}
	key, leaf, cas, err := gopkcs12.DecodeChain(pfx, testPassword)
	if err != nil {
		t.Fatalf("decode with the password: %v", err)
	}
	if !leaf.Equal(p.leaf) {
		t.Errorf("leaf %s, want the response's certificate", leaf.Subject)
	}
	if !keyMatches(key, leaf) {
		t.Error("the archive's key is not the certificate's")
	}
	if len(cas) != 1 || !cas[0].Equal(p.ca) {
		t.Errorf("CA certificates %d, want the response's CA", len(cas))
	}
	for name, oid := range map[string]asn1.ObjectIdentifier{
		"PBES2": {1, 2, 840, 113549, 1, 5, 13}, "PBKDF2": {1, 2, 840, 113549, 1, 5, 12},
		"AES-256-CBC": {2, 16, 840, 1, 101, 3, 4, 1, 42}, "HMAC-SHA-256": {1, 2, 840, 113549, 2, 9},
	} {
		der, _ := asn1.Marshal(oid)
		if !bytes.Contains(pfx, der) {
			t.Errorf("the archive does not use %s", name)
		}
	}
	for _, wrong := range []string{"", testPassword + "\r\n", testPassword[1:]} {
		if _, _, _, err := gopkcs12.DecodeChain(pfx, wrong); !errors.Is(err, gopkcs12.ErrIncorrectPassword) {
			t.Errorf("decode with %q: %v, want ErrIncorrectPassword", wrong, err)
		}
	}
}

// TestPKCS12Inputs: the key forms Vault and KV secrets hold, and the chain
// as a list, as its JSON text, empty or missing (issuing_ca instead).
func TestPKCS12Inputs(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPKI := newPKI(t, rsaKey, pemString("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)))
	ec := ecPKI(t)
	pkcs8, err := ec.keyDER(t)
	if err != nil {
		t.Fatal(err)
	}
	chainJSON, _ := json.Marshal([]string{ec.caPEM})
	for _, tc := range []struct {
		name string
		p    pki
		edit func(map[string]any)
		cas  int
	}{
		{"rsa pkcs1", rsaPKI, nil, 1},
		{"ec sec1", ec, nil, 1},
		{"ec pkcs8", ec, func(d map[string]any) { d["private_key"] = pemString("PRIVATE KEY", pkcs8) }, 1},
		{"chain as JSON text", ec, func(d map[string]any) { d["ca_chain"] = string(chainJSON) }, 1},
		{"chain missing", ec, func(d map[string]any) { delete(d, "ca_chain") }, 1},
		{"chain empty", ec, func(d map[string]any) { d["ca_chain"] = []any{} }, 1},
		{"chain repeats the CA and the leaf", ec, func(d map[string]any) { d["ca_chain"] = []any{ec.leafPEM, ec.caPEM, ec.caPEM} }, 1},
		{"certificate with its chain", ec, func(d map[string]any) {
			d["certificate"] = ec.leafPEM + ec.caPEM
			delete(d, "ca_chain")
			delete(d, "issuing_ca")
		}, 1},
		{"no chain at all", ec, func(d map[string]any) { delete(d, "ca_chain"); delete(d, "issuing_ca") }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.p.response()
			if tc.edit != nil {
				tc.edit(data)
			}
			key, leaf, cas, err := gopkcs12.DecodeChain(renderArchive(t, passwordFile(t, testPassword), data), testPassword)
			if err != nil {
				t.Fatal(err)
			}
			if !leaf.Equal(tc.p.leaf) || !keyMatches(key, leaf) {
				t.Error("not the response's certificate and key")
			}
			if len(cas) != tc.cas || (tc.cas == 1 && !cas[0].Equal(tc.p.ca)) {
				t.Errorf("%d CA certificates, want %d", len(cas), tc.cas)
			}
		})
	}
}

func (p pki) keyDER(t *testing.T) ([]byte, error) {
	t.Helper()
	block, _ := pem.Decode([]byte(p.keyPEM))
	k, err := parsePrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	return x509.MarshalPKCS8PrivateKey(k)
}

// TestPKCS12PasswordFileErrors: a missing, over-long, empty, linked or
// non-regular password file fails the render with an error that names
// the path and holds no password and no secret value.
func TestPKCS12PasswordFileErrors(t *testing.T) {
	p := ecPKI(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "link.pass")
	if err := os.Symlink(passwordFile(t, testPassword), link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.pass")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "none.pass"), "no such file or directory"},
		{"over-long", passwordFile(t, strings.Repeat(testPassword, 4096/len(testPassword)+1)), "file too large"},
		{"empty", passwordFile(t, ""), "is empty"},
		{"a line break only", passwordFile(t, "\r\n"), "is empty"},
		{"a symbolic link", link, "symbolic link"},
		{"a named pipe", fifo, "not a regular file"},
		{"a directory", dir, "not a regular file"},
		{"not UTF-8", passwordFile(t, testPassword+"\xff"), "not UTF-8"},
		{"a NUL byte", passwordFile(t, testPassword+"\x00x"), "NUL"},
		{"above U+FFFF", passwordFile(t, testPassword+"\U0001F511"), "above U+FFFF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := archiveRenderer(t, tc.path).Render(p.response())
			if err == nil {
				t.Fatal("rendered, want an error")
			}
			msg := err.Error()
			var re *Error
			if !errors.As(err, &re) || re.Secret != "web-tls" || errors.Is(err, ErrMissingField) {
				t.Errorf("error %#v, want a render *Error for web-tls, not a missing field", err)
			}
			if !strings.Contains(msg, tc.path) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to name %s and say %q", msg, tc.path, tc.want)
			}
			assertNoSecret(t, msg, p)
		})
	}
}

// assertNoSecret fails when msg holds the password or a value of p.
func assertNoSecret(t *testing.T, msg string, p pki) {
	t.Helper()
	for _, secret := range []string{testPassword, testPassword[:12], strings.TrimSpace(p.keyPEM)[40:80], strings.TrimSpace(p.leafPEM)[40:80]} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q holds a secret %q", msg, secret)
		}
	}
}

// TestPKCS12DataErrors: a response without a key or certificate, or with
// ones that do not parse or match, fails with an error naming the field.
func TestPKCS12DataErrors(t *testing.T) {
	p, q := ecPKI(t), ecPKI(t)
	pw := passwordFile(t, testPassword)
	for _, tc := range []struct {
		name, want, missing string
		edit                func(map[string]any)
	}{
		{"no key", `field "private_key" not found in the secret (the secret's fields: ca_chain, certificate`, "private_key", func(d map[string]any) { delete(d, "private_key") }},
		{"no certificate", `field "certificate" not found`, "certificate", func(d map[string]any) { d["certificate"] = nil }},
		{"key not PEM", "private_key: failed to decode PEM block", "", func(d map[string]any) { d["private_key"] = "not a key at all" }},
		{"key not text", `field "private_key" is not PEM text`, "", func(d map[string]any) { d["private_key"] = map[string]any{"k": "v"} }},
		{"another key", "private_key does not match the public key of certificate", "", func(d map[string]any) { d["private_key"] = q.keyPEM }},
		{"certificate not PEM", "certificate: failed to decode PEM block", "", func(d map[string]any) { d["certificate"] = "garbage-cert-text" }},
		{"chain item not text", "ca_chain: item 0 is not PEM text", "", func(d map[string]any) { d["ca_chain"] = []any{1.5} }},
		{"chain item not PEM", "ca_chain item 0: failed to decode PEM block", "", func(d map[string]any) { d["ca_chain"] = []any{"junk-chain-entry"} }},
		{"chain JSON broken", "ca_chain: not a JSON list of PEM strings", "", func(d map[string]any) { d["ca_chain"] = "[not json" }},
		{"issuing_ca a number", "issuing_ca: not PEM text or a list of PEM strings", "", func(d map[string]any) { delete(d, "ca_chain"); d["issuing_ca"] = 3.0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := p.response()
			tc.edit(data)
			_, err := archiveRenderer(t, pw).Render(data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			var re *Error
			if !errors.As(err, &re) || re.Field != tc.missing || errors.Is(err, ErrMissingField) != (tc.missing != "") {
				t.Errorf("error %#v: Field %q, want %q", err, re.Field, tc.missing)
			}
			assertNoSecret(t, err.Error(), p)
			assertNoSecret(t, err.Error(), q)
		})
	}
}

// TestPKCS12SetKeepsPasswordFilesApart: a Set keeps one renderer per
// password file, so two archives of one set never share a password.
func TestPKCS12SetKeepsPasswordFilesApart(t *testing.T) {
	p := ecPKI(t)
	pwA, pwB := passwordFile(t, testPassword+"A"), passwordFile(t, testPassword+"B")
	s := &config.Secret{Name: "web-tls", Files: []config.OutputFile{
		{Destination: "/secrets/tls/a.p12", Content: config.ContentPKCS12, PasswordFile: pwA},
		{Destination: "/secrets/tls/b.p12", Content: config.ContentPKCS12, PasswordFile: pwB},
		{Destination: "/secrets/tls/bundle.pem", Content: config.ContentBundle},
	}}
	set := NewSet()
	outs := []config.Secret{s.Output(0), s.Output(1), s.Output(2)}
	for i := range outs {
		if err := set.Check(&outs[i]); err != nil {
			t.Fatalf("files[%d]: %v", i, err)
		}
	}
	for i, pass := range []string{testPassword + "A", testPassword + "B"} {
		r, err := set.Renderer(&outs[i])
		if err != nil {
			t.Fatal(err)
		}
		out, err := r.Render(p.response())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := gopkcs12.DecodeChain(out, pass); err != nil {
			t.Errorf("files[%d] does not open with its own password: %v", i, err)
		}
	}
	r, err := set.Renderer(&outs[2])
	if err != nil {
		t.Fatal(err)
	}
	if out, err := r.Render(p.response()); err != nil || !strings.HasPrefix(string(out), p.keyPEM) {
		t.Errorf("the bundle beside the archives: %q, %v", out, err)
	}
	if _, ok := outs[2].PKCS12Output(); ok {
		t.Error("the bundle entry reads as a pkcs12 output")
	}
}

// TestPKCS12ReadByOpenSSLAndKeytool: OpenSSL and Java's keytool, where
// installed, open the archive with the password and find the key entry.
func TestPKCS12ReadByOpenSSLAndKeytool(t *testing.T) {
	p := ecPKI(t)
	pw := passwordFile(t, testPassword+"\n")
	f := filepath.Join(t.TempDir(), "keystore.p12")
	if err := os.WriteFile(f, renderArchive(t, pw, p.response()), 0o600); err != nil {
		t.Fatal(err)
	}
	ran := 0
	if _, err := exec.LookPath("openssl"); err == nil {
		ran++
		out, err := exec.Command("openssl", "pkcs12", "-in", f, "-passin", "file:"+pw, "-nodes").CombinedOutput()
		if err != nil {
			t.Errorf("openssl pkcs12: %v\n%s", err, out)
		} else if strings.Count(string(out), "BEGIN CERTIFICATE") != 2 || !strings.Contains(string(out), "PRIVATE KEY") {
			t.Errorf("openssl pkcs12 did not find the key and two certificates:\n%s", out)
		}
	}
	if _, err := exec.LookPath("keytool"); err == nil {
		ran++
		out, err := exec.Command("keytool", "-list", "-keystore", f, "-storetype", "PKCS12", "-storepass:file", pw).CombinedOutput()
		if err != nil {
			t.Errorf("keytool -list: %v\n%s", err, out)
		} else if !strings.Contains(string(out), "PrivateKeyEntry") {
			t.Errorf("keytool found no private key entry:\n%s", out)
		}
	}
	if ran == 0 {
		t.Skip("neither openssl nor keytool is installed")
	}
}

// TestPKCS12SeedCoversEveryInput: the encoder's stream (salts and IVs) is
// the same for the same inputs and changes with the password, the key,
// the certificate and each CA certificate.
func TestPKCS12SeedCoversEveryInput(t *testing.T) {
	p, q := ecPKI(t), ecPKI(t)
	input := func(p pki, cas ...*x509.Certificate) *archiveInput {
		in, _, err := archiveInputs(p.response())
		if err != nil {
			t.Fatal(err)
		}
		in.cas = cas
		return &in
	}
	stream := func(in *archiveInput, pass string) string {
		b := make([]byte, 64)
		if _, err := archiveRand(in, logging.Redacted(pass)).Read(b); err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	base := stream(input(p, p.ca), testPassword)
	if again := stream(input(p, p.ca), testPassword); again != base {
		t.Fatal("the same inputs gave another stream")
	}
	withKey := input(p, p.ca)
	withKey.keyDER = input(q, p.ca).keyDER
	withLeaf := input(p, p.ca)
	withLeaf.leaf = q.leaf
	for name, s := range map[string]string{
		"password":         stream(input(p, p.ca), testPassword+"x"),
		"key":              stream(withKey, testPassword),
		"certificate":      stream(withLeaf, testPassword),
		"another CA":       stream(input(p, q.ca), testPassword),
		"one more CA":      stream(input(p, p.ca, q.ca), testPassword),
		"no CA":            stream(input(p), testPassword),
		"CA moved to leaf": stream(input(p, p.leaf), testPassword),
		"empty password":   stream(input(p, p.ca), ""),
	} {
		if s == base {
			t.Errorf("another %s gave the same stream", name)
		}
	}
}
