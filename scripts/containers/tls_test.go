//go:build containers

package containers

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// imageTLSApp is examples/compose/tlsapp in a scratch image: the final
// stage of its Dockerfile, with a binary the test compiles instead of the
// build stage's (no golang image can be pulled here).
const imageTLSApp = "secrets-sidecar-test/tlsapp:containers"

var (
	tlsappOnce sync.Once
	tlsappErr  error
)

// tlsappImage builds imageTLSApp once per run.
func tlsappImage(t *testing.T) {
	t.Helper()
	images(t)
	tlsappOnce.Do(func() {
		tlsappErr = errors.New("the test that built it failed") // if buildTLSApp ends the test
		tlsappErr = buildTLSApp(t)
	})
	if tlsappErr != nil {
		t.Fatalf("building %s: %v", imageTLSApp, tlsappErr)
	}
}

// copyFromBuild is the example Dockerfile's copy of the binary out of its
// build stage.
var copyFromBuild = regexp.MustCompile(`(?m)^COPY --from=build /out/tlsapp /tlsapp$`)

func buildTLSApp(t *testing.T) error {
	start := time.Now()
	ctx := t.TempDir()
	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	bin := filepath.Join(ctx, "tlsapp")
	if r := execute(t, 3*time.Minute, []string{"CGO_ENABLED=0"}, goCmd, "build", "-trimpath", "-ldflags=-s -w",
		"-o", bin, "../../examples/compose/tlsapp"); r.code != 0 {
		return fmt.Errorf("go build ./examples/compose/tlsapp: exit %d\n%s", r.code, r.stderr)
	}
	if err := static(bin); err != nil {
		return err
	}
	dockerfile, err := os.ReadFile("../../examples/compose/tlsapp/Dockerfile")
	if err != nil {
		return err
	}
	stage, err := finalStage(string(dockerfile))
	if err != nil {
		return fmt.Errorf("examples/compose/tlsapp/Dockerfile: %w", err)
	}
	if !copyFromBuild.MatchString(stage) {
		return fmt.Errorf("examples/compose/tlsapp/Dockerfile: no %q in the final stage", copyFromBuild)
	}
	stage = copyFromBuild.ReplaceAllString(stage, "COPY tlsapp /tlsapp")
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(stage), 0o644); err != nil {
		return err
	}
	build(t, imageTLSApp, ctx, filepath.Join(ctx, "Dockerfile"))
	t.Logf("built %s (go build, then the example Dockerfile's final stage) in %s", imageTLSApp, time.Since(start).Round(time.Millisecond))
	return nil
}

// served is what one HTTPS request to tlsapp saw: the leaf's serial in the
// handshake (formatted as Vault and tlsapp write serials) and the body.
func served(t *testing.T, addr string, roots *x509.CertPool) (string, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, // verifies the IP SAN 127.0.0.1
		DisableKeepAlives: true,                                                      // a handshake per request
	}}
	resp, err := client.Get("https://" + addr + "/")
	if err != nil {
		t.Fatalf("GET https://%s/: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET https://%s/: %s, %v", addr, resp.Status, err)
	}
	return hexSerial(resp.TLS.PeerCertificates[0]), strings.TrimSpace(string(body))
}

func hexSerial(c *x509.Certificate) string {
	b := c.SerialNumber.Bytes()
	pairs := make([]string, len(b))
	for i, x := range b {
		pairs[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(pairs, ":")
}

// tlsSet is one version of the set in /secrets/tls, each file by name.
type tlsSet map[string]string

// readSet reads the set from the app's volume as a reader should, through
// ..tls.data resolved once (cd), in a one-off busybox container as 65534.
func readSet(t *testing.T, app string) tlsSet {
	t.Helper()
	vol := docker(t, "inspect", "--format", `{{range .Mounts}}{{if eq .Destination "/secrets"}}{{.Name}}{{end}}{{end}}`, app)
	name := "secrets-sidecar-test-tls-read"
	removeContainer(t, name)
	files := []string{"tls.crt", "tls.key", "chain.pem", "bundle.pem"}
	script := "cd /secrets/tls/..tls.data"
	for _, f := range files {
		script += fmt.Sprintf(" && echo '==> %s' && cat %s", f, f)
	}
	out := docker(t, "run", "--name", name, "--label", label, "--network", "none", "--read-only", "--user", "65534:65534",
		"-v", vol+":/secrets:ro", imageBusybox, "-c", script)
	docker(t, "rm", name)
	set := tlsSet{}
	parts := strings.Split(out, "==> ")
	for _, p := range parts[1:] {
		f, content, _ := strings.Cut(p, "\n")
		set[f] = content
	}
	for _, f := range files {
		if set[f] == "" {
			t.Fatalf("/secrets/tls/..tls.data/%s: empty or missing:\n%s", f, out)
		}
	}
	return set
}

// leaf is the first certificate of PEM text.
func leaf(t *testing.T, what, text string) *x509.Certificate {
	t.Helper()
	for rest := []byte(text); ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			t.Fatalf("%s: no certificate", what)
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			return c
		}
	}
}

