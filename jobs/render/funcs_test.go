package render

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"hash"
	"math/big"
	"strings"
	"sync"
	"testing"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"
)

// funcCase is one row of the engine-v2 style tables: a template and its data
// give an output or an error containing a substring.
type funcCase struct {
	name    string
	tpl     string
	data    map[string]any
	want    string
	wantErr string
	// check, when set, inspects the output instead of comparing it to want.
	check func(t *testing.T, out string)
}

func runFuncCases(t *testing.T, cases []funcCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := renderTemplate(t, tc.tpl, tc.data)
			if !errContains(err, tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
			if tc.wantErr != "" {
				return
			}
			if tc.check != nil {
				tc.check(t, out)
				return
			}
			if out != tc.want {
				t.Fatalf("output:\n%s\nwant:\n%s", out, tc.want)
			}
		})
	}
}

func TestSprigFunctions(t *testing.T) {
	runFuncCases(t, []funcCase{
		{name: "b64dec", tpl: `{{ .secret | b64dec }}`, data: map[string]any{"secret": "MTIzNA=="}, want: "1234"},
		{name: "b64dec of non-base64 is sprig's silent error text", tpl: `{{ .secret | b64dec }}`, data: map[string]any{"secret": "iam_no_base64"}, want: "illegal base64 data at input byte 3"},
		{name: "b64enc b64dec pipeline", tpl: `{{ "123412341234" | b64enc | b64dec }}`, want: "123412341234"},
		{name: "fromJson", tpl: `{{ $v := .secret | fromJson }}{{ $v.foo }}`, data: map[string]any{"secret": `{"foo": "bar"}`}, want: "bar"},
		{name: "fromJson toJson", tpl: `{{ $v := .secret | fromJson }}{{ $v.foo | toJson }}`, data: map[string]any{"secret": `{"foo": {"baz":"bang"}}`}, want: `{"baz":"bang"}`},
		{name: "fromJson of junk is silent (sprig returns nil)", tpl: `{{ "{ # no json # }" | fromJson }}`, want: "<no value>"},
		{name: "path ext", tpl: `{{ .path | ext }}`, data: map[string]any{"path": "foo/bar/baz.exe"}, want: ".exe"},
		{name: "replace", tpl: `{{ .conn | replace "postgres://" "db+postgresql://" }}`, data: map[string]any{"conn": "postgres://user:pass@db.host:5432/dbname"}, want: "db+postgresql://user:pass@db.host:5432/dbname"},
		{name: "upper", tpl: `{{ .value | upper }}`, data: map[string]any{"value": "username"}, want: "USERNAME"},
		{name: "default", tpl: `{{ .empty | default "fallback" }}`, data: map[string]any{"empty": ""}, want: "fallback"},
		{name: "sha256sum", tpl: `{{ .v | sha256sum }}`, data: map[string]any{"v": "abc"}, want: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{name: "regexFind", tpl: `{{ regexFind "[0-9]+" .v }}`, data: map[string]any{"v": "port 5432 open"}, want: "5432"},
		{name: "range over keys", tpl: `{{ range $k, $v := . }}{{ $k }}={{ $v }};{{ end }}`, data: map[string]any{"b": "2", "a": "1"}, want: "a=1;b=2;"},
		{name: "fail", tpl: `{{ fail "stop here" }}`, wantErr: "error calling fail: stop here"},
		{name: "until and seq work under the limit", tpl: `{{ until 3 | join "," }} {{ seq 3 }} {{ untilStep 0 10 5 | join "," }}`, want: "0,1,2 1 2 3 0,5"},
		{name: "multiline template", tpl: "datasources:\n- name: Graphite\n  password: \"{{ .password }}\"\n  user: \"{{ .user }}\"", data: map[string]any{"user": "foobert", "password": "harharhar"}, want: "datasources:\n- name: Graphite\n  password: \"harharhar\"\n  user: \"foobert\""},
	})
}

func TestRemovedSprigFunctions(t *testing.T) {
	for _, fn := range []string{"env", "expandenv", "getHostByName"} {
		_, err := Compile(templateSecret("test", `{{ `+fn+` "HOME" }}`))
		if !errContains(err, `function "`+fn+`" not defined`) {
			t.Errorf("%s: error = %v, want it undefined", fn, err)
		}
	}
}

func TestPKCS12Functions(t *testing.T) {
	leafKey := fixture(t, "leaf-pkcs8.key")
	leaf, inter, root, other := fixture(t, "leaf.crt"), fixture(t, "intermediate-ca.crt"), fixture(t, "root-ca.crt"), fixture(t, "other-ca.crt")
	data := map[string]any{
		"nopass":   fixtureB64(t, "leaf-nopass.p12"),
		"pass":     fixtureB64(t, "leaf-pass1234.p12"),
		"legacy":   fixtureB64(t, "leaf-legacy3des-pass1234.p12"),
		"disjunct": fixtureB64(t, "leaf-disjunct-nopass.p12"),
		"junk":     base64.StdEncoding.EncodeToString([]byte("not a pkcs12 archive")),
	}
	runFuncCases(t, []funcCase{
		{name: "pkcs12key without password", tpl: `{{ .nopass | b64dec | pkcs12key }}`, data: data, want: leafKey},
		{name: "pkcs12keyPass", tpl: `{{ .pass | b64dec | pkcs12keyPass "1234" }}`, data: data, want: leafKey},
		{name: "pkcs12keyPass legacy 3DES archive", tpl: `{{ .legacy | b64dec | pkcs12keyPass "1234" }}`, data: data, want: leafKey},
		{name: "pkcs12cert orders the chain leaf, intermediate, root", tpl: `{{ .nopass | b64dec | pkcs12cert }}`, data: data, want: leaf + inter + root},
		{name: "pkcs12certPass", tpl: `{{ .pass | b64dec | pkcs12certPass "1234" }}`, data: data, want: leaf + inter + root},
		{name: "pkcs12certPass legacy", tpl: `{{ .legacy | b64dec | pkcs12certPass "1234" }}`, data: data, want: leaf + inter + root},
		{name: "pkcs12cert with a disjunct certificate keeps archive order", tpl: `{{ .disjunct | b64dec | pkcs12cert }}`, data: data, want: leaf + root + inter + other},
		{name: "pkcs12keyPass wrong password", tpl: `{{ .pass | b64dec | pkcs12keyPass "wrong" }}`, data: data, wantErr: "unable to decode pkcs12 with password: pkcs12: decryption password incorrect"},
		{name: "pkcs12certPass wrong password", tpl: `{{ .pass | b64dec | pkcs12certPass "wrong" }}`, data: data, wantErr: "unable to decode pkcs12 certificate with password: pkcs12: decryption password incorrect"},
		{name: "pkcs12key needs the password", tpl: `{{ .pass | b64dec | pkcs12key }}`, data: data, wantErr: "unable to decode pkcs12 with password: pkcs12: decryption password incorrect"},
		{name: "pkcs12key of junk", tpl: `{{ .junk | b64dec | pkcs12key }}`, data: data, wantErr: "unable to decode pkcs12 with password: input is not a valid PKCS#12 archive (malformed)"},
		{name: "pkcs12cert of junk", tpl: `{{ .junk | b64dec | pkcs12cert }}`, data: data, wantErr: "unable to decode pkcs12 certificate with password: input is not a valid PKCS#12 archive (malformed)"},
	})
}

func TestPEMToPKCS12Functions(t *testing.T) {
	leaf, inter, root := fixture(t, "leaf.crt"), fixture(t, "intermediate-ca.crt"), fixture(t, "root-ca.crt")
	pkcs8 := fixture(t, "leaf-pkcs8.key")
	data := map[string]any{
		"cert": leaf, "chain": leaf + inter + root, "pkcs8": pkcs8, "pkcs1": fixture(t, "leaf-pkcs1.key"),
		"ec": fixture(t, "ec-sec1.key"), "cas": root + "\n" + inter + "\n\n",
	}
	runFuncCases(t, []funcCase{
		{name: "pemToPkcs12 round trip key", tpl: `{{ pemToPkcs12 .cert .pkcs8 | b64dec | pkcs12key }}`, data: data, want: pkcs8},
		{name: "pemToPkcs12 round trip cert", tpl: `{{ pemToPkcs12 .cert .pkcs8 | b64dec | pkcs12cert }}`, data: data, want: leaf},
		{name: "pemToPkcs12 reads a PKCS#1 key", tpl: `{{ pemToPkcs12 .cert .pkcs1 | b64dec | pkcs12key }}`, data: data, want: pkcs8},
		{name: "pemToPkcs12 takes only the first certificate", tpl: `{{ pemToPkcs12 .chain .pkcs8 | b64dec | pkcs12cert }}`, data: data, want: leaf},
		{name: "pemToPkcs12Pass", tpl: `{{ pemToPkcs12Pass .cert .pkcs8 "s3cret" | b64dec | pkcs12keyPass "s3cret" }}`, data: data, want: pkcs8},
		{name: "pemToPkcs12Pass wrong password on the way back", tpl: `{{ pemToPkcs12Pass .cert .pkcs8 "s3cret" | b64dec | pkcs12keyPass "other" }}`, data: data, wantErr: "unable to decode pkcs12 with password: pkcs12: decryption password incorrect"},
		{name: "fullPemToPkcs12 keeps the chain", tpl: `{{ fullPemToPkcs12 .chain .pkcs8 | b64dec | pkcs12cert }}`, data: data, want: leaf + inter + root},
		{name: "fullPemToPkcs12Pass", tpl: `{{ fullPemToPkcs12Pass .chain .pkcs8 "pw" | b64dec | pkcs12certPass "pw" }}`, data: data, want: leaf + inter + root},
		{name: "pemToPkcs12 invalid certificate PEM", tpl: `{{ pemToPkcs12 "no pem here" .pkcs8 }}`, data: data, wantErr: "failed to decode PEM block"},
		{name: "pemToPkcs12 invalid key PEM", tpl: `{{ pemToPkcs12 .cert "no pem here" }}`, data: data, wantErr: "failed to decode PEM block"},
		{name: "pemToPkcs12 key that is not a key", tpl: `{{ pemToPkcs12 .cert .cert }}`, data: data, wantErr: "unable to parse private key type"},
		{name: "pemToPkcs12 certificate that is not a certificate", tpl: `{{ pemToPkcs12 .pkcs8 .pkcs8 }}`, data: data, wantErr: "not a valid X.509 certificate"},
		{name: "fullPemToPkcs12 junk after the chain", tpl: `{{ fullPemToPkcs12 (print .chain "junk") .pkcs8 }}`, data: data, wantErr: "failed to decode PEM block"},
		{name: "fullPemToPkcs12Pass invalid PEM", tpl: `{{ fullPemToPkcs12Pass "x" .pkcs8 "pw" }}`, data: data, wantErr: "failed to decode PEM block"},
		{name: "pemTruststoreToPKCS12 invalid PEM", tpl: `{{ pemTruststoreToPKCS12 "not pem" }}`, data: data, wantErr: "failed to decode PEM block"},
		{name: "pemTruststoreToPKCS12Pass invalid PEM", tpl: `{{ pemTruststoreToPKCS12Pass "not pem" "pw" }}`, data: data, wantErr: "failed to decode PEM block"},
		{name: "pemTruststoreToPKCS12", tpl: `{{ pemTruststoreToPKCS12 .cas }}`, data: data, check: trustStoreHas("", root, inter)},
		{name: "pemTruststoreToPKCS12Pass", tpl: `{{ pemTruststoreToPKCS12Pass .cas "store-pw" }}`, data: data, check: trustStoreHas("store-pw", root, inter)},
	})
}

// trustStoreHas checks a base64 PKCS#12 trust store's certificates.
func trustStoreHas(pass string, want ...string) func(*testing.T, string) {
	return func(t *testing.T, out string) {
		t.Helper()
		der, err := base64.StdEncoding.DecodeString(out)
		if err != nil {
			t.Fatalf("not base64: %v", err)
		}
		certs, err := gopkcs12.DecodeTrustStore(der, pass)
		if err != nil {
			t.Fatalf("DecodeTrustStore: %v", err)
		}
		if len(certs) != len(want) {
			t.Fatalf("%d certificates, want %d", len(certs), len(want))
		}
		for i, c := range certs {
			if got := pemString(pemTypeCertificate, c.Raw); got != want[i] {
				t.Errorf("certificate %d:\n%s\nwant:\n%s", i, got, want[i])
			}
		}
		if _, err := gopkcs12.DecodeTrustStore(der, pass+"x"); err == nil {
			t.Error("the trust store opens with a wrong password")
		}
	}
}

func TestPEMFunctions(t *testing.T) {
	leaf, inter, root, other := fixture(t, "leaf.crt"), fixture(t, "intermediate-ca.crt"), fixture(t, "root-ca.crt"), fixture(t, "other-ca.crt")
	key := fixture(t, "leaf-pkcs8.key")
	d := func(s string) map[string]any { return map[string]any{"in": s} }
	runFuncCases(t, []funcCase{
		// filterPEM
		{name: "filterPEM cert, cert first", tpl: `{{ .in | filterPEM "CERTIFICATE" }}`, data: d(leaf + key), want: leaf},
		{name: "filterPEM cert, key first", tpl: `{{ .in | filterPEM "CERTIFICATE" }}`, data: d(key + leaf), want: leaf},
		{name: "filterPEM type is case-insensitive", tpl: `{{ .in | filterPEM "certificate" }}`, data: d(key + leaf), want: leaf},
		{name: "filterPEM several certs", tpl: `{{ .in | filterPEM "CERTIFICATE" }}`, data: d(key + leaf + key + other), want: leaf + other},
		{name: "filterPEM key", tpl: `{{ .in | filterPEM "PRIVATE KEY" }}`, data: d(leaf + key), want: key},
		{name: "filterPEM trailing junk", tpl: `{{ .in | filterPEM "private key" }}`, data: d(leaf + key + "some ---junk---"), want: key},
		{name: "filterPEM junk before and after", tpl: `{{ .in | filterPEM "private key" }}`, data: d("some junk" + leaf + key + "some ---junk---"), want: key},
		{name: "filterPEM interleaved junk", tpl: `{{ .in | filterPEM "private key" }}`, data: d(leaf + "some junk" + key), wantErr: "error filtering pem: found junk"},
		{name: "filterPEM only junk", tpl: `{{ .in | filterPEM "private key" }}`, data: d("---junk---"), wantErr: "error filtering pem: found junk"},
		{name: "filterPEM nothing", tpl: `{{ .in | filterPEM "CERTIFICATE" }}`, data: d(""), want: ""},
		// filterCertChain
		{name: "filterCertChain leaf of full chain", tpl: `{{ .in | filterCertChain "leaf" }}`, data: d(leaf + inter + root), want: leaf},
		{name: "filterCertChain leaf of shuffled chain", tpl: `{{ .in | filterCertChain "leaf" }}`, data: d(root + leaf + inter), want: leaf},
		{name: "filterCertChain leaf only", tpl: `{{ .in | filterCertChain "leaf" }}`, data: d(leaf), want: leaf},
		{name: "filterCertChain leaf without root", tpl: `{{ .in | filterCertChain "leaf" }}`, data: d(leaf + inter), want: leaf},
		{name: "filterCertChain leaf of a root alone", tpl: `{{ .in | filterCertChain "leaf" }}`, data: d(root), want: ""},
		{name: "filterCertChain intermediate of full chain", tpl: `{{ .in | filterCertChain "intermediate" }}`, data: d(root + inter + leaf), want: inter},
		{name: "filterCertChain intermediate without root", tpl: `{{ .in | filterCertChain "intermediate" }}`, data: d(leaf + inter), want: inter},
		{name: "filterCertChain intermediate of leaf only", tpl: `{{ .in | filterCertChain "intermediate" }}`, data: d(leaf), want: ""},
		{name: "filterCertChain root of full chain", tpl: `{{ .in | filterCertChain "root" }}`, data: d(inter + leaf + root), want: root},
		{name: "filterCertChain root alone", tpl: `{{ .in | filterCertChain "root" }}`, data: d(root), want: root},
		{name: "filterCertChain root of leaf only", tpl: `{{ .in | filterCertChain "root" }}`, data: d(leaf), want: ""},
		{name: "filterCertChain unknown type", tpl: `{{ .in | filterCertChain "other" }}`, data: d(leaf + inter + root), want: ""},
		{name: "filterCertChain empty", tpl: `{{ .in | filterCertChain "leaf" }}`, data: d(""), wantErr: "no leaf certificate found"},
		{name: "filterCertChain with a key", tpl: `{{ .in | filterCertChain "leaf" }}`, data: d(leaf + key), wantErr: "not a valid X.509 certificate"},
		{name: "filterCertChain disjunct", tpl: `{{ .in | filterCertChain "leaf" }}`, data: d(leaf + inter + root + other), wantErr: "found multiple leaf or disjunct certificates"},
		// certSANs
		{name: "certSANs every kind", tpl: `{{ .in | certSANs | join "," }}`, data: d(leaf), want: "example.com,www.example.com,192.168.1.10,10.0.0.1,admin@example.com,https://example.com"},
		{name: "certSANs junk before", tpl: `{{ .in | certSANs | join "," }}`, data: d("some junk\n" + leaf), want: "example.com,www.example.com,192.168.1.10,10.0.0.1,admin@example.com,https://example.com"},
		{name: "certSANs none", tpl: `{{ .in | certSANs | len }}`, data: d(root), want: "0"},
		{name: "certSANs invalid PEM", tpl: `{{ .in | certSANs }}`, data: d("not a pem"), wantErr: "failed to decode PEM block"},
		{name: "certSANs empty", tpl: `{{ .in | certSANs }}`, data: d(""), wantErr: "failed to decode PEM block"},
		{name: "certSANs of a key", tpl: `{{ .in | certSANs }}`, data: d(key), wantErr: "certSANs: input holds a PEM block that is not a valid X.509 certificate"},
	})
}

func TestYAMLFunctions(t *testing.T) {
	runFuncCases(t, []funcCase{
		{name: "fromJson toYaml", tpl: `{{ .s | fromJson | toYaml }}`, data: map[string]any{"s": `{"foo": "bar"}`}, want: "foo: bar"},
		{name: "toYaml nested, keys sorted", tpl: `{{ .s | fromJson | toYaml }}`, data: map[string]any{"s": `{"z": [1, "two", true], "a": {"b": null}}`}, want: "a:\n  b: null\nz:\n- 1\n- two\n- true"},
		{name: "toYaml of a string that looks like a bool", tpl: `{{ toYaml .s }}`, data: map[string]any{"s": "yes"}, want: `"yes"`},
		{name: "fromYaml toJson", tpl: `{{ .s | fromYaml | toJson }}`, data: map[string]any{"s": "foo: bar"}, want: `{"foo":"bar"}`},
		{name: "fromYaml field", tpl: `{{ (.s | fromYaml).db.port }}`, data: map[string]any{"s": "db:\n  port: 5432\n"}, want: "5432"},
		{name: "fromYaml error goes to Error", tpl: `{{ (.s | fromYaml).Error }}`, data: map[string]any{"s": "- a list\n- not a map"}, check: func(t *testing.T, out string) {
			if !strings.Contains(out, "cannot unmarshal") {
				t.Fatalf("Error = %q", out)
			}
		}},
	})
}

// keys made once for the JWK and RSA tables.
type testKeys struct {
	rsa                *rsa.PrivateKey
	p256, p384, p521   *ecdsa.PrivateKey
	ed                 ed25519.PrivateKey
	rsaPKCS1, rsaPKCS8 string
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func genKeys(t *testing.T) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		must := func(err error) {
			if err != nil {
				panic(err)
			}
		}
		var err error
		keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		for _, c := range []struct {
			k   **ecdsa.PrivateKey
			crv elliptic.Curve
		}{{&keys.p256, elliptic.P256()}, {&keys.p384, elliptic.P384()}, {&keys.p521, elliptic.P521()}} {
			*c.k, err = ecdsa.GenerateKey(c.crv, rand.Reader)
			must(err)
		}
		_, keys.ed, err = ed25519.GenerateKey(rand.Reader)
		must(err)
		keys.rsaPKCS1 = pemString("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(keys.rsa))
		der, err := x509.MarshalPKCS8PrivateKey(keys.rsa)
		must(err)
		keys.rsaPKCS8 = pemString(pemTypeKey, der)
	})
	return keys
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwkJSON(t *testing.T, m map[string]string) string {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func rsaJWK(t *testing.T, k *rsa.PrivateKey, private, crt bool) string {
	m := map[string]string{"kty": "RSA", "kid": "test", "n": b64url(k.N.Bytes()), "e": b64url(big.NewInt(int64(k.E)).Bytes())}
	if private {
		m["d"], m["p"], m["q"] = b64url(k.D.Bytes()), b64url(k.Primes[0].Bytes()), b64url(k.Primes[1].Bytes())
		if crt {
			m["dp"], m["dq"], m["qi"] = b64url(k.Precomputed.Dp.Bytes()), b64url(k.Precomputed.Dq.Bytes()), b64url(k.Precomputed.Qinv.Bytes())
		}
	}
	return jwkJSON(t, m)
}

func ecJWK(t *testing.T, k *ecdsa.PrivateKey, private bool) string {
	size := (k.Curve.Params().BitSize + 7) / 8
	pub, err := k.PublicKey.Bytes() // uncompressed: 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{"kty": "EC", "crv": k.Curve.Params().Name, "x": b64url(pub[1 : 1+size]), "y": b64url(pub[1+size:])}
	if private {
		d, err := k.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		m["d"] = b64url(d)
	}
	return jwkJSON(t, m)
}

func edJWK(t *testing.T, k ed25519.PrivateKey, private bool) string {
	m := map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64url(k.Public().(ed25519.PublicKey))}
	if private {
		m["d"] = b64url(k.Seed())
	}
	return jwkJSON(t, m)
}

func pkixPEM(t *testing.T, pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemString("PUBLIC KEY", der)
}

func pkcs8PEM(t *testing.T, priv crypto.PrivateKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pemString(pemTypeKey, der)
}

func TestJWKFunctions(t *testing.T) {
	k := genKeys(t)
	broken := *k.rsa
	broken.Primes = []*big.Int{big.NewInt(3), big.NewInt(5)}
	d := func(s string) map[string]any { return map[string]any{"jwk": s} }
	pub, priv := `{{ .jwk | jwkPublicKeyPem }}`, `{{ .jwk | jwkPrivateKeyPem }}`
	runFuncCases(t, []funcCase{
		{name: "RSA public", tpl: pub, data: d(rsaJWK(t, k.rsa, false, false)), want: pkixPEM(t, &k.rsa.PublicKey)},
		{name: "EC P-256 public", tpl: pub, data: d(ecJWK(t, k.p256, false)), want: pkixPEM(t, &k.p256.PublicKey)},
		{name: "EC P-384 public", tpl: pub, data: d(ecJWK(t, k.p384, false)), want: pkixPEM(t, &k.p384.PublicKey)},
		{name: "EC P-521 public", tpl: pub, data: d(ecJWK(t, k.p521, false)), want: pkixPEM(t, &k.p521.PublicKey)},
		{name: "Ed25519 public", tpl: pub, data: d(edJWK(t, k.ed, false)), want: pkixPEM(t, k.ed.Public())},
		{name: "RSA private with CRT values", tpl: priv, data: d(rsaJWK(t, k.rsa, true, true)), want: pkcs8PEM(t, k.rsa)},
		{name: "RSA private without CRT values", tpl: priv, data: d(rsaJWK(t, k.rsa, true, false)), want: pkcs8PEM(t, k.rsa)},
		{name: "EC P-256 private", tpl: priv, data: d(ecJWK(t, k.p256, true)), want: pkcs8PEM(t, k.p256)},
		{name: "EC P-521 private", tpl: priv, data: d(ecJWK(t, k.p521, true)), want: pkcs8PEM(t, k.p521)},
		{name: "Ed25519 private", tpl: priv, data: d(edJWK(t, k.ed, true)), want: pkcs8PEM(t, k.ed)},
		{name: "public of a private JWK is refused like ESO", tpl: pub, data: d(rsaJWK(t, k.rsa, true, true)), wantErr: "x509: unsupported public key type: *rsa.PrivateKey"},
		{name: "private of a public JWK", tpl: priv, data: d(rsaJWK(t, k.rsa, false, false)), wantErr: "x509: unknown key type while marshaling PKCS#8: *rsa.PublicKey"},
		{name: "invalid JSON", tpl: pub, data: d(`{"kty": "RSA",`), wantErr: "jwkPublicKeyPem: input is not a valid JSON Web Key (not JSON)"},
		{name: "not a JWK", tpl: pub, data: d(`{"hello": "world"}`), wantErr: "jwkPublicKeyPem: input is not a valid JSON Web Key (missing, unsupported or inconsistent key parameters)"},
		{name: "unknown kty", tpl: pub, data: d(`{"kty": "XYZ"}`), wantErr: "jwkPublicKeyPem: input is not a valid JSON Web Key (missing"},
		{name: "RSA private with wrong primes", tpl: priv, data: d(rsaJWK(t, &broken, true, false)), wantErr: "jwkPrivateKeyPem: input is not a valid JSON Web Key (missing"},
		{name: "symmetric key has no PEM", tpl: pub, data: d(`{"kty":"oct","k":"c2VjcmV0a2V5"}`), wantErr: "x509: unsupported public key type: []uint8"},
	})
}

func oaep(t *testing.T, h hash.Hash, pub *rsa.PublicKey, msg string) string {
	ct, err := rsa.EncryptOAEP(h, rand.Reader, pub, []byte(msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(ct)
}

func TestRSADecrypt(t *testing.T) {
	k := genKeys(t)
	pub := &k.rsa.PublicKey
	data := map[string]any{
		"pkcs1": k.rsaPKCS1, "pkcs8": k.rsaPKCS8, "ec": fixture(t, "ec-sec1.key"), "cert": fixture(t, "leaf.crt"),
		"sha1": oaep(t, sha1.New(), pub, "a1b2c3d4"), "sha256": oaep(t, sha256.New(), pub, "hellopkcs1sha256"),
		"sha512": oaep(t, sha512.New(), pub, "hello-sha512"),
	}
	runFuncCases(t, []funcCase{
		{name: "OAEP SHA1 PKCS#8 key", tpl: `{{ .pkcs8 | rsaDecrypt "RSA-OAEP" "SHA1" (.sha1 | b64dec) }}`, data: data, want: "a1b2c3d4"},
		{name: "OAEP SHA256 PKCS#1 key", tpl: `{{ .pkcs1 | rsaDecrypt "RSA-OAEP" "SHA256" (.sha256 | b64dec) }}`, data: data, want: "hellopkcs1sha256"},
		{name: "OAEP SHA512", tpl: `{{ .pkcs1 | rsaDecrypt "RSA-OAEP" "SHA512" (.sha512 | b64dec) }}`, data: data, want: "hello-sha512"},
		{name: "hash None means SHA256", tpl: `{{ .pkcs1 | rsaDecrypt "RSA-OAEP" "None" (.sha256 | b64dec) }}`, data: data, want: "hellopkcs1sha256"},
		{name: "scheme None passes the input through", tpl: `{{ .pkcs1 | rsaDecrypt "None" "SHA256" "plain" }}`, data: data, want: "plain"},
		{name: "unsupported scheme", tpl: `{{ .pkcs1 | rsaDecrypt "RSA-PKCS1" "SHA256" "x" }}`, data: data, wantErr: "decryption scheme RSA-PKCS1 is not supported"},
		{name: "wrong hash", tpl: `{{ .pkcs1 | rsaDecrypt "RSA-OAEP" "SHA1" (.sha256 | b64dec) }}`, data: data, wantErr: "error decrypting data with RSA: crypto/rsa: decryption error"},
		{name: "key not PEM", tpl: `{{ "junk" | rsaDecrypt "RSA-OAEP" "SHA256" (.sha256 | b64dec) }}`, data: data, wantErr: "failed to decode PEM block"},
		{name: "EC key", tpl: `{{ .ec | rsaDecrypt "RSA-OAEP" "SHA256" (.sha256 | b64dec) }}`, data: data, wantErr: "could not parse RSA private key"},
		{name: "not a key", tpl: `{{ .cert | rsaDecrypt "RSA-OAEP" "SHA256" (.sha256 | b64dec) }}`, data: data, wantErr: "could not parse private key: unable to parse private key type"},
	})
}

func TestDelimiters(t *testing.T) {
	s := templateSecret("delims", `<< .secret | b64dec >> {{ not a template }}`)
	s.LeftDelimiter, s.RightDelimiter = "<<", ">>"
	r, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.Render(map[string]any{"secret": "MTIzNA=="})
	if err != nil || string(out) != "1234 {{ not a template }}" {
		t.Fatalf("got %q, %v", out, err)
	}
	if err := NewSet().Check(s); err != nil {
		t.Fatalf("Checker with delimiters: %v", err)
	}
	s.LeftDelimiter, s.RightDelimiter = "", ""
	if err := NewSet().Check(s); err == nil {
		t.Fatal("with the default delimiters {{ not a template }} should not parse")
	}
}
