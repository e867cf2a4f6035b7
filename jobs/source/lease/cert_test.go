package lease_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/jonboulle/clockwork"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source/lease"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// testCert is a PEM certificate valid from 30s before now (PKI backdates
// NotBefore) for life, with serial n.
func testCert(now time.Time, life time.Duration, n int) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(n)), Subject: pkix.Name{CommonName: "web.internal"},
		NotBefore: now.Add(-30 * time.Second), NotAfter: now.Add(life)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func pkiSecret(name string) *config.Secret {
	sec := leased(name, "pki/issue/web")
	sec.Lease.Method = "POST"
	sec.Lease.Parameters = map[string]any{"common_name": "web.internal", "ttl": "60s"}
	return sec
}

// runFor advances the fake clock by step until d has passed, fetching sec
// at every step (a refresh each step) and draining the calls.
func runFor(t *testing.T, clock *clockwork.FakeClock, f *fakeVault, s *lease.Source, sec *config.Secret, d, step time.Duration) {
	t.Helper()
	start := clock.Now()
	for clock.Since(start) < d {
		if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(step)
		for len(f.calls) > 0 {
			<-f.calls
		}
		fetch(t, s, sec)
		for len(f.calls) > 0 {
			<-f.calls
		}
	}
}

// A certificate issued without a lease (PKI's default) is its own clock:
// issued again at 2/3 of its usable life, not at every refresh and not
// never. Ten minutes of a 60s certificate, refreshed every second: about
// 15 issuances.
func TestCertificateIsItsOwnClock(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, 0, 0)
	f.cert = time.Minute
	st := settings(3)
	st.Handover = 2 * time.Second
	s := newSource(t, f, st, lease.Options{Clock: clock})
	sec := pkiSecret("tls")
	d := fetch(t, s, sec)
	if d.Lease == nil || d.Lease.Renewable || d.Lease.Expires.Sub(clock.Now()) > time.Minute || d.NextAction != "replace" {
		t.Fatalf("a certificate without a lease: lease %+v, next %q; want its NotAfter as the lease's end and a planned replacement", d.Lease, d.NextAction)
	}
	// Its usable life starts when it arrived, not at the backdated NotBefore.
	if in := d.NextAt.Sub(clock.Now()); in < 35*time.Second || in > 45*time.Second { // NotAfter has whole seconds
		t.Errorf("first re-issue planned in %s, want 2/3 of 60s (+-10%%)", in)
	}
	runFor(t, clock, f, s, sec, 10*time.Minute, time.Second)
	issued, _ := f.counts()
	if issued < 13 || issued > 17 {
		t.Errorf("%d certificates in 10 minutes of a 60s certificate refreshed every second, want about 15", issued)
	}
	t.Logf("60s certificate, 10 minutes, refreshed every second: %d issuances", issued)
}

// renew_before issues the certificate again that long before NotAfter,
// but never in the first third of its life.
func TestCertificateRenewBefore(t *testing.T) {
	for _, tc := range []struct {
		before   time.Duration
		min, max time.Duration // from the issuance
	}{
		{10 * time.Minute, 49 * time.Minute, 51 * time.Minute},             // 50m +- 1m
		{55 * time.Minute, 20*time.Minute - time.Second, 20 * time.Minute}, // 5m: inside the first third, so 20m (NotAfter has whole seconds)
	} {
		clock := clockwork.NewFakeClock()
		f := newFakeVault(clock, 0, 0)
		f.cert = time.Hour
		s := newSource(t, f, settings(3), lease.Options{Clock: clock})
		sec := pkiSecret("tls")
		sec.Lease.RenewBefore = config.Duration{Duration: tc.before}
		d := fetch(t, s, sec)
		if in := d.NextAt.Sub(clock.Now()); in < tc.min || in > tc.max {
			t.Errorf("renew_before %s: re-issue in %s, want %s-%s", tc.before, in, tc.min, tc.max)
		}
	}
}

