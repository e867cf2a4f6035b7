package main

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gopkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestPKCS12KeystoreFileSet: a files: set from the dev server's real PKI
// engine with a `content: pkcs12` archive beside a `bundle`. The archive
// opens with the password read from password_file and holds the bundle's
// certificate, its key and the dev CA. A second `once` with the same
// state_dir renders the recorded issuance again to the same bytes, so
// nothing is rewritten (same data link, inode and mtime); a rotated
// password is taken at the next run, which re-makes the archive; a
// missing password file fails the sync naming the path and leaves the set
// as it was; the daemon's status file records that error, the daemon
// makes the set once the file is back, and its 1s refreshes leave it
// alone. No password reaches the log or the status file.
func TestPKCS12KeystoreFileSet(t *testing.T) {
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	role := pkiRole(t, srv, p, nil)
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "tls")
	pwFile := filepath.Join(dir, "keystore.pass")
	const password, rotated = "p12-integration-Wq7-password", "p12-rotated-Zt4-password"
	writePassword := func(pw string) {
		t.Helper()
		if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePassword(password)
	cfg := writeConfig(t, dir, fmt.Sprintf(`
leases: {state_dir: %[3]s}
secrets:
  - name: web-keystore
    lease: {path: pki/issue/%[1]s, method: POST, parameters: {common_name: app.example, ttl: 30m}}
    refresh_interval: 1s
    files:
      - {destination: %[2]s/keystore.p12, content: pkcs12, password_file: %[4]s, mode: "0400"}
      - {destination: %[2]s/bundle.pem, content: bundle, mode: "0400"}
`, role, out, state, pwFile))
	env := []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token, "SIDECAR_STATUS_FILE=" + filepath.Join(dir, "once-status.json"),
		"SIDECAR_HTTP_ADDR=", "SIDECAR_LOG_LEVEL=debug"}
	var logs strings.Builder
	once := func(what string) int {
		t.Helper()
		code, stdout, stderr := runBinary(t, env, "once", "--config", cfg, "--timeout", "30s")
		logs.WriteString(stdout + stderr)
		if code != exitOK && what != "" {
			t.Fatalf("%s: exit %d\n%s", what, code, stderr)
		}
		return code
	}
	if code, _, stderr := runBinary(t, env, "validate", "--config", cfg); code != exitOK {
		t.Fatalf("validate: exit %d\n%s", code, stderr)
	}
	once("first once")

	archive := filepath.Join(out, "keystore.p12")
	pfx := []byte(readFile(t, archive))
	key, leaf, cas, err := gopkcs12.DecodeChain(pfx, password)
	if err != nil {
		t.Fatalf("the archive does not open with the password: %v", err)
	}
	bundle := readFile(t, filepath.Join(out, "bundle.pem"))
	pair, err := tls.X509KeyPair([]byte(bundle), []byte(bundle))
	if err != nil {
		t.Fatalf("bundle.pem: %v", err)
	}
	if !bytes.Equal(leaf.Raw, pair.Certificate[0]) {
		t.Errorf("the archive's certificate (serial %s) is not the bundle's", leaf.SerialNumber)
	}
	if k, ok := key.(interface{ Equal(crypto.PrivateKey) bool }); !ok || !k.Equal(pair.PrivateKey) {
		t.Error("the archive's key is not the bundle's")
	}
	caSecret, err := srv.Client(t).Logical().Read("pki/cert/ca")
	if err != nil || caSecret == nil {
		t.Fatalf("read pki/cert/ca: %v", err)
	}
	block, _ := pem.Decode([]byte(caSecret.Data["certificate"].(string)))
	if len(cas) == 0 || !bytes.Equal(cas[len(cas)-1].Raw, block.Bytes) {
		t.Errorf("the archive's %d CA certificates do not end with the dev CA", len(cas))
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(caSecret.Data["certificate"].(string)))
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "app.example"}); err != nil {
		t.Errorf("the archive's certificate does not chain to the dev CA: %v", err)
	}
	if fi := statFile(t, archive); fi.Mode().Perm() != 0o400 {
		t.Errorf("keystore.p12 mode %o, want 0400", fi.Mode().Perm())
	}

	// The same issuance again: the same archive, nothing rewritten.
	dataLink := filepath.Join(out, "..web-keystore.data")
	link, err := os.Readlink(dataLink)
	if err != nil {
		t.Fatal(err)
	}
	before := statFile(t, archive)
	once("second once")
	if got := readFile(t, archive); got != string(pfx) {
		t.Error("the second run made other bytes from the same issuance and password")
	}
	after := statFile(t, archive)
	if again, _ := os.Readlink(dataLink); again != link || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the second run rewrote the set: data link %s -> %s", link, again)
	}

	// A rotated password is read at the next render.
	writePassword(rotated)
	once("once after the password rotated")
	if again, _ := os.Readlink(dataLink); again == link {
		t.Error("the set was not rewritten for the new password")
	}
	newPfx := []byte(readFile(t, archive))
	if _, _, _, err := gopkcs12.DecodeChain(newPfx, rotated); err != nil {
		t.Errorf("the archive does not open with the rotated password: %v", err)
	}
	if _, _, _, err := gopkcs12.DecodeChain(newPfx, password); err == nil {
		t.Error("the archive still opens with the old password")
	}

	// No password file: the sync fails, naming it; the set stays.
	if err := os.Remove(pwFile); err != nil {
		t.Fatal(err)
	}
	if code := once(""); code == exitOK {
		t.Error("once succeeded without the password file")
	}
	if !strings.Contains(logs.String(), pwFile) {
		t.Errorf("no error names the missing password file %s", pwFile)
	}
	if got := readFile(t, archive); got != string(newPfx) {
		t.Error("a failed render changed the archive")
	}

	// The daemon, from the same state: its status file records the error
	// naming the file, and the set is made once the password is back.
	d := startDaemon(t, cfg, dir, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_LOG_LEVEL=debug")
	waitFor(t, time.Minute, "the status file to record the missing password file", func() bool {
		b, _ := os.ReadFile(d.status)
		return bytes.Contains(b, []byte(pwFile))
	})
	writePassword(password)
	d.waitReady(t, time.Minute)
	if _, _, _, err := gopkcs12.DecodeChain([]byte(readFile(t, archive)), password); err != nil {
		t.Errorf("the daemon's archive does not open with the password: %v", err)
	}
	// Refreshes render the same issuance again: the set is left alone.
	link, _ = os.Readlink(dataLink)
	upToDate := func() int { return strings.Count(d.logs.String(), `"msg":"secret file up to date"`) }
	seen := upToDate()
	waitFor(t, 30*time.Second, "two refreshes that find the set up to date", func() bool { return upToDate() >= seen+2 })
	if again, _ := os.Readlink(dataLink); again != link {
		t.Errorf("a refresh rewrote the set: data link %s -> %s", link, again)
	}
	if _, code := d.term(t, 30*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	status := readFile(t, d.status)
	logs.WriteString(d.logs.String())
	for _, pw := range []string{password, rotated} {
		if strings.Contains(logs.String(), pw) {
			t.Errorf("the password %q reached the log:\n%s", pw, logs.String())
		}
		if strings.Contains(status, pw) {
			t.Errorf("the password %q reached the status file:\n%s", pw, status)
		}
	}
}
