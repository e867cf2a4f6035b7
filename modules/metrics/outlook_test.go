package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

var outlookNames = []string{
	"secrets_sidecar_certificate_expiry_timestamp_seconds",
	"secrets_sidecar_secret_refresh_interval_seconds",
	"secrets_sidecar_secret_version_created_timestamp_seconds",
	"secrets_sidecar_vault_logins_total",
}

const outlookGolden = `
# HELP secrets_sidecar_certificate_expiry_timestamp_seconds Earliest NotAfter (Unix time) of the PEM CERTIFICATE blocks in a secret's written file; absent when it holds none.
# TYPE secrets_sidecar_certificate_expiry_timestamp_seconds gauge
secrets_sidecar_certificate_expiry_timestamp_seconds{secret_name="tls"} 1.7012e+09
# HELP secrets_sidecar_secret_refresh_interval_seconds The configured refresh interval of a secret.
# TYPE secrets_sidecar_secret_refresh_interval_seconds gauge
secrets_sidecar_secret_refresh_interval_seconds{secret_name="db"} 90
secrets_sidecar_secret_refresh_interval_seconds{secret_name="tls"} 0.5
# HELP secrets_sidecar_secret_version_created_timestamp_seconds Unix time the KV v2 version last read of a secret was created in Vault; absent for KV v1.
# TYPE secrets_sidecar_secret_version_created_timestamp_seconds gauge
secrets_sidecar_secret_version_created_timestamp_seconds{secret_name="db"} 1.7000000005e+09
# HELP secrets_sidecar_vault_logins_total Vault logins by auth method and result (success, error, or rejected: Vault refused the credentials).
# TYPE secrets_sidecar_vault_logins_total counter
secrets_sidecar_vault_logins_total{method="approle",result="error"} 2
secrets_sidecar_vault_logins_total{method="approle",result="rejected"} 1
secrets_sidecar_vault_logins_total{method="approle",result="success"} 1
secrets_sidecar_vault_logins_total{method="kubernetes",result="error"} 0
secrets_sidecar_vault_logins_total{method="kubernetes",result="rejected"} 0
secrets_sidecar_vault_logins_total{method="kubernetes",result="success"} 1
`

// TestOutlookGolden: the expiry and version gauges follow the last value
// and vanish on the zero time (a file without a certificate, a secret now
// read from KV v1); the interval follows a reload; logins count by method
// and result, with an unknown result as an error and all three results of
// a method present from its first login.
func TestOutlookGolden(t *testing.T) {
	m, reg := newMetrics(t)
	m.RefreshInterval("db", time.Minute)
	m.RefreshInterval("db", 90*time.Second) // a reload changed it
	m.RefreshInterval("tls", 500*time.Millisecond)
	m.VersionCreated("db", time.Unix(1700000000, 500_000_000))
	m.VersionCreated("tls", time.Unix(1690000000, 0))
	m.VersionCreated("tls", time.Time{}) // now KV v1
	m.CertificateExpiry("tls", time.Unix(1701100000, 0))
	m.CertificateExpiry("tls", time.Unix(1701200000, 0)) // renewed
	m.CertificateExpiry("db", time.Unix(1701300000, 0))
	m.CertificateExpiry("db", time.Time{}) // the file no longer holds one
	m.LoginDone("kubernetes", "success")
	m.LoginDone("approle", "success")
	m.LoginDone("approle", "error")
	m.LoginDone("approle", "rejected")
	m.LoginDone("approle", "bogus")
	if err := testutil.GatherAndCompare(reg, strings.NewReader(outlookGolden), outlookNames...); err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.GatherAndLint(reg, outlookNames...); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

// TestOutlookForget: a secret a reload removed takes its expiry, interval
// and version series with it; the other secret's stay.
func TestOutlookForget(t *testing.T) {
	m, reg := newMetrics(t)
	for _, s := range []string{"db", "tls"} {
		m.RefreshInterval(s, time.Minute)
		m.VersionCreated(s, time.Unix(1700000000, 0))
		m.CertificateExpiry(s, time.Unix(1701000000, 0))
	}
	m.LoginDone("approle", "success")
	m.Forget("db", "secret/myapp/db")
	want := `
# HELP secrets_sidecar_certificate_expiry_timestamp_seconds Earliest NotAfter (Unix time) of the PEM CERTIFICATE blocks in a secret's written file; absent when it holds none.
# TYPE secrets_sidecar_certificate_expiry_timestamp_seconds gauge
secrets_sidecar_certificate_expiry_timestamp_seconds{secret_name="tls"} 1.701e+09
# HELP secrets_sidecar_secret_refresh_interval_seconds The configured refresh interval of a secret.
# TYPE secrets_sidecar_secret_refresh_interval_seconds gauge
secrets_sidecar_secret_refresh_interval_seconds{secret_name="tls"} 60
# HELP secrets_sidecar_secret_version_created_timestamp_seconds Unix time the KV v2 version last read of a secret was created in Vault; absent for KV v1.
# TYPE secrets_sidecar_secret_version_created_timestamp_seconds gauge
secrets_sidecar_secret_version_created_timestamp_seconds{secret_name="tls"} 1.7e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), outlookNames[:3]...); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "secrets_sidecar_vault_logins_total"); err != nil || n != 3 {
		t.Fatalf("logins: %d series (%v), want 3: a reload does not touch them", n, err)
	}
}

// TestOutlookInitialState: none of these series exists before its event.
func TestOutlookInitialState(t *testing.T) {
	_, reg := newMetrics(t)
	if n, err := testutil.GatherAndCount(reg, outlookNames...); err != nil || n != 0 {
		t.Fatalf("%d series before anything happened (%v)", n, err)
	}
}
