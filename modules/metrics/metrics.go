// Package metrics holds the sidecar's Prometheus metrics on a private
// registry (never the global one), with the Go runtime and process
// collectors beside them. /metrics serves that registry.
//
// Labels are bounded by the config: secret names and Vault paths come from
// the config file, results and stages from fixed sets. No secret value and
// no error text is ever a label.
package metrics

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/fx"

	"github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo"
)

// Namespace prefixes every metric of the sidecar.
const Namespace = "secrets_sidecar"

// Result is the result label: the outcome of a fetch, a config reload or a
// change action.
type Result string

// Results of a fetch, a config reload or a change action.
const (
	ResultSuccess Result = "success"
	ResultError   Result = "error"
)

// Stage is a stage of a sync that can fail: the stage label of
// errors_total, and the stage in sync errors, logs and traces.
type Stage string

// Stages of a sync that can fail.
const (
	StageAuth   Stage = "auth"
	StageFetch  Stage = "fetch"
	StageRender Stage = "render"
	StageWrite  Stage = "write"
)

// BreakerState is the value of breaker_state: the circuit breaker's state.
// The breaker reports its state in these terms (breaker.State is this type).
type BreakerState int

// The breaker's states, as numbers of the breaker_state gauge.
const (
	BreakerClosed   BreakerState = 0
	BreakerHalfOpen BreakerState = 1
	BreakerOpen     BreakerState = 2
)

// String is the state's name (closed, half-open, open).
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// LoginResult is the result label of vault_logins_total: how a login ended.
type LoginResult string

// Results of a login: Vault refused the credentials (rejected), or the
// login failed for another reason (error: Vault unreachable, a 5xx).
const (
	LoginSuccess  LoginResult = "success"
	LoginError    LoginResult = "error"
	LoginRejected LoginResult = "rejected"
)

// Stages are every Stage, in pipeline order.
var Stages = []Stage{StageAuth, StageFetch, StageRender, StageWrite}

// FetchBuckets are the fetch_duration_seconds buckets: a Vault read on a
// local network takes a few milliseconds, a loaded or remote one hundreds,
// and a read that hits the client timeout tens of seconds.
var FetchBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// ActionBuckets are the action_duration_seconds buckets: a signal takes
// microseconds, a reload webhook milliseconds to seconds, a reload
// command up to its timeout (30 s by default).
var ActionBuckets = []float64{0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60}

// ActionKinds are the kind label's values known up front (a hook may add
// its own, such as the supervisor's restart).
var ActionKinds = []string{"signal", "exec", "http"}

// Module provides *Metrics and the *prometheus.Registry it lives on.
var Module = fx.Module("metrics", fx.Provide(New))

// Metrics records what the sidecar does. Its methods are safe for
// concurrent use.
type Metrics struct {
	series        *perSecret // the series labelled by secret
	fetchDuration prometheus.Histogram
	breakerState  prometheus.Gauge
	configReloads *prometheus.CounterVec
	ready         prometheus.Gauge
	tokenExpiry   prometheus.Gauge
	actions       *prometheus.CounterVec
	actionTime    *prometheus.HistogramVec
	buildInfo     *prometheus.GaugeVec
	*outlook
	*leases
}