// check checks one version of the set: the bundle's key and certificate
// are one pair, and its certificate, the chain's first and tls.crt are the
// same; it returns their serial.
func (s tlsSet) check(t *testing.T) string {
	t.Helper()
	pair, err := tls.X509KeyPair([]byte(s["bundle.pem"]), []byte(s["bundle.pem"]))
	if err != nil {
		t.Fatalf("bundle.pem: not a key and its certificate: %v", err)
	}
	crt := hexSerial(leaf(t, "tls.crt", s["tls.crt"]))
	if b, c := hexSerial(pair.Leaf), hexSerial(leaf(t, "chain.pem", s["chain.pem"])); b != crt || c != crt {
		t.Fatalf("one version of the set holds serials %s (tls.crt), %s (bundle.pem), %s (chain.pem)", crt, b, c)
	}
	if _, err := tls.X509KeyPair([]byte(s["tls.crt"]), []byte(s["tls.key"])); err != nil {
		t.Fatalf("tls.crt and tls.key: not one pair: %v", err)
	}
	return crt
}

// servingLine is tlsapp's line for each certificate it starts serving: at
// start ("serving serial S on https://...") and on each SIGHUP that loaded
// the bundle ("SIGHUP, serving serial S").
var servingLine = regexp.MustCompile(`tlsapp: (SIGHUP, )?serving serial ([0-9a-f:]+)`)

