package modes_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/modes"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source/kv"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

var seq atomic.Int64

// uniq is a per-test prefix so tests can share one Vault server.
func uniq(t testing.TB) string {
	return fmt.Sprintf("t%d-%s", seq.Add(1), strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
}

func newLogger(t testing.TB) (*zap.Logger, *logtest.Buffer) { return logtest.New(t) }

// world is one sidecar under test: real Vault client, breaker, metrics,
// status tracker and renderer.
type world struct {
	srv     *vaulttest.Server
	client  *vault.Client
	breaker *breaker.Breaker
	metrics *metrics.Metrics
	reg     *prometheus.Registry
	status  *status.Tracker
	syncer  *jobs.Syncer
	log     *zap.Logger
	logs    *logtest.Buffer
	dir     string
	states  *stateLog
}

// stateLog records breaker states in order.
type stateLog struct {
	mu     sync.Mutex
	states []int
	next   breaker.StateObserver
}

func (s *stateLog) BreakerState(state breaker.State) {
	s.mu.Lock()
	s.states = append(s.states, int(state))
	s.mu.Unlock()
	s.next.BreakerState(state)
}

func (s *stateLog) seen() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.states...)
}

func newWorld(t testing.TB, srv *vaulttest.Server, bs breaker.Settings) *world {
	t.Helper()
	w := &world{srv: srv, dir: t.TempDir()}
	w.log, w.logs = newLogger(t)
	var err error
	w.metrics, w.reg, err = metrics.New(buildinfo.Info{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if bs.MaxFailures == 0 {
		bs = breaker.Settings{MaxFailures: 5, OpenTimeout: 30 * time.Second, Interval: time.Minute}
	}
	w.states = &stateLog{next: w.metrics}
	w.breaker = breaker.NewBreaker(bs, w.log, w.states)
	w.client, err = vault.NewClient(vault.Settings{
		Vault: config.Vault{Address: srv.Addr, Timeout: config.NewDuration(5 * time.Second)},
		LookupEnv: func(k string) (string, bool) {
			if k == "VAULT_TOKEN" {
				return srv.Token, true
			}
			return "", false
		},
	}, vault.Options{Logger: w.log.Named("vault"), Breaker: w.breaker})
	if err != nil {
		t.Fatal(err)
	}
	w.status = status.NewTracker(filepath.Join(w.dir, "status", "status.json"), w.log.Named("status"), w.metrics, nil)
	w.syncer = jobs.NewSyncer(kv.New(w.client), w.log.Named("sync"), jobs.SyncerOptions{Recorder: w.metrics, Status: w.status})
	return w
}

// loadConfig writes text to dir/config.yaml and loads it the way the
// sidecar does (templates parsed by the renderer).
func loadConfig(t testing.TB, dir, text string) *config.Config {
	t.Helper()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := (&config.Loader{Templates: render.NewSet()}).Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func (w *world) daemon(t testing.TB, cfg *config.Config) *modes.Daemon {
	t.Helper()
	return w.daemonOn(t, cfg, nil)
}

// daemonOn is daemon with its schedule, backoffs and waits on clock.
func (w *world) daemonOn(t testing.TB, cfg *config.Config, clock clockwork.Clock) *modes.Daemon {
	t.Helper()
	d, err := modes.NewDaemon(cfg, w.syncer, w.log.Named("jobs"), modes.DaemonSettings{ShutdownTimeout: 5 * time.Second, Clock: clock},
		modes.DaemonOptions{Status: w.status, Recorder: w.metrics})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}

// eventually polls cond every 50 ms until it holds or the bound passes;
// the bound is a failure guard, not a performance assertion.
func eventually(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", bound, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ticking is eventually on a fake clock: each poll that finds cond false
// moves the clock on by step, so scheduled refreshes and retry backoffs
// come as fast as the sidecar handles them.
func ticking(t testing.TB, clock *clockwork.FakeClock, step, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	eventually(t, bound, what, func() bool {
		if cond() {
			return true
		}
		clock.Advance(step)
		return false
	})
}

func fileIs(path, want string) func() bool {
	return func() bool {
		got, err := os.ReadFile(path)
		return err == nil && string(got) == want
	}
}

// counter reads one counter or gauge sample from the registry.
func counter(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue metric
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

// countingFetcher counts Vault reads and can slow them down.
type countingFetcher struct {
	next  kv.Reader
	reads atomic.Int64
	delay atomic.Int64 // nanoseconds
}

func (c *countingFetcher) Read(ctx context.Context, req vault.ReadRequest) (*vault.Secret, error) {
	c.reads.Add(1)
	if d := time.Duration(c.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.next.Read(ctx, req)
}
