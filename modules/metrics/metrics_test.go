package metrics_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

var info = buildinfo.Info{Version: "v1.2.3", Commit: "abc123", GoVersion: "go1.26.8"}

var ours = []string{
	"secrets_sidecar_fetch_total",
	"secrets_sidecar_errors_total",
	"secrets_sidecar_fetch_duration_seconds",
	"secrets_sidecar_breaker_state",
	"secrets_sidecar_last_success_timestamp_seconds",
	"secrets_sidecar_file_writes_total",
	"secrets_sidecar_config_reloads_total",
	"secrets_sidecar_ready",
	"secrets_sidecar_token_expiry_timestamp_seconds",
	"secrets_sidecar_actions_total",
	"secrets_sidecar_action_duration_seconds",
	"secrets_sidecar_build_info",
}

func newMetrics(t *testing.T) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	m, reg, err := metrics.New(info)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// script is a scripted sequence of events from two secrets, a breaker
// cycle, a reload and a token.
func script(m *metrics.Metrics) {
	m.Init("db", "secret/myapp/db")
	m.FetchDone("db", "secret/myapp/db", "success", 30*time.Millisecond)
	m.FetchDone("db", "secret/myapp/db", "success", 200*time.Millisecond)
	m.FetchDone("db", "secret/myapp/db", "error", 3*time.Second)
	m.Error("db", "secret/myapp/db", "fetch")
	m.FileWritten("db")
	m.LastSuccess("db", time.Unix(1700000000, 500_000_000))
	m.FetchDone("tls", "secret/myapp/tls", "bogus-result", 7*time.Millisecond)
	m.Error("tls", "secret/myapp/tls", "render")
	m.Error("tls", "secret/myapp/tls", "render")
	m.Error("tls", "kv/legacy", "auth")
	m.BreakerState(breaker.Open)
	m.BreakerState(breaker.HalfOpen)
	m.ConfigReload("success")
	m.ConfigReload("error")
	m.ConfigReload("success")
	m.Ready(true)
	m.TokenExpiry(time.Unix(1700003600, 0))
	m.ActionDone("signal", "success", 2*time.Millisecond)
	m.ActionDone("http", "error", 7*time.Second)
	m.ActionDone("restart", "success", 3*time.Second)
}

