package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestPKICertificateFileSet: a files: set from one PKI issuance. The
// dry run lists one path per file; the daemon writes the set in the
// projected-volume layout (stable links through ..NAME.data); the
// certificate, the key, the chain and the bundle come from one issuance;
// when the 20s certificate is issued again, one rename switches the set:
// a reader that resolves the data link once never sees the new
// certificate with the old key (the count of name-by-name mismatches is
// logged), the change action runs once with every path, and the old set
// directory is gone.
func TestPKICertificateFileSet(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	role := pkiRole(t, srv, p, nil)
	out := filepath.Join(dir, "tls")
	changes := filepath.Join(dir, "changes.log")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
notify: {debounce: 200ms}
secrets:
  - name: web-tls
    lease:
      path: pki/issue/%[1]s
      method: POST
      parameters: {common_name: app.example, ttl: 20s}
    refresh_interval: 1s
    mode: "0440"
    files:
      - {destination: %[2]s/tls.crt, key: certificate}
      - {destination: %[2]s/tls.key, key: private_key, mode: "0400"}
      - {destination: %[2]s/chain.pem, content: chain}
      - {destination: %[2]s/bundle.pem, content: bundle}
    on_change:
      - exec: {command: ["sh", "-c", "echo \"$SIDECAR_CHANGED_FILES\" >> %[3]s"]}
`, role, out, changes))
	env := []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token, "SIDECAR_STATUS_FILE=" + filepath.Join(t.TempDir(), "status.json"), "SIDECAR_HTTP_ADDR="}
	names := []string{"tls.crt", "tls.key", "chain.pem", "bundle.pem"}

	if code, _, stderr := runBinary(t, env, "validate", "--config", cfg); code != exitOK {
		t.Fatalf("validate: exit %d\n%s", code, stderr)
	}
	code, stdout := dryRun(t, env, cfg, dir)
	var want []string
	for _, n := range names {
		want = append(want, "mint web-tls "+filepath.Join(out, n)+" (would mint a new lease; a dry run does not)")
	}
	if code != exitChanges {
		t.Errorf("dry run: exit %d, want 3", code)
	}
	wantLines(t, stdout, want...)

	d := startDaemon(t, cfg, dir, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_HTTP_ADDR="+freeAddr(t))
	d.waitReady(t, time.Minute)
	for _, n := range names {
		target, err := os.Readlink(filepath.Join(out, n))
		if err != nil || target != "..web-tls.data/"+n {
			t.Errorf("%s: a link to %q (%v), want ..web-tls.data/%s", n, target, err, n)
		}
	}
	if fi := statFile(t, filepath.Join(out, "tls.key")); fi.Mode().Perm() != 0o400 {
		t.Errorf("tls.key mode %o, want 0400", fi.Mode().Perm())
	}
	if fi := statFile(t, filepath.Join(out, "tls.crt")); fi.Mode().Perm() != 0o440 {
		t.Errorf("tls.crt mode %o, want the secret's 0440", fi.Mode().Perm())
	}
	first, err := readPair(filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key"))
	if err != nil {
		t.Fatalf("the set's certificate and key: %v", err)
	}
	if b, err := readPair(filepath.Join(out, "bundle.pem"), filepath.Join(out, "bundle.pem")); err != nil || b != first {
		t.Errorf("bundle.pem: serial %s (%v), want the set's %s", b, err, first)
	}
	if chain := readFile(t, filepath.Join(out, "chain.pem")); strings.Count(chain, "BEGIN CERTIFICATE") != 2 {
		t.Errorf("chain.pem holds %d certificates, want the certificate and the CA", strings.Count(chain, "BEGIN CERTIFICATE"))
	}

	// Readers while the certificate is issued again.
	reads, stop := hammerSet(out, "web-tls", 1)
	var second string
	waitFor(t, 2*time.Minute, "the certificate issued again", func() bool {
		s, err := readPair(filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key"))
		second = s
		return err == nil && s != first
	})
	waitFor(t, time.Minute, "the change action", func() bool {
		b, _ := os.ReadFile(changes)
		return len(b) > 0
	})
	stop()
	if reads.linkTorn.Load() > 0 || reads.bundleTorn.Load() > 0 {
		t.Errorf("reads that saw a certificate with another issuance's key: %s", reads)
	}
	log := strings.TrimSpace(readFile(t, changes))
	if strings.Count(log, "\n") != 0 {
		t.Errorf("the change action ran more than once for one issuance:\n%s", log)
	}
	for _, n := range names {
		if !strings.Contains(log, filepath.Join(out, n)) {
			t.Errorf("SIDECAR_CHANGED_FILES %q lacks %s", log, n)
		}
	}
	sets, _ := filepath.Glob(filepath.Join(out, "..web-tls_*"))
	if len(sets) != 1 {
		t.Errorf("set directories after the switch: %v, want the live one only", sets)
	}
	if _, code := d.term(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	if key := strings.TrimSpace(readFile(t, filepath.Join(out, "tls.key"))); strings.Contains(d.logs.String(), key[40:100]) {
		t.Error("the private key reached the log")
	}
	t.Logf("serial %s then %s; %s", first, second, reads)
}

// setReads counts reads of a certificate set's tls.crt and tls.key:
// through the data link resolved once and of bundle.pem (never two
// issuances), and name by name (two issuances possible, counted).
type setReads struct {
	link, linkTorn, bundle, bundleTorn, byName, byNameTorn atomic.Int64
}

func (r *setReads) String() string {
	return fmt.Sprintf("through the data link %d reads, %d torn; bundle %d reads, %d torn; name by name %d reads, %d mismatched",
		r.link.Load(), r.linkTorn.Load(), r.bundle.Load(), r.bundleTorn.Load(), r.byName.Load(), r.byNameTorn.Load())
}

// hammerSet reads the set named set in dir with n readers, each way in
// turn, until stop is called (stop returns once they have).
func hammerSet(dir, set string, n int) (reads *setReads, stop func()) {
	reads = &setReads{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	count := func(err error, ok, torn *atomic.Int64) {
		switch {
		case err == nil:
			ok.Add(1)
		case !errors.Is(err, os.ErrNotExist): // an old set removed meanwhile is no tear
			torn.Add(1)
		}
	}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				if target, err := os.Readlink(filepath.Join(dir, ".."+set+".data")); err == nil {
					setDir := filepath.Join(dir, target)
					_, err := readPair(filepath.Join(setDir, "tls.crt"), filepath.Join(setDir, "tls.key"))
					count(err, &reads.link, &reads.linkTorn)
				}
				_, err := readPair(filepath.Join(dir, "bundle.pem"), filepath.Join(dir, "bundle.pem"))
				count(err, &reads.bundle, &reads.bundleTorn)
				_, err = readPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
				count(err, &reads.byName, &reads.byNameTorn)
			}
		}()
	}
	return reads, func() { close(done); wg.Wait() }
}

// readPair loads a certificate and key from two files (or one bundle, read
// once) and returns the certificate's serial; an error when they are not
// one pair.
func readPair(certFile, keyFile string) (string, error) {
	c, err := os.ReadFile(certFile)
	if err != nil {
		return "", err
	}
	k := c // one file holding both (a bundle) is read once
	if keyFile != certFile {
		if k, err = os.ReadFile(keyFile); err != nil {
			return "", err
		}
	}
	pair, err := tls.X509KeyPair(bytes.Clone(c), k)
	if err != nil {
		return "", fmt.Errorf("not one pair: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return "", err
	}
	return leaf.SerialNumber.String(), nil
}

// TestFileSetReusedAfterKill: a certificate set with a state_dir, the
// daemon killed with -9 and started again: no new issuance, the set not
// rewritten (the same data link target), no change action.
func TestFileSetReusedAfterKill(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	role := pkiRole(t, srv, p, nil)
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "tls")
	changes := filepath.Join(dir, "changes.log")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
leases: {state_dir: %[4]s}
secrets:
  - name: web-tls
    lease: {path: pki/issue/%[1]s, method: POST, parameters: {common_name: app.example, ttl: 30m}}
    on_start: true
    files:
      - {destination: %[2]s/tls.crt, key: certificate}
      - {destination: %[2]s/tls.key, key: private_key}
    on_change:
      - exec: {command: ["sh", "-c", "echo \"$SIDECAR_CHANGED_FILES\" >> %[3]s"]}
`, role, out, changes, state))
	env := []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token, "SIDECAR_HTTP_ADDR=" + freeAddr(t)}
	d := startDaemon(t, cfg, t.TempDir(), env...)
	d.waitReady(t, time.Minute)
	waitFor(t, time.Minute, "on_start's change action for the new set", func() bool {
		b, _ := os.ReadFile(changes)
		return len(b) > 0
	})
	link, err := os.Readlink(filepath.Join(out, "..web-tls.data"))
	if err != nil {
		t.Fatal(err)
	}
	serial, err := readPair(filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	d.kill(t)

	env[2] = "SIDECAR_HTTP_ADDR=" + freeAddr(t)
	d = startDaemon(t, cfg, t.TempDir(), env...)
	d.waitReady(t, time.Minute)
	if n := metricSum(d.metrics(t), "secrets_sidecar_leases_issued_total"); n != 0 {
		t.Errorf("%v certificates issued after kill -9, want 0 (the recorded one adopted)", n)
	}
	if again, err := os.Readlink(filepath.Join(out, "..web-tls.data")); err != nil || again != link {
		t.Errorf("the set was rewritten after kill -9: %s -> %s (%v)", link, again, err)
	}
	if s, err := readPair(filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key")); err != nil || s != serial {
		t.Errorf("after kill -9: serial %s (%v), want %s", s, err, serial)
	}
	if log := strings.TrimSpace(readFile(t, changes)); strings.Count(log, "\n") != 0 {
		t.Errorf("the change action ran again after the restart:\n%s", log)
	}
	t.Logf("kill -9 with a state_dir: 0 new issuances, the set (%s) untouched", link)
}