// TestComposeTLS: examples/compose/test/docker-compose.tls.yml, a TLS
// server (examples/compose/tlsapp) reloading its certificate on SIGHUP.
// The sidecar, in the app's PID namespace, issues a 20 s certificate from
// the dev server's PKI into a files: set; the app, started first, waits for
// the set's bundle.pem and serves it. A TLS client that trusts only the
// dev server's CA (pki/ca/pem) sees the served serial change when the
// sidecar issues the certificate again (at about 2/3 of its life) and sends
// the app SIGHUP: the new serial is the one in the set (tls.crt, chain.pem
// and bundle.pem of one version agree) and in Vault, and the app logged
// the SIGHUP with it. No SIGHUP reloads a certificate the app already
// serves (none at start, one per issuance); nothing restarts; SIGTERM ends
// the app with exit code 0 at once.
func TestComposeTLS(t *testing.T) {
	tlsappImage(t)
	port := freePort(t)
	t.Setenv("TLSAPP_PORT", port) // compose's environment, with VAULT_PORT and SIDECAR_HTTP_PORT
	p := composeUp(t, "secrets-sidecar-test-tls", "docker-compose.tls.yml")
	sidecar, app := p.container("secrets-sidecar"), p.container("app")
	if got, want := pidMode(t, sidecar), "container:"+app; got != want {
		t.Fatalf("the sidecar's PID mode: %q, want %q", got, want)
	}
	evs := p.events(p.since)
	order(t, evs, "secrets-sidecar", "vault-seed", "die")
	if appStart, sidecarStart := first(evs, "app", "start"), first(evs, "secrets-sidecar", "start"); appStart.IsZero() || !appStart.Before(sidecarStart) {
		t.Errorf("app started at %v, the sidecar at %v: the app must start first (the sidecar joins its PID namespace)", appStart, sidecarStart)
	}
	waitHealthy(t, sidecar, time.Minute)
	waitLogs(t, app, time.Minute, "tlsapp: serving serial ")

	resp, err := http.Get("http://127.0.0.1:" + p.vaultPort + "/v1/pki/ca/pem")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots := x509.NewCertPool()
	if err != nil || resp.StatusCode != http.StatusOK || !roots.AppendCertsFromPEM(caPEM) {
		t.Fatalf("GET pki/ca/pem: %s, %v:\n%s", resp.Status, err, caPEM)
	}
	addr := "127.0.0.1:" + port
	firstSerial, body := served(t, addr, roots)
	if body != "serial "+firstSerial {
		t.Errorf("GET / answered %q, the handshake had serial %s", body, firstSerial)
	}
	t.Logf("tlsapp on %s: serial %s, chaining to the dev server's CA", addr, firstSerial)

	// The sidecar issues the certificate again, writes the new set and
	// signals the app: the served serial changes without a restart.
	start := time.Now()
	var serial string
	for deadline := start.Add(90 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		if serial, body = served(t, addr, roots); serial != firstSerial {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the served serial is still %s after %s:\n%s", firstSerial, time.Since(start).Round(time.Second), logs(t, app))
		}
	}
	t.Logf("the served serial changed to %s %s after the first handshake", serial, time.Since(start).Round(time.Millisecond))
	if body != "serial "+serial {
		t.Errorf("GET / answered %q, the handshake had serial %s", body, serial)
	}
	waitLogs(t, app, 10*time.Second, "tlsapp: SIGHUP, serving serial "+serial)

	set := readSet(t, app)
	if got := set.check(t); got != serial {
		t.Errorf("the set holds serial %s, the app serves %s", got, serial)
	}
	cert, err := p.vault().Logical().Read("pki/cert/" + serial)
	if err != nil || cert == nil {
		t.Fatalf("read pki/cert/%s: %v", serial, err)
	}
	if got, _ := cert.Data["certificate"].(string); strings.TrimSpace(got) != strings.TrimSpace(set["tls.crt"]) {
		t.Errorf("Vault's certificate %s is not the set's tls.crt", serial)
	}
	t.Logf("the set (tls.crt, tls.key, chain.pem, bundle.pem, read through ..tls.data) holds serial %s, as issued by Vault", serial)

	// Every certificate the app served, in order: none twice in a row (no
	// SIGHUP at start, one per issuance), none failed to load.
	out := logs(t, app)
	var seen []string
	for _, m := range servingLine.FindAllStringSubmatch(out, -1) {
		if n := len(seen); n > 0 && seen[n-1] == m[2] {
			t.Errorf("app: a SIGHUP reloaded serial %s, which it already served:\n%s", m[2], out)
		}
		seen = append(seen, m[2])
	}
	if len(seen) < 2 || seen[0] != firstSerial || !strings.Contains(out, "tlsapp: SIGHUP, serving serial "+serial) {
		t.Errorf("app: served %v, want %s first, then %s after a SIGHUP:\n%s", seen, firstSerial, serial, out)
	}
	if strings.Contains(out, "keeping serial") {
		t.Errorf("app: a bundle failed to load:\n%s", out)
	}
	sidecarAddr := "127.0.0.1:" + p.sidecarPort
	if ok, failed := metric(t, sidecarAddr, `secrets_sidecar_actions_total{kind="signal",result="success"}`),
		metric(t, sidecarAddr, `secrets_sidecar_actions_total{kind="signal",result="error"}`); ok < 1 || failed > 0 {
		t.Errorf("the sidecar's signal action runs: %v succeeded, %v failed; want at least 1 and 0", ok, failed)
	}
	sidecarLogs := logs(t, sidecar)
	if !strings.Contains(sidecarLogs, `"signalled": 1`) {
		t.Errorf("the sidecar logged no signal action that reached one process:\n%s", sidecarLogs)
	}
	key := strings.TrimSpace(set["tls.key"])
	noSecrets(t, "the sidecar's logs", sidecarLogs, []string{key[40 : len(key)-40]})
	noSecrets(t, "the app's output", out, []string{key[40 : len(key)-40]})
	noRestarts(t, p, "vault", "secrets-sidecar", "app")

	// Down in Compose's order: the sidecar, then the app, PID 1, which
	// handles SIGTERM itself.
	docker(t, "stop", "--time", "20", sidecar)
	if code := inspect(t, sidecar).State.ExitCode; code != 0 {
		t.Errorf("secrets-sidecar after docker stop: exit code %d, want 0", code)
	}
	start = time.Now()
	docker(t, "stop", "--time", "10", app)
	took := time.Since(start)
	if code := inspect(t, app).State.ExitCode; code != 0 || took > 5*time.Second {
		t.Errorf("app: docker stop -t 10 took %s, exit code %d; want exit code 0 well before the timeout", took.Round(time.Millisecond), code)
	}
	waitLogs(t, app, 10*time.Second, "tlsapp: SIGTERM or SIGINT, exiting")
	t.Logf("app: docker stop took %s, exit code 0", took.Round(time.Millisecond))
}