const golden = `
# HELP secrets_sidecar_action_duration_seconds Time taken by a change action run, all attempts included.
# TYPE secrets_sidecar_action_duration_seconds histogram
secrets_sidecar_action_duration_seconds_bucket{kind="http",le="0.001"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="http",le="0.01"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="http",le="0.05"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="http",le="0.1"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="http",le="0.5"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="http",le="1"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="http",le="2.5"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="http",le="5"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="http",le="10"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="http",le="30"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="http",le="60"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="http",le="+Inf"} 1
secrets_sidecar_action_duration_seconds_sum{kind="http"} 7
secrets_sidecar_action_duration_seconds_count{kind="http"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="restart",le="0.001"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="restart",le="0.01"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="restart",le="0.05"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="restart",le="0.1"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="restart",le="0.5"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="restart",le="1"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="restart",le="2.5"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="restart",le="5"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="restart",le="10"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="restart",le="30"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="restart",le="60"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="restart",le="+Inf"} 1
secrets_sidecar_action_duration_seconds_sum{kind="restart"} 3
secrets_sidecar_action_duration_seconds_count{kind="restart"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="signal",le="0.001"} 0
secrets_sidecar_action_duration_seconds_bucket{kind="signal",le="0.01"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="signal",le="0.05"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="signal",le="0.1"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="signal",le="0.5"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="signal",le="1"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="signal",le="2.5"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="signal",le="5"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="signal",le="10"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="signal",le="30"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="signal",le="60"} 1
secrets_sidecar_action_duration_seconds_bucket{kind="signal",le="+Inf"} 1
secrets_sidecar_action_duration_seconds_sum{kind="signal"} 0.002
secrets_sidecar_action_duration_seconds_count{kind="signal"} 1
# HELP secrets_sidecar_actions_total Change action runs (signal, exec, http, or the supervisor's restart and signal) by result (success or error), retries included in one run.
# TYPE secrets_sidecar_actions_total counter
secrets_sidecar_actions_total{kind="exec",result="error"} 0
secrets_sidecar_actions_total{kind="exec",result="success"} 0
secrets_sidecar_actions_total{kind="http",result="error"} 1
secrets_sidecar_actions_total{kind="http",result="success"} 0
secrets_sidecar_actions_total{kind="restart",result="success"} 1
secrets_sidecar_actions_total{kind="signal",result="error"} 0
secrets_sidecar_actions_total{kind="signal",result="success"} 1
# HELP secrets_sidecar_breaker_state Vault circuit breaker state: 0 closed, 1 half-open, 2 open.
# TYPE secrets_sidecar_breaker_state gauge
secrets_sidecar_breaker_state 1
# HELP secrets_sidecar_build_info Always 1; labelled with the version, commit and Go version of the binary.
# TYPE secrets_sidecar_build_info gauge
secrets_sidecar_build_info{commit="abc123",goversion="go1.26.8",version="v1.2.3"} 1
# HELP secrets_sidecar_config_reloads_total Config reloads by result (success or error).
# TYPE secrets_sidecar_config_reloads_total counter
secrets_sidecar_config_reloads_total{result="error"} 1
secrets_sidecar_config_reloads_total{result="success"} 2
# HELP secrets_sidecar_errors_total Sync failures by stage (auth, fetch, render, write).
# TYPE secrets_sidecar_errors_total counter
secrets_sidecar_errors_total{secret_name="db",stage="auth",vault_path="secret/myapp/db"} 0
secrets_sidecar_errors_total{secret_name="db",stage="fetch",vault_path="secret/myapp/db"} 1
secrets_sidecar_errors_total{secret_name="db",stage="render",vault_path="secret/myapp/db"} 0
secrets_sidecar_errors_total{secret_name="db",stage="write",vault_path="secret/myapp/db"} 0
secrets_sidecar_errors_total{secret_name="tls",stage="auth",vault_path="kv/legacy"} 1
secrets_sidecar_errors_total{secret_name="tls",stage="render",vault_path="secret/myapp/tls"} 2
# HELP secrets_sidecar_fetch_duration_seconds Time taken to read a secret from Vault, successful or not, over every secret.
# TYPE secrets_sidecar_fetch_duration_seconds histogram
secrets_sidecar_fetch_duration_seconds_bucket{le="0.005"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="0.01"} 1
secrets_sidecar_fetch_duration_seconds_bucket{le="0.025"} 1
secrets_sidecar_fetch_duration_seconds_bucket{le="0.05"} 2
secrets_sidecar_fetch_duration_seconds_bucket{le="0.1"} 2
secrets_sidecar_fetch_duration_seconds_bucket{le="0.25"} 3
secrets_sidecar_fetch_duration_seconds_bucket{le="0.5"} 3
secrets_sidecar_fetch_duration_seconds_bucket{le="1"} 3
secrets_sidecar_fetch_duration_seconds_bucket{le="2.5"} 3
secrets_sidecar_fetch_duration_seconds_bucket{le="5"} 4
secrets_sidecar_fetch_duration_seconds_bucket{le="10"} 4
secrets_sidecar_fetch_duration_seconds_bucket{le="30"} 4
secrets_sidecar_fetch_duration_seconds_bucket{le="+Inf"} 4
secrets_sidecar_fetch_duration_seconds_sum 3.237
secrets_sidecar_fetch_duration_seconds_count 4
# HELP secrets_sidecar_fetch_total Secret fetches from Vault by result (success or error).
# TYPE secrets_sidecar_fetch_total counter
secrets_sidecar_fetch_total{result="error",secret_name="db",vault_path="secret/myapp/db"} 1
secrets_sidecar_fetch_total{result="success",secret_name="db",vault_path="secret/myapp/db"} 2
secrets_sidecar_fetch_total{result="error",secret_name="tls",vault_path="secret/myapp/tls"} 1
# HELP secrets_sidecar_file_writes_total Destination files written because their content, mode or owner changed.
# TYPE secrets_sidecar_file_writes_total counter
secrets_sidecar_file_writes_total{secret_name="db"} 1
# HELP secrets_sidecar_last_success_timestamp_seconds Unix time of the last successful sync of a secret (file written or confirmed up to date).
# TYPE secrets_sidecar_last_success_timestamp_seconds gauge
secrets_sidecar_last_success_timestamp_seconds{secret_name="db"} 1.7000000005e+09
# HELP secrets_sidecar_ready 1 when every configured secret has been written since start or reload, else 0.
# TYPE secrets_sidecar_ready gauge
secrets_sidecar_ready 1
# HELP secrets_sidecar_token_expiry_timestamp_seconds Unix time the current Vault token expires; 0 when unknown or it never expires.
# TYPE secrets_sidecar_token_expiry_timestamp_seconds gauge
secrets_sidecar_token_expiry_timestamp_seconds 1.7000036e+09
`