// A fleet of sidecars issued the same 60s certificate at the same moment
// spreads its re-issues: real jitter, not a shared instant.
func TestCertificateFleetSpread(t *testing.T) {
	clock := clockwork.NewFakeClock()
	var at []time.Duration
	for range 100 {
		f := newFakeVault(clock, 0, 0)
		f.cert = time.Minute
		s := newSource(t, f, settings(3), lease.Options{Clock: clock})
		d := fetch(t, s, pkiSecret("tls"))
		at = append(at, d.NextAt.Sub(clock.Now()))
	}
	spread := slices.Max(at) - slices.Min(at)
	if frac := float64(spread) / float64(time.Minute); frac < 0.05 {
		t.Errorf("100 sidecars re-issue within %s of each other (%.3f of the TTL): no real jitter", spread, frac)
	}
	t.Logf("100 sidecars, 60s certificate: re-issues from %s to %s, spread %s = %.3f of the TTL",
		slices.Min(at), slices.Max(at), spread, float64(spread)/float64(time.Minute))
}

// With a state_dir a certificate issued without a lease is recorded and a
// restart adopts it (no new issuance) while it outlives the handover.
func TestCertificateAdoptedFromStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, 0, 0)
	f.cert = time.Hour
	st := settings(3)
	st.Leases.StateDir = dir
	first := newSource(t, f, st, lease.Options{Clock: clock})
	want := fetch(t, first, pkiSecret("tls")).Values["certificate"]
	if err := first.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	second := newSource(t, f, st, lease.Options{Clock: clock})
	got := fetch(t, second, pkiSecret("tls"))
	if issued, _ := f.counts(); issued != 1 || got.Values["certificate"] != want {
		t.Fatalf("after a restart: %d issuances, same certificate %v; want 1 and the recorded one", issued, got.Values["certificate"] == want)
	}
	if got.NextAction != "replace" {
		t.Errorf("the adopted certificate's next action %q, want a planned replacement", got.NextAction)
	}
}

// A failed request that may have minted (a timeout, a 5xx: the answer was
// lost, perhaps not the credential) counts against max_new_leases; one
// Vault refused (4xx) or never saw does not.
func TestFailedRequestsCountAgainstTheCap(t *testing.T) {
	for _, tc := range []struct {
		err  error
		sent int
	}{
		{fmt.Errorf("vault post pki/issue/web: %w", context.DeadlineExceeded), 3},
		{&api.ResponseError{StatusCode: 502}, 3},
		{&api.ResponseError{StatusCode: 400, Errors: []string{"unknown role"}}, 6},
	} {
		clock := clockwork.NewFakeClock()
		f := newFakeVault(clock, 0, 0)
		f.mintErr = tc.err
		s := newSource(t, f, settings(3), lease.Options{Clock: clock})
		capped := 0
		for range 6 {
			_, err := s.Fetch(t.Context(), pkiSecret("tls"), source.Live)
			if errors.Is(err, lease.ErrCapReached) {
				capped++
			} else if err == nil {
				t.Fatal("a failing request succeeded")
			}
		}
		if sent := len(f.calls); sent != tc.sent || capped != 6-tc.sent {
			t.Errorf("%v: %d requests sent and %d refused by the cap, want %d sent", tc.err, sent, capped, tc.sent)
		}
	}
}

