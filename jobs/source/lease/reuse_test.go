package lease_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"maps"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source/lease"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// fakePKI answers a PKI mount's issue and issuer calls with a CA of its
// own, on the test's clock.
type fakePKI struct {
	clock  *clockwork.FakeClock
	caKey  *ecdsa.PrivateKey
	ca     *x509.Certificate
	caPEM  string
	down   bool // the issuer endpoint fails
	mu     sync.Mutex
	issued int
	asked  []string // every request's path
}

func newFakePKI(t *testing.T, clock *clockwork.FakeClock) *fakePKI {
	t.Helper()
	key, ca, caPEM := selfSigned(t, "Test CA", clock.Now(), 24*time.Hour)
	return &fakePKI{clock: clock, caKey: key, ca: ca, caPEM: caPEM}
}

func selfSigned(t *testing.T, cn string, now time.Time, life time.Duration, dns ...string) (*ecdsa.PrivateKey, *x509.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, DNSNames: dns, NotBefore: now.Add(-30 * time.Second),
		NotAfter: now.Add(life), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, c, pemText("CERTIFICATE", der)
}

func pemText(typ string, der []byte) string {
	return strings.TrimSuffix(string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})), "\n")
}

// leaf is a certificate for cn and dns signed by the signer (the fake's CA
// unless another is given), of life from 30s before now, and its key.
func (f *fakePKI) leaf(t *testing.T, cn string, dns []string, life time.Duration, signer *ecdsa.PrivateKey, parent *x509.Certificate) (certPEM, keyPEM string) {
	t.Helper()
	if signer == nil {
		signer, parent = f.caKey, f.ca
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	f.mu.Lock()
	f.issued++
	n := f.issued
	f.mu.Unlock()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(1000 + n)), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: now.Add(-30 * time.Second), NotAfter: now.Add(life), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemText("CERTIFICATE", der), pemText("EC PRIVATE KEY", kder)
}

func (f *fakePKI) Request(_ context.Context, req vault.LeaseRequest) (*vault.Leased, error) {
	f.mu.Lock()
	f.asked = append(f.asked, req.Method+" "+req.Path)
	down := f.down
	f.mu.Unlock()
	if req.Method == http.MethodGet {
		if down {
			return nil, errors.New("connection refused")
		}
		return &vault.Leased{Data: map[string]any{"certificate": f.caPEM, "ca_chain": []any{f.caPEM}}, Received: f.clock.Now()}, nil
	}
	return nil, errors.New("the test does not issue")
}

func (f *fakePKI) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.asked...)
}

func (*fakePKI) Renew(context.Context, logging.Redacted, time.Duration) (time.Duration, bool, error) {
	return 0, false, errors.New("no renewals")
}
func (*fakePKI) Revoke(context.Context, logging.Redacted) error { return nil }
func (*fakePKI) RevokeSelf(context.Context) error               { return nil }
func (*fakePKI) Lookup(context.Context, logging.Redacted) (time.Duration, bool, error) {
	return 0, false, vault.ErrLeaseGone
}
func (*fakePKI) TokenLife() vault.TokenLife { return vault.TokenLife{Gen: 1} }

func reuseSecret() *config.Secret {
	sec := leased("web-tls", "pki/issue/web")
	sec.Lease.Method = http.MethodPost
	sec.Lease.Parameters = map[string]any{"common_name": "web.internal", "alt_names": "www.web.internal", "ttl": "1h"}
	return sec
}

func onDisk(files ...source.File) func() ([]source.File, bool) {
	return func() ([]source.File, bool) { return files, true }
}

func acceptAll(*source.Data) bool { return true }

