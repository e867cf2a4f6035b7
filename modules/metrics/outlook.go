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
	series *perSecret // certificate expiry, refresh interval and version age
	logins *prometheus.CounterVec
}

func newOutlook(series *perSecret) *outlook {
	return &outlook{
		series: series,
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "vault_logins_total",
			Help: "Vault logins by auth method and result (success, error, or rejected: Vault refused the credentials).",
		}, []string{"method", "result"}),
	}
}

func (o *outlook) collectors() []prometheus.Collector {
	return []prometheus.Collector{o.logins}
}

// CertificateExpiry exports when the earliest certificate in a secret's
// file expires; the zero time (no certificate in the file) drops the series.
func (o *outlook) CertificateExpiry(secret string, t time.Time) {
	o.series.setGauge(secret, func(s *secretSeries) *gauge { return &s.cert }, unixSeconds(t), !t.IsZero())
}

// VersionCreated exports when the secret's KV v2 version was created; the
// zero time (KV v1) drops the series.
func (o *outlook) VersionCreated(secret string, t time.Time) {
	o.series.setGauge(secret, func(s *secretSeries) *gauge { return &s.version }, unixSeconds(t), !t.IsZero())
}

// RefreshInterval exports a secret's configured refresh interval.
func (o *outlook) RefreshInterval(secret string, d time.Duration) {
	o.series.setGauge(secret, func(s *secretSeries) *gauge { return &s.refresh }, d.Seconds(), true)
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

func setOrDelete(g *prometheus.GaugeVec, secret string, t time.Time) {
	if t.IsZero() {
		g.DeleteLabelValues(secret)
		return
	}
	g.WithLabelValues(secret).Set(unixSeconds(t))
}