func TestGolden(t *testing.T) {
	m, reg := newMetrics(t)
	script(m)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(golden), ours...); err != nil {
		t.Fatal(err)
	}
}

// TestInitialState: before anything happens every gauge reads 0 (not
// ready, breaker closed, no token), both reload results exist at 0, and
// build_info is set.
func TestInitialState(t *testing.T) {
	_, reg := newMetrics(t)
	want := `
# HELP secrets_sidecar_actions_total Change action runs (signal, exec, http, or the supervisor's restart and signal) by result (success or error), retries included in one run.
# TYPE secrets_sidecar_actions_total counter
secrets_sidecar_actions_total{kind="exec",result="error"} 0
secrets_sidecar_actions_total{kind="exec",result="success"} 0
secrets_sidecar_actions_total{kind="http",result="error"} 0
secrets_sidecar_actions_total{kind="http",result="success"} 0
secrets_sidecar_actions_total{kind="signal",result="error"} 0
secrets_sidecar_actions_total{kind="signal",result="success"} 0
# HELP secrets_sidecar_breaker_state Vault circuit breaker state: 0 closed, 1 half-open, 2 open.
# TYPE secrets_sidecar_breaker_state gauge
secrets_sidecar_breaker_state 0
# HELP secrets_sidecar_build_info Always 1; labelled with the version, commit and Go version of the binary.
# TYPE secrets_sidecar_build_info gauge
secrets_sidecar_build_info{commit="abc123",goversion="go1.26.8",version="v1.2.3"} 1
# HELP secrets_sidecar_config_reloads_total Config reloads by result (success or error).
# TYPE secrets_sidecar_config_reloads_total counter
secrets_sidecar_config_reloads_total{result="error"} 0
secrets_sidecar_config_reloads_total{result="success"} 0
# HELP secrets_sidecar_fetch_duration_seconds Time taken to read a secret from Vault, successful or not, over every secret.
# TYPE secrets_sidecar_fetch_duration_seconds histogram
secrets_sidecar_fetch_duration_seconds_bucket{le="0.005"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="0.01"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="0.025"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="0.05"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="0.1"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="0.25"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="0.5"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="1"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="2.5"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="5"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="10"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="30"} 0
secrets_sidecar_fetch_duration_seconds_bucket{le="+Inf"} 0
secrets_sidecar_fetch_duration_seconds_sum 0
secrets_sidecar_fetch_duration_seconds_count 0
# HELP secrets_sidecar_ready 1 when every configured secret has been written since start or reload, else 0.
# TYPE secrets_sidecar_ready gauge
secrets_sidecar_ready 0
# HELP secrets_sidecar_token_expiry_timestamp_seconds Unix time the current Vault token expires; 0 when unknown or it never expires.
# TYPE secrets_sidecar_token_expiry_timestamp_seconds gauge
secrets_sidecar_token_expiry_timestamp_seconds 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), ours...); err != nil {
		t.Fatal(err)
	}
}

func TestGaugesGoBack(t *testing.T) {
	m, reg := newMetrics(t)
	m.Ready(true)
	m.Ready(false)
	m.BreakerState(breaker.Open)
	m.BreakerState(breaker.Closed)
	m.TokenExpiry(time.Unix(100, 0))
	m.TokenExpiry(time.Time{})
	want := `
# HELP secrets_sidecar_breaker_state Vault circuit breaker state: 0 closed, 1 half-open, 2 open.
# TYPE secrets_sidecar_breaker_state gauge
secrets_sidecar_breaker_state 0
# HELP secrets_sidecar_ready 1 when every configured secret has been written since start or reload, else 0.
# TYPE secrets_sidecar_ready gauge
secrets_sidecar_ready 0
# HELP secrets_sidecar_token_expiry_timestamp_seconds Unix time the current Vault token expires; 0 when unknown or it never expires.
# TYPE secrets_sidecar_token_expiry_timestamp_seconds gauge
secrets_sidecar_token_expiry_timestamp_seconds 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"secrets_sidecar_breaker_state", "secrets_sidecar_ready", "secrets_sidecar_token_expiry_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
}