// New creates the metrics on a new private registry together with the Go
// and process collectors, and sets build_info from info.
func New(info buildinfo.Info) (*Metrics, *prometheus.Registry, error) {
	m := &Metrics{
		series: newPerSecret(),
		// One histogram for every secret: a dozen buckets per secret were a
		// kilobyte and a half of memory each, for latencies that differ by
		// mount, not by secret (a secret's own syncs are in its traces).
		fetchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "fetch_duration_seconds",
			Help:    "Time taken to read a secret from Vault, successful or not, over every secret.",
			Buckets: FetchBuckets,
		}),
		breakerState: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "breaker_state",
			Help: "Vault circuit breaker state: 0 closed, 1 half-open, 2 open.",
		}),
		configReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "config_reloads_total",
			Help: "Config reloads by result (success or error).",
		}, []string{"result"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "ready",
			Help: "1 when every configured secret has been written since start or reload, else 0.",
		}),
		tokenExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "token_expiry_timestamp_seconds",
			Help: "Unix time the current Vault token expires; 0 when unknown or it never expires.",
		}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "actions_total",
			Help: "Change action runs (signal, exec, http, or the supervisor's restart and signal) by result (success or error), retries included in one run.",
		}, []string{"kind", "result"}),
		actionTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "action_duration_seconds",
			Help:    "Time taken by a change action run, all attempts included.",
			Buckets: ActionBuckets,
		}, []string{"kind"}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "build_info",
			Help: "Always 1; labelled with the version, commit and Go version of the binary.",
		}, []string{"version", "commit", "goversion"}),
		leases: newLeases(),
	}
	m.outlook = newOutlook(m.series)
	reg := prometheus.NewRegistry()
	for _, c := range append([]prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.series, m.fetchDuration, m.breakerState, m.configReloads, m.ready, m.tokenExpiry, m.actions, m.actionTime, m.buildInfo,
	}, append(m.outlook.collectors(), m.leases.collectors()...)...) {
		if err := reg.Register(c); err != nil {
			return nil, nil, err
		}
	}
	m.buildInfo.WithLabelValues(info.Version, info.Commit, info.GoVersion).Set(1)
	// Both results exist from the start, so rate() sees the first reload.
	m.configReloads.WithLabelValues(string(ResultSuccess))
	m.configReloads.WithLabelValues(string(ResultError))
	for _, k := range ActionKinds {
		m.actions.WithLabelValues(k, string(ResultSuccess))
		m.actions.WithLabelValues(k, string(ResultError))
	}
	return m, reg, nil
}

// result keeps the result label to its two values whatever the caller passes.
func result[R ~string](r R) string {
	if Result(r) == ResultSuccess {
		return string(ResultSuccess)
	}
	return string(ResultError)
}

// Init creates a secret's counters at zero (both fetch results, every error
// stage, file writes), so the first event of each is visible to rate().
// Optional: every other method creates the series it needs.
func (m *Metrics) Init(secret, vaultPath string) {
	m.series.init(secret, vaultPath)
}

// FetchDone records one read of a secret from Vault: its result (anything
// but ResultSuccess counts as ResultError) and how long it took.
func (m *Metrics) FetchDone(secret, vaultPath string, res Result, d time.Duration) {
	m.series.fetched(secret, vaultPath, res)
	m.fetchDuration.Observe(d.Seconds())
}

// Error counts a failed sync at a stage.
func (m *Metrics) Error(secret, vaultPath string, stage Stage) {
	m.series.failed(secret, vaultPath, stage)
}

// FileWritten counts a destination file written.
func (m *Metrics) FileWritten(secret string) {
	m.series.written(secret)
}

// LastSuccess records when a secret was last synced successfully.
func (m *Metrics) LastSuccess(secret string, t time.Time) {
	m.series.setGauge(secret, func(s *secretSeries) *gauge { return &s.lastSuccess }, unixSeconds(t), true)
}

// ConfigReload counts a config reload: ResultSuccess or ResultError.
func (m *Metrics) ConfigReload(res Result) {
	m.configReloads.WithLabelValues(result(res)).Inc()
}

// ActionDone records one change action run: its kind (signal, exec, http,
// or a hook's name), its result (anything but ResultSuccess counts as
// ResultError) and how long it took, retries included.
func (m *Metrics) ActionDone(kind string, res Result, d time.Duration) {
	m.actions.WithLabelValues(kind, result(res)).Inc()
	m.actionTime.WithLabelValues(kind).Observe(d.Seconds())
}

// Ready sets the ready gauge; it implements the status tracker's
// ReadyObserver.
func (m *Metrics) Ready(ready bool) {
	if ready {
		m.ready.Set(1)
		return
	}
	m.ready.Set(0)
}

// BreakerState exports the breaker state: 0 closed, 1 half-open, 2 open
// (the numbers of breaker.State); it implements breaker.StateObserver.
func (m *Metrics) BreakerState(state BreakerState) {
	m.breakerState.Set(float64(state))
}

// TokenExpiry exports when the current Vault token expires; the zero time
// (unknown, or a token that never expires) exports 0.
func (m *Metrics) TokenExpiry(t time.Time) {
	if t.IsZero() {
		m.tokenExpiry.Set(0)
		return
	}
	m.tokenExpiry.Set(unixSeconds(t))
}

// Forget drops the series of a secret that a config reload removed (or
// moved to another Vault path): every series labelled with this secret_name
// and vault_path, and every series labelled only with this secret_name.
func (m *Metrics) Forget(secret, vaultPath string) {
	m.series.forget(secret, vaultPath)
	m.expiry.DeletePartialMatch(prometheus.Labels{"secret_name": secret})
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
