//go:build soak

package main

import (
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

// TestSoakCertificateSet (`make test-soak`): a 7 s certificate as a
// files: set, issued again about every 2 s by the real binary against the
// dev server's PKI, 100 times, while readers hammer the set. A reader that
// resolves the data link once must never see a certificate with another
// issuance's key; the count of name-by-name mismatches is reported.
func TestSoakCertificateSet(t *testing.T) {
	const renewals = 100
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	role := "soak-certs"
	srv.Write(t, "pki/roles/"+role, map[string]any{"allow_any_name": true, "max_ttl": "1h", "key_type": "ec", "key_bits": 256})
	out := filepath.Join(dir, "tls")
	cfg := writeConfig(t, dir, fmt.Sprintf(`
notify: {debounce: 100ms}
leases: {max_new_leases: 1000}
secrets:
  - name: web-tls
    lease: {path: pki/issue/%[1]s, method: POST, parameters: {common_name: app.example, ttl: 7s}}
    refresh_interval: 1s
    files:
      - {destination: %[2]s/tls.crt, key: certificate}
      - {destination: %[2]s/tls.key, key: private_key}
      - {destination: %[2]s/bundle.pem, content: bundle}
`, role, out))
	d := startDaemon(t, cfg, dir, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_HTTP_ADDR="+freeAddr(t))
	d.waitReady(t, time.Minute)

	var linkReads, linkTorn, nameReads, nameTorn, bundleReads, bundleTorn atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if target, err := os.Readlink(filepath.Join(out, "..web-tls.data")); err == nil {
					setDir := filepath.Join(out, target)
					switch _, err := readPair(filepath.Join(setDir, "tls.crt"), filepath.Join(setDir, "tls.key")); {
					case err == nil:
						linkReads.Add(1)
					case !errors.Is(err, os.ErrNotExist): // a removed old set is no tear
						linkTorn.Add(1)
					}
				}
				if _, err := readPair(filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key")); err == nil {
					nameReads.Add(1)
				} else {
					nameTorn.Add(1)
				}
				if _, err := readPair(filepath.Join(out, "bundle.pem"), filepath.Join(out, "bundle.pem")); err == nil {
					bundleReads.Add(1)
				} else {
					bundleTorn.Add(1)
				}
			}
		}()
	}
	serials := map[string]bool{}
	start := time.Now()
	waitFor(t, 10*time.Minute, fmt.Sprintf("%d renewals", renewals), func() bool {
		if s, err := readPair(filepath.Join(out, "tls.crt"), filepath.Join(out, "tls.key")); err == nil {
			serials[s] = true
		}
		return len(serials) > renewals
	})
	close(stop)
	wg.Wait()
	if linkTorn.Load() > 0 || bundleTorn.Load() > 0 {
		t.Errorf("torn reads: %d through the data link, %d of the bundle", linkTorn.Load(), bundleTorn.Load())
	}
	sets, _ := filepath.Glob(filepath.Join(out, "..web-tls_*"))
	if len(sets) > 2 {
		t.Errorf("%d set directories left: %v", len(sets), sets)
	}
	if log := d.logs.String(); strings.Contains(log, "BEGIN") {
		t.Error("PEM content reached the log")
	}
	t.Logf("%d certificates in %s; through the data link %d reads, %d torn; bundle %d reads, %d torn; name by name %d reads, %d mismatched",
		len(serials), time.Since(start).Round(time.Second), linkReads.Load(), linkTorn.Load(), bundleReads.Load(), bundleTorn.Load(), nameReads.Load(), nameTorn.Load())
}
