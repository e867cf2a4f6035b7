package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LeaseReasons are why a lease was minted: the reason label of
// leases_issued_total, all known up front.
var LeaseReasons = []string{"initial", "max_ttl", "not_renewable", "revoked", "token_end", "restart", "certificate", "expired"}

// leases holds the leased secrets' metrics.
type leases struct {
	expiry      *prometheus.GaugeVec
	issued      *prometheus.CounterVec
	renewals    *prometheus.CounterVec
	revocations *prometheus.CounterVec
	capped      *prometheus.CounterVec
}

func newLeases() *leases {
	l := &leases{
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "lease_expiry_timestamp_seconds",
			Help: "Unix time the lease behind a leased secret's file expires, as last granted.",
		}, []string{"secret_name"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "leases_issued_total",
			Help: "Leases minted, by reason (initial, max_ttl, not_renewable, revoked, token_end, restart, certificate, expired).",
		}, []string{"reason"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "lease_renewals_total",
			Help: "Lease renewals by result (success or error).",
		}, []string{"result"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "lease_revocations_total",
			Help: "Lease revocations on shutdown by result (success or error).",
		}, []string{"result"}),
		capped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "lease_cap_reached_total",
			Help: "New leases refused because the secret's request reached leases.max_new_leases within one lease period.",
		}, []string{"secret_name"}),
	}
	for _, r := range LeaseReasons {
		l.issued.WithLabelValues(r)
	}
	for _, r := range []Result{ResultSuccess, ResultError} {
		l.renewals.WithLabelValues(string(r))
		l.revocations.WithLabelValues(string(r))
	}
	return l
}

func (l *leases) collectors() []prometheus.Collector {
	return []prometheus.Collector{l.expiry, l.issued, l.renewals, l.revocations, l.capped}
}

// LeaseIssued counts a minted lease.
func (l *leases) LeaseIssued(reason string) { l.issued.WithLabelValues(reason).Inc() }

// LeaseRenewed counts a renewal.
func (l *leases) LeaseRenewed(res Result) { l.renewals.WithLabelValues(result(res)).Inc() }

// LeaseRevoked counts a revocation.
func (l *leases) LeaseRevoked(res Result) { l.revocations.WithLabelValues(result(res)).Inc() }

// LeaseCapReached counts a new lease refused by the cap, for one secret.
func (l *leases) LeaseCapReached(secret string) { l.capped.WithLabelValues(secret).Inc() }

// LeaseExpiry exports when a secret's lease expires; the zero time drops
// the series.
func (l *leases) LeaseExpiry(secret string, t time.Time) { setOrDelete(l.expiry, secret, t) }