// The certificate and key on disk are kept when they are what the
// request asks for, chain to the issuer Vault reports, and have life
// left; anything else is issued anew, with the reason logged and no key
// material in the log.
func TestReuseCertificateOnDisk(t *testing.T) {
	sans := []string{"web.internal", "www.web.internal"}
	type files = []source.File
	cases := []struct {
		name    string
		files   func(t *testing.T, f *fakePKI) files
		advance time.Duration
		accept  func(*source.Data) bool
		params  map[string]any // added to the request's
		why     string         // "" reused
	}{
		{name: "key files", files: func(t *testing.T, f *fakePKI) files {
			c, k := f.leaf(t, "web.internal", sans, time.Hour, nil, nil)
			return files{{Key: "certificate", Content: []byte(c)}, {Key: "private_key", Content: []byte(k)}}
		}},
		{name: "one bundle from a template", files: func(t *testing.T, f *fakePKI) files {
			c, k := f.leaf(t, "web.internal", sans, time.Hour, nil, nil)
			return files{{Content: []byte(k + "\n" + c + "\n" + f.caPEM + "\n")}}
		}},
		{name: "the CN is not added to the SANs", files: func(t *testing.T, f *fakePKI) files {
			c, k := f.leaf(t, "web.internal", []string{"www.web.internal"}, time.Hour, nil, nil)
			return files{{Content: []byte(c + "\n" + k)}}
		}},
		{name: "another CA", why: "does not chain to the issuer", files: func(t *testing.T, f *fakePKI) files {
			key, ca, _ := selfSigned(t, "Test CA", f.clock.Now(), 24*time.Hour) // the same name, another key
			c, k := f.leaf(t, "web.internal", sans, time.Hour, key, ca)
			return files{{Content: []byte(c + "\n" + k)}}
		}},
		{name: "self-signed", why: "does not chain to the issuer", files: func(t *testing.T, f *fakePKI) files {
			key, _, caPEM := selfSigned(t, "web.internal", f.clock.Now(), time.Hour, sans...)
			kder, _ := x509.MarshalECPrivateKey(key)
			return files{{Content: []byte(caPEM + "\n" + pemText("EC PRIVATE KEY", kder))}}
		}},
		{name: "another issuance's key", why: "the private key does not match the certificate", files: func(t *testing.T, f *fakePKI) files {
			c, _ := f.leaf(t, "web.internal", sans, time.Hour, nil, nil)
			_, k := f.leaf(t, "web.internal", sans, time.Hour, nil, nil)
			return files{{Key: "certificate", Content: []byte(c)}, {Content: []byte(k)}}
		}},
		{name: "another issuance's key, by name", why: "the private key does not match the certificate", files: func(t *testing.T, f *fakePKI) files {
			c, _ := f.leaf(t, "web.internal", sans, time.Hour, nil, nil)
			_, k := f.leaf(t, "web.internal", sans, time.Hour, nil, nil)
			return files{{Key: "certificate", Content: []byte(c)}, {Key: "private_key", Content: []byte(k)}}
		}},
		{name: "another common name", why: "common name", files: func(t *testing.T, f *fakePKI) files {
			c, k := f.leaf(t, "old.internal", []string{"old.internal", "www.web.internal"}, time.Hour, nil, nil)
			return files{{Content: []byte(c + "\n" + k)}}
		}},
		{name: "a SAN more", why: "DNS and email SANs", files: func(t *testing.T, f *fakePKI) files {
			c, k := f.leaf(t, "web.internal", append(sans, "evil.example"), time.Hour, nil, nil)
			return files{{Content: []byte(c + "\n" + k)}}
		}},
		{name: "a parameter not checked", why: "parameter other_sans", params: map[string]any{"other_sans": "1.2.3.4;UTF8:x"},
			files: func(t *testing.T, f *fakePKI) files {
				c, k := f.leaf(t, "web.internal", sans, time.Hour, nil, nil)
				return files{{Content: []byte(c + "\n" + k)}}
			}},
		{name: "longer than the ttl asked", why: "longer than the ttl", files: func(t *testing.T, f *fakePKI) files {
			c, k := f.leaf(t, "web.internal", sans, 2*time.Hour, nil, nil)
			return files{{Content: []byte(c + "\n" + k)}}
		}},
		{name: "past its renewal point", why: "too little life left", advance: 50 * time.Minute, files: func(t *testing.T, f *fakePKI) files {
			c, k := f.leaf(t, "web.internal", sans, time.Hour, nil, nil)
			return files{{Content: []byte(c + "\n" + k)}}
		}},
		{name: "rendered differently", why: "not what this configuration renders", accept: func(*source.Data) bool { return false },
			files: func(t *testing.T, f *fakePKI) files {
				c, k := f.leaf(t, "web.internal", sans, time.Hour, nil, nil)
				return files{{Content: []byte(c + "\n" + k)}}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := clockwork.NewFakeClock()
			f := newFakePKI(t, clock)
			core, logs := observer.New(zap.DebugLevel)
			s := newSource(t, f, settings(3), lease.Options{Clock: clock, Log: zap.New(core)})
			defer func() { _ = s.Stop(t.Context()) }()
			disk := tc.files(t, f)
			clock.Advance(tc.advance)
			accept := tc.accept
			if accept == nil {
				accept = acceptAll
			}
			sec := reuseSecret()
			maps.Copy(sec.Lease.Parameters, tc.params)
			d := s.Reuse(t.Context(), sec, source.Live, onDisk(disk...), accept)
			for _, e := range logs.All() {
				if text := e.Message + " " + strings.Join(fieldTexts(e), " "); strings.Contains(text, "PRIVATE KEY") || strings.Contains(text, "BEGIN") {
					t.Errorf("PEM in the log: %s", text)
				}
			}
			if tc.why == "" {
				if d == nil {
					t.Fatalf("not reused: %v", logTexts(logs))
				}
				if d.Lease == nil || !d.Lease.Expires.After(clock.Now()) || d.NextAction != "replace" {
					t.Errorf("reused data: lease %+v, next %q at %s", d.Lease, d.NextAction, d.NextAt)
				}
				// The fetch serves it: no issuance.
				again := fetch(t, s, sec)
				if again.Values["certificate"] != d.Values["certificate"] {
					t.Error("the fetch after Reuse served another certificate")
				}
				if got := f.requests(); len(got) != 1 || got[0] != "GET pki/issuer/default/json" {
					t.Errorf("Vault calls %v, want only the issuer's", got)
				}
				return
			}
			if d != nil {
				t.Fatalf("reused, want not (%s)", tc.why)
			}
			if !strings.Contains(strings.Join(logTexts(logs), "\n"), tc.why) {
				t.Errorf("log does not say %q:\n%s", tc.why, strings.Join(logTexts(logs), "\n"))
			}
			if d := s.Reuse(t.Context(), sec, source.Live, onDisk(disk...), acceptAll); d != nil {
				t.Error("a second Reuse of the same request kept the files")
			}
		})
	}
}