// TestForget: a secret removed by a reload leaves no series behind, and
// the other secrets' series stay.
func TestForget(t *testing.T) {
	m, reg := newMetrics(t)
	script(m)
	m.Forget("db", "secret/myapp/db")
	m.Forget("tls", "kv/legacy") // tls moved away from kv/legacy
	for _, name := range ours {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, metric := range mf.GetMetric() {
				for _, l := range metric.GetLabel() {
					if (l.GetName() == "secret_name" && l.GetValue() == "db") ||
						(l.GetName() == "vault_path" && l.GetValue() == "kv/legacy") {
						t.Errorf("%s still has a series for %s=%s", name, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
	for name, want := range map[string]int{
		"secrets_sidecar_fetch_total":            1, // tls error
		"secrets_sidecar_errors_total":           1, // tls render on secret/myapp/tls
		"secrets_sidecar_fetch_duration_seconds": 1,
		"secrets_sidecar_file_writes_total":      0,
	} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != want {
			t.Errorf("%s: %d series (err %v), want %d", name, n, err, want)
		}
	}
}

// TestPrivateRegistry: nothing lands on the global registry, the Go and
// process collectors are on the private one, and two instances coexist
// (no duplicate-registration panic).
func TestPrivateRegistry(t *testing.T) {
	m, reg := newMetrics(t)
	m2, reg2 := newMetrics(t)
	script(m)
	script(m2)
	if reg == reg2 || reg == prometheus.DefaultRegisterer {
		t.Fatal("registries must be private and distinct")
	}
	global, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range global {
		if strings.HasPrefix(mf.GetName(), "secrets_sidecar_") {
			t.Errorf("%s is on the global registry", mf.GetName())
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, name := range append([]string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"}, ours...) {
		if !seen[name] {
			t.Errorf("%s missing from the private registry", name)
		}
	}
}

func TestLintClean(t *testing.T) {
	m, reg := newMetrics(t)
	script(m)
	problems, err := testutil.GatherAndLint(reg, ours...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestModule(t *testing.T) {
	var (
		m   *metrics.Metrics
		reg *prometheus.Registry
	)
	fxtest.New(t,
		fx.Supply(info),
		metrics.Module,
		fx.Populate(&m, &reg),
	).RequireStart().RequireStop()
	m.Ready(true)
	if n, err := testutil.GatherAndCount(reg, "secrets_sidecar_ready", "secrets_sidecar_build_info"); err != nil || n != 2 {
		t.Fatalf("module registry: %d series, %v", n, err)
	}
}
