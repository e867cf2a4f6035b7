package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// outlook holds the metrics that tell what is about to break rather than
// what already did: certificate and token expiry, the refresh interval a
// secret's freshness is judged by, the age of the secret's version, and
// logins by result.
type outlook struct {
	certExpiry     *prometheus.GaugeVec
	refresh        *prometheus.GaugeVec
	versionCreated *prometheus.GaugeVec
	logins         *prometheus.CounterVec
}

func newOutlook() *outlook {
	return &outlook{
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "certificate_expiry_timestamp_seconds",
			Help: "Earliest NotAfter (Unix time) of the PEM CERTIFICATE blocks in a secret's written file; absent when it holds none.",
		}, []string{"secret_name"}),
		refresh: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "secret_refresh_interval_seconds",
			Help: "The configured refresh interval of a secret.",
		}, []string{"secret_name"}),
		versionCreated: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "secret_version_created_timestamp_seconds",
			Help: "Unix time the KV v2 version last read of a secret was created in Vault; absent for KV v1.",
		}, []string{"secret_name"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "vault_logins_total",
			Help: "Vault logins by auth method and result (success, error, or rejected: Vault refused the credentials).",
		}, []string{"method", "result"}),
	}
}

func (o *outlook) collectors() []prometheus.Collector {
	return []prometheus.Collector{o.certExpiry, o.refresh, o.versionCreated, o.logins}
}

// CertificateExpiry exports when the earliest certificate in a secret's
// file expires; the zero time (no certificate in the file) drops the series.
func (o *outlook) CertificateExpiry(secret string, t time.Time) {
	setOrDelete(o.certExpiry, secret, t)
}

// VersionCreated exports when the secret's KV v2 version was created; the
// zero time (KV v1) drops the series.
func (o *outlook) VersionCreated(secret string, t time.Time) {
	setOrDelete(o.versionCreated, secret, t)
}

// RefreshInterval exports a secret's configured refresh interval.
func (o *outlook) RefreshInterval(secret string, d time.Duration) {
	o.refresh.WithLabelValues(secret).Set(d.Seconds())
}

// LoginDone counts a login with an auth method: result is "success",
// "rejected" or "error" (anything else counts as "error"). A method's
// three results appear together at its first login, so rate() sees the
// first failure.
func (o *outlook) LoginDone(method string, res LoginResult) {
	for _, r := range []LoginResult{LoginSuccess, LoginError, LoginRejected} {
		o.logins.WithLabelValues(method, string(r))
	}
	if res != LoginRejected {
		res = LoginResult(result(res))
	}
	o.logins.WithLabelValues(method, string(res)).Inc()
}

func (o *outlook) forget(secret string) {
	name := prometheus.Labels{"secret_name": secret}
	o.certExpiry.DeletePartialMatch(name)
	o.refresh.DeletePartialMatch(name)
	o.versionCreated.DeletePartialMatch(name)
}

func setOrDelete(g *prometheus.GaugeVec, secret string, t time.Time) {
	if t.IsZero() {
		g.DeleteLabelValues(secret)
		return
	}
	g.WithLabelValues(secret).Set(unixSeconds(t))
}
