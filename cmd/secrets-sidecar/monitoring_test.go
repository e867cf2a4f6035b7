package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

const monitoringDir = "../../deployments/monitoring"

// TestMonitoringQueriesUseExposedMetrics runs the real binary against the
// real Vault with something for every metric to show (an AppRole login, a
// certificate from KV v2, a change action, a failing secret), then checks
// that every metric named by a query in dashboard.json and alerts.yaml is
// a series /metrics exposes. A renamed metric or a typo in a query fails.
func TestMonitoringQueriesUseExposedMetrics(t *testing.T) {
	queries := monitoringQueries(t)
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	p := prefix(t)
	srv.Policy(t, p, fmt.Sprintf(`path "secret/data/%s/*" { capabilities = ["read"] }`, p))
	mount := "approle-" + strings.ToLower(p)
	roleID, secretID := srv.AppRole(t, mount, "app", map[string]any{"token_policies": []string{p}, "token_ttl": "1h"})
	for name, v := range map[string]string{"role-id": roleID, "secret-id": secretID} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv.PutKV2(t, "secret", p+"/tls", map[string]any{"cert": testCertificate(t, time.Now().Add(30*24*time.Hour))})
	cfg := writeConfig(t, dir, fmt.Sprintf(`vault: {address: %[1]s, auth: {method: approle, approle: {mount: %[2]s, role_id_file: %[3]s/role-id, secret_id_file: %[3]s/secret-id}}}
secrets:
  - name: tls
    path: %[4]s/tls
    destination: %[3]s/out/tls.pem
    key: cert
    on_start: true
    on_change: [{exec: {command: ["true"]}}]
  - {name: missing, path: %[4]s/missing, destination: %[3]s/out/missing, key: v}
`, srv.Addr, mount, dir, p))
	addr := freeAddr(t)
	d := startDaemon(t, cfg, dir, "SIDECAR_HTTP_ADDR="+addr)

	var exposed map[string]bool
	want := []string{ // one of each kind, so the wait covers every source
		"secrets_sidecar_certificate_expiry_timestamp_seconds", "secrets_sidecar_vault_logins_total",
		"secrets_sidecar_action_duration_seconds_bucket", "secrets_sidecar_errors_total",
		"secrets_sidecar_secret_version_created_timestamp_seconds",
	}
	waitFor(t, 30*time.Second, "every kind of metric on /metrics", func() bool {
		if !d.running() {
			t.Fatalf("sidecar exited: %v", d.err)
		}
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false // not listening yet
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		exposed = seriesNames(string(body))
		return err == nil && !slices.ContainsFunc(want, func(n string) bool { return !exposed[n] })
	})
	checkQueries(t, queries, exposed)
	t.Logf("%d queries name %d metrics, each checked against /metrics", len(queries), len(queryMetrics(queries)))
}

// TestMonitoringCheckCatchesAMissingMetric: the check fails for a query
// whose metric does not exist, or lacks the histogram suffix.
func TestMonitoringCheckCatchesAMissingMetric(t *testing.T) {
	exposed := map[string]bool{"secrets_sidecar_fetch_duration_seconds_bucket": true, "secrets_sidecar_ready": true}
	for _, q := range []string{
		`secrets_sidecar_redy == 0`,
		`histogram_quantile(0.9, sum by (le) (rate(secrets_sidecar_fetch_duration_seconds[5m])))`,
		`secrets_sidecar_ready and on (instance) secrets_sidecar_no_such_metric{stage="fetch"}`,
	} {
		ft := &fakeT{}
		checkQueries(ft, map[string]string{"q": q}, exposed)
		if !ft.failed {
			t.Errorf("no failure for %s", q)
		}
	}
	ft := &fakeT{}
	checkQueries(ft, map[string]string{"q": `histogram_quantile(0.9, sum by (le, secret_name) (rate(secrets_sidecar_fetch_duration_seconds_bucket{stage=~"a|b"}[$__rate_interval]))) > on (job) group_left () secrets_sidecar_ready`}, exposed)
	if ft.failed {
		t.Errorf("a valid query failed: %s", ft.msg)
	}
}

type fakeT struct {
	failed bool
	msg    string
}

func (f *fakeT) Errorf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}
func (f *fakeT) Helper() {}

func checkQueries(t interface {
	Errorf(string, ...any)
	Helper()
}, queries map[string]string, exposed map[string]bool) {
	t.Helper()
	for where, q := range queries {
		names := metricNames(q)
		if len(names) == 0 {
			t.Errorf("%s: no metric found in %q", where, q)
		}
		for _, n := range names {
			if !exposed[n] {
				t.Errorf("%s: metric %s is not exposed on /metrics (query %q)", where, n, q)
			}
		}
	}
}

// monitoringQueries is every PromQL expression of dashboard.json (any
// "expr" field, at any depth) and alerts.yaml, by where it was found.
func monitoringQueries(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	raw, err := os.ReadFile(filepath.Join(monitoringDir, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if e, ok := v["expr"].(string); ok {
				out["dashboard.json "+path] = e
			}
			for k, c := range v {
				walk(path+"."+k, c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), c)
			}
		}
	}
	walk("", dash)
	raw, err = os.ReadFile(filepath.Join(monitoringDir, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["alerts.yaml "+r.Alert] = r.Expr
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d queries found", len(out))
	}
	return out
}

func queryMetrics(queries map[string]string) map[string]bool {
	all := map[string]bool{}
	for _, q := range queries {
		for _, n := range metricNames(q) {
			all[n] = true
		}
	}
	return all
}

var (
	// What holds no metric name: string literals, label matchers, range
	// and subquery durations, and the label lists of grouping modifiers.
	promStrings   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers  = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promModifiers = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	promKeywords  = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true,
	}
)

// metricNames is the metric names a PromQL expression selects: the
// identifiers that are not functions, keywords, labels or numbers.
func metricNames(q string) []string {
	q = promStrings.ReplaceAllString(q, `""`)
	q = promMatchers.ReplaceAllString(q, " ")
	q = promModifiers.ReplaceAllString(q, " ")
	var out []string
	for _, m := range promIdent.FindAllStringSubmatch(q, -1) {
		if m[1] != "" || promKeywords[strings.ToLower(m[0])] { // a function call or a keyword
			continue
		}
		out = append(out, m[0])
	}
	return out
}

// seriesNames is the set of series names in a Prometheus text exposition.
func seriesNames(body string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// testCertificate is a self-signed PEM certificate valid until notAfter.
func testCertificate(t *testing.T, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