// TestPKISignWithGeneratedKey: lease.generate_key against the dev
// server's pki/sign/ROLE. The sidecar makes a P-384 key, sends only a
// CSR, and writes the certificate Vault signed beside that key: the pair
// loads, the certificate names the CSR's subject and SANs, and the key
// never reaches the log.
func TestPKISignWithGeneratedKey(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	role := pkiRole(t, srv, p, map[string]any{"key_type": "any"})
	out := filepath.Join(dir, "tls")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
secrets:
  - name: web-tls
    lease:
      path: pki/sign/%[1]s
      method: POST
      generate_key: true
      parameters: {common_name: app.example, alt_names: "www.app.example,127.0.0.1", ttl: 30m, key_type: ec, key_bits: 384}
    files:
      - {destination: %[2]s/tls.crt, key: certificate}
      - {destination: %[2]s/tls.key, key: private_key, mode: "0400"}
`, role, out))
	env := []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token, "SIDECAR_STATUS_FILE=" + filepath.Join(t.TempDir(), "status.json"),
		"SIDECAR_HTTP_ADDR=", "SIDECAR_LOG_LEVEL=debug"}
	code, _, stderr := runBinary(t, env, "once", "--config", cfg, "--timeout", "30s")
	if code != exitOK {
		t.Fatalf("once: exit %d\n%s", code, stderr)
	}
	keyPEM := readFile(t, filepath.Join(out, "tls.key"))
	pair, err := tls.X509KeyPair([]byte(readFile(t, filepath.Join(out, "tls.crt"))), []byte(keyPEM))
	if err != nil {
		t.Fatalf("the signed certificate and the generated key are not one pair: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != "app.example" || !strings.Contains(strings.Join(leaf.DNSNames, ","), "www.app.example") || len(leaf.IPAddresses) != 1 {
		t.Errorf("certificate for %q, DNS %v, IPs %v; want the CSR's app.example, www.app.example, 127.0.0.1", leaf.Subject.CommonName, leaf.DNSNames, leaf.IPAddresses)
	}
	if k, ok := pair.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve.Params().BitSize != 384 {
		t.Errorf("the generated key is %T, want a P-384 ECDSA key", pair.PrivateKey)
	}
	if strings.Contains(stderr, strings.TrimSpace(keyPEM)[40:100]) {
		t.Error("the generated private key reached the log")
	}
}