// The issuer cannot be read (Vault down at start): the files are not
// kept yet, and are offered again at the next sync, when it can.
func TestReuseRetriedWhenIssuerUnreadable(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakePKI(t, clock)
	f.down = true
	s := newSource(t, f, settings(3), lease.Options{Clock: clock})
	defer func() { _ = s.Stop(t.Context()) }()
	c, k := f.leaf(t, "web.internal", []string{"web.internal", "www.web.internal"}, time.Hour, nil, nil)
	disk := onDisk(source.File{Key: "certificate", Content: []byte(c)}, source.File{Key: "private_key", Content: []byte(k)})
	sec := reuseSecret()
	if d := s.Reuse(t.Context(), sec, source.Live, disk, acceptAll); d != nil {
		t.Fatal("reused without the issuer")
	}
	f.mu.Lock()
	f.down = false
	f.mu.Unlock()
	if d := s.Reuse(t.Context(), sec, source.Live, disk, acceptAll); d == nil {
		t.Fatal("not reused once the issuer answered")
	}
}

// A dry run sees what a run would keep, and keeps nothing: the next
// Peek fetch still has no current response.
func TestReusePeekKeepsNothing(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakePKI(t, clock)
	s := newSource(t, f, settings(3), lease.Options{Clock: clock})
	defer func() { _ = s.Stop(t.Context()) }()
	c, k := f.leaf(t, "web.internal", []string{"web.internal", "www.web.internal"}, time.Hour, nil, nil)
	sec := reuseSecret()
	d := s.Reuse(t.Context(), sec, source.Peek, onDisk(source.File{Content: []byte(c + "\n" + k)}), acceptAll)
	if d == nil || d.Values["certificate"] != c {
		t.Fatalf("peek: %v", d)
	}
	if _, err := s.Fetch(t.Context(), sec, source.Peek); !errors.Is(err, source.ErrWouldChange) {
		t.Fatalf("peek fetch after a peek Reuse: %v, want ErrWouldChange", err)
	}
}

// For a key made here (generate_key), the key's type and size must be
// the ones the parameters ask for.
func TestReuseGeneratedKeySpec(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakePKI(t, clock)
	s := newSource(t, f, settings(3), lease.Options{Clock: clock})
	defer func() { _ = s.Stop(t.Context()) }()
	c, k := f.leaf(t, "web.internal", []string{"web.internal"}, time.Hour, nil, nil) // P-256
	sec := reuseSecret()
	sec.Lease.Path, sec.Lease.GenerateKey = "pki/sign/web", true
	sec.Lease.Parameters = map[string]any{"common_name": "web.internal", "key_type": "ec", "key_bits": 384}
	if d := s.Reuse(t.Context(), sec, source.Live, onDisk(source.File{Content: []byte(c + "\n" + k)}), acceptAll); d != nil {
		t.Fatal("a P-256 key kept for key_bits 384")
	}
	sec = reuseSecret()
	sec.Name, sec.Lease.Path, sec.Lease.GenerateKey = "other", "pki/sign/web", true
	sec.Lease.Parameters = map[string]any{"common_name": "web.internal", "key_type": "ec", "key_bits": 256}
	if d := s.Reuse(t.Context(), sec, source.Live, onDisk(source.File{Content: []byte(c + "\n" + k)}), acceptAll); d == nil {
		t.Fatal("a P-256 key not kept for key_bits 256")
	}
}

func fieldTexts(e observer.LoggedEntry) []string {
	var out []string
	for k, v := range e.ContextMap() {
		out = append(out, k+"="+toText(v))
	}
	return out
}

func toText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if s, ok := v.(interface{ String() string }); ok {
		return s.String()
	}
	return ""
}

func logTexts(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.All() {
		out = append(out, e.Message+" "+strings.Join(fieldTexts(e), " "))
	}
	return out
}