// A dry run's source opens the state directory without making or locking
// it: a missing one has no records, and one a daemon holds still answers.
func TestReadOnlyStateDir(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, time.Hour, 2*time.Hour)
	missing := filepath.Join(t.TempDir(), "state")
	st := settings(3)
	st.Leases.StateDir, st.ReadOnly = missing, true
	s := newSource(t, f, st, lease.Options{Clock: clock})
	if _, err := s.Fetch(t.Context(), leased("db", "database/creds/app"), source.Peek); !errors.Is(err, source.ErrWouldChange) {
		t.Errorf("a dry run without records: %v, want would mint", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a dry run made the state directory: %v", err)
	}

	if err := os.Mkdir(missing, 0o700); err != nil {
		t.Fatal(err)
	}
	st.ReadOnly = false
	daemon := newSource(t, f, st, lease.Options{Clock: clock})
	want := fetch(t, daemon, leased("db", "database/creds/app")).Values["password"]
	st.ReadOnly = true
	dry := newSource(t, f, st, lease.Options{Clock: clock}) // the daemon holds the lock
	d, err := dry.Fetch(t.Context(), leased("db", "database/creds/app"), source.Peek)
	if err != nil || d.Values["password"] != want {
		t.Fatalf("a dry run beside the daemon: %v, %v; want the recorded lease's data", d, err)
	}
	if minted, _ := f.counts(); minted != 1 {
		t.Errorf("%d leases minted, want 1", minted)
	}
}

// A certificate with a lease (generate_lease: never renewable) keeps its
// own clock, also after a restart adopted its lease.
func TestCertificateWithLeaseAdopted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, time.Minute, time.Minute)
	f.cert, f.certLease, f.renewable = time.Minute, true, false
	st := settings(3)
	st.Leases.StateDir = dir
	st.Handover = time.Second
	st.NoRevoke = true // as once: the next process adopts
	first := newSource(t, f, st, lease.Options{Clock: clock})
	d := fetch(t, first, pkiSecret("tls"))
	if in := d.NextAt.Sub(clock.Now()); d.NextAction != "replace" || in < 35*time.Second || in > 45*time.Second {
		t.Errorf("a leased certificate: %s in %s, want replace at 2/3 of its 60s", d.NextAction, in)
	}
	if err := first.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	second := newSource(t, f, st, lease.Options{Clock: clock})
	d = fetch(t, second, pkiSecret("tls"))
	if issued, _ := f.counts(); issued != 1 {
		t.Fatalf("%d issuances after a restart, want the recorded lease adopted", issued)
	}
	if in := d.NextAt.Sub(clock.Now()); d.NextAction != "replace" || in < 25*time.Second || in > 35*time.Second {
		t.Errorf("after adoption 10s later: %s in %s, want replace still at 2/3 of its life (about 30s from now)", d.NextAction, in)
	}
}

// generate_key: the request carries a CSR for a key made here (of the
// parameters' key_type and key_bits, which are not sent), and the key
// joins the response's data as private_key; each issuance has a new key.
func TestGenerateKeySendsACSR(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, 0, 0)
	f.cert = time.Hour
	s := newSource(t, f, settings(3), lease.Options{Clock: clock})
	sec := leased("tls", "pki/sign/web")
	sec.Lease.Method, sec.Lease.GenerateKey = "POST", true
	sec.Lease.Parameters = map[string]any{"common_name": "web.internal", "alt_names": "a.internal,10.0.0.1", "key_type": "rsa", "key_bits": 2048}
	d := fetch(t, s, sec)
	f.mu.Lock()
	sent := f.sent
	f.mu.Unlock()
	if _, ok := sent["key_type"]; ok {
		t.Error("key_type was sent to Vault")
	}
	block, _ := pem.Decode([]byte(fmt.Sprint(sent["csr"])))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("no CSR sent: %v", sent)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("CSR: %v", err)
	}
	if csr.Subject.CommonName != "web.internal" || !slices.Equal(csr.DNSNames, []string{"a.internal"}) || len(csr.IPAddresses) != 1 {
		t.Errorf("CSR for %q %v %v", csr.Subject.CommonName, csr.DNSNames, csr.IPAddresses)
	}
	kb, _ := pem.Decode([]byte(fmt.Sprint(d.Values["private_key"])))
	if kb == nil {
		t.Fatal("no private_key in the data")
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.(crypto.Signer).Public()) || d.Values["private_key_type"] != "rsa" {
		t.Errorf("the private_key (%T) is not the CSR's key", key)
	}
	if _, ok := sec.Lease.Parameters["csr"]; ok {
		t.Error("the config's parameters were changed")
	}
}
