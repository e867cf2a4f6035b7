//go:build soak

// Soak (`make test-soak`): the whole daemon in-process, 1,000 secrets at
// a 1 s refresh for 60 s against the real dev server, with a writer
// changing secrets all along. Goroutines, heap and file descriptors must
// stay flat while it runs and return to the baseline after it stops.
package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/goleak"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// soakResult is what one run of the daemon measured.
type soakResult struct {
	samples    []soakSample
	soakStart  time.Time
	readyAfter time.Duration
	stopTook   time.Duration
	changes    int
}

// soakRun starts the whole daemon in-process, waits until every file is
// written, lets change(v, rng) modify Vault 20 times a second for soak
// while sampling every 5 s, and stops the daemon. Nothing of the app is
// reachable once it returns, so the caller's heap can go back to its
// baseline.
func soakRun(t *testing.T, cfgPath, statusFile string, soak time.Duration, change func(v int, rng *rand.Rand) error) soakResult {
	t.Helper()
	env, err := config.ParseEnv([]string{
		"SIDECAR_HTTP_ADDR=127.0.0.1:0", "SIDECAR_STATUS_FILE=" + statusFile, "SIDECAR_SHUTDOWN_TIMEOUT=10s",
	})
	if err != nil {
		t.Fatal(err)
	}
	var res soakResult
	var reg *prometheus.Registry
	app := fx.New(append(runOptions(globals{configPath: cfgPath, stdout: io.Discard, stderr: io.Discard}, env),
		fx.Populate(&reg))...)
	startCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	if err := app.Start(startCtx); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = app.Stop(context.Background())
		}
	}()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if snap, err := status.ReadFile(statusFile); err == nil && snap.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not every file written after 2m")
		}
	}
	res.readyAfter = time.Since(began)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, 2))
		for v := 1; ; v++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if err := change(v, rng); err != nil {
				t.Error(err)
				return
			}
			res.changes++
		}
	}()
	res.soakStart = time.Now()
	for time.Since(res.soakStart) < soak {
		time.Sleep(5 * time.Second)
		res.samples = append(res.samples, takeSample(t, res.soakStart, reg))
	}
	close(stop)
	wg.Wait()

	stopStart := time.Now()
	if err := app.Stop(context.Background()); err != nil {
		t.Errorf("stop: %v", err)
	}
	stopped = true
	res.stopTook = time.Since(stopStart)
	return res
}

// soakSample is the process's state at one moment.
type soakSample struct {
	at         time.Duration
	goroutines int
	heapAlloc  uint64 // live heap objects after a forced GC
	heapInuse  uint64 // heap spans in use (live objects plus fragmentation)
	fds        int
	fetches    float64 // secrets_sidecar_fetch_total, all results
}

func takeSample(t *testing.T, since time.Time, reg *prometheus.Registry) soakSample {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := soakSample{at: time.Since(since).Round(time.Second), goroutines: runtime.NumGoroutine(), heapAlloc: ms.HeapAlloc, heapInuse: ms.HeapInuse, fds: openFDs(t)}
	if reg != nil {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "secrets_sidecar_fetch_total" {
				for _, m := range mf.GetMetric() {
					s.fetches += m.GetCounter().GetValue()
				}
			}
		}
	}
	return s
}

func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries) - 1 // the directory being read
}

func mibOf(b uint64) float64 { return float64(b) / (1 << 20) }

func TestSoak(t *testing.T) {
	const secrets, refresh, soak = 1000, time.Second, 60 * time.Second
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	p := prefix(t)

	// The writer's own client, so its idle connections can be closed
	// before the final count.
	vcfg := api.DefaultConfig()
	vcfg.Address = srv.Addr
	client, err := api.NewClient(vcfg)
	if err != nil {
		t.Fatal(err)
	}
	client.SetToken(srv.Token)
	closeIdle := func() {
		if tr, ok := vcfg.HttpClient.Transport.(*http.Transport); ok {
			tr.CloseIdleConnections()
		}
	}
	put := func(i, v int) error {
		_, err := client.KVv2("secret").Put(t.Context(), fmt.Sprintf("%s/s%04d", p, i), map[string]any{
			"user": fmt.Sprintf("user%d", i), "pass": fmt.Sprintf("pass-%d-%d", i, v), "host": "db.internal", "port": "5432", "db": "app",
		})
		return err
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := put(i, 0); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "vault: {address: %s}\ndefaults: {refresh_interval: %s}\nsecrets:\n", srv.Addr, refresh)
	for i := 0; i < secrets; i++ {
		next <- i
		fmt.Fprintf(&cfg, "  - {name: s%04d, path: %s/s%04d, destination: %s/s%04d.env, template: \"USER={{ .user }}\\nPASS={{ .pass }}\\nHOST={{ .host }}\\nPORT={{ .port }}\\nDB={{ .db }}\\n\"}\n", i, p, i, out, i)
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	cfgPath := writeConfig(t, dir, cfg.String())
	t.Setenv("VAULT_TOKEN", srv.Token)
	statusFile := filepath.Join(dir, "status", "status.json")

	// Baseline: everything this test holds before the daemon exists.
	closeIdle()
	keep := goleak.IgnoreCurrent()
	base := takeSample(t, time.Now(), nil)

	run := soakRun(t, cfgPath, statusFile, soak, func(v int, rng *rand.Rand) error { return put(rng.IntN(secrets), v) })
	closeIdle()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	samples := run.samples

	var table strings.Builder
	fmt.Fprintf(&table, "\n| at | goroutines | live heap MiB | heap in use MiB | open fds | fetches/s |\n| ---: | ---: | ---: | ---: | ---: | ---: |\n")
	fmt.Fprintf(&table, "| baseline | %d | %.1f | %.1f | %d | |\n", base.goroutines, mibOf(base.heapAlloc), mibOf(base.heapInuse), base.fds)
	for i, s := range samples {
		rate := 0.0
		if i > 0 {
			rate = (s.fetches - samples[i-1].fetches) / (s.at - samples[i-1].at).Seconds()
		}
		fmt.Fprintf(&table, "| %s | %d | %.1f | %.1f | %d | %.0f |\n", s.at, s.goroutines, mibOf(s.heapAlloc), mibOf(s.heapInuse), s.fds, rate)
	}

	// Goroutines: none of the daemon's left (goleak retries while they
	// wind down).
	if err := goleak.Find(keep); err != nil {
		t.Errorf("goroutines left after stop: %v", err)
	}
	after := takeSample(t, run.soakStart, nil)
	fmt.Fprintf(&table, "| after stop | %d | %.1f | %.1f | %d | |\n", after.goroutines, mibOf(after.heapAlloc), mibOf(after.heapInuse), after.fds)
	last := samples[len(samples)-1]
	total := (last.fetches - samples[0].fetches) / (last.at - samples[0].at).Seconds()
	t.Logf("1,000 secrets, 1 s refresh, %s: ready after %s; %d changes written by the writer; %.0f fetches/s in steady state; stop took %s%s",
		soak, run.readyAfter.Round(100*time.Millisecond), run.changes, total, run.stopTook.Round(10*time.Millisecond), table.String())

	// While running: flat. Each sample also counts what is in flight at
	// that moment (a temp file, a connection, a goroutine per running
	// sync), so compare the least of the last third with the most of the
	// first third: a leak of one goroutine, one fd or 100 bytes per sync
	// would add 40,000 goroutines, fds or 4 MB between them.
	third := len(samples) / 3
	early, late := samples[1:1+third], samples[len(samples)-third:] // samples[0] may still hold the start-up burst
	peak := func(ss []soakSample, f func(soakSample) uint64) uint64 {
		var m uint64
		for _, s := range ss {
			m = max(m, f(s))
		}
		return m
	}
	least := func(ss []soakSample, f func(soakSample) uint64) uint64 {
		m := ^uint64(0)
		for _, s := range ss {
			m = min(m, f(s))
		}
		return m
	}
	for _, c := range []struct {
		what  string
		f     func(soakSample) uint64
		slack uint64
	}{
		{"goroutines", func(s soakSample) uint64 { return uint64(s.goroutines) }, 50},
		{"open fds", func(s soakSample) uint64 { return uint64(s.fds) }, 10},
		{"live heap (bytes)", func(s soakSample) uint64 { return s.heapAlloc }, peak(early, func(s soakSample) uint64 { return s.heapAlloc })/4 + 4<<20},
	} {
		if lo, hi := least(late, c.f), peak(early, c.f); lo > hi+c.slack {
			t.Errorf("%s grew while running: at least %d in the last third, at most %d in the first", c.what, lo, hi)
		}
	}
	// After stop: back to the baseline.
	if after.fds > base.fds {
		t.Errorf("open fds: %d after stop, %d before start", after.fds, base.fds)
	}
	if after.heapAlloc > base.heapAlloc+(4<<20) {
		t.Errorf("live heap: %.1f MiB after stop, %.1f MiB before start", mibOf(after.heapAlloc), mibOf(base.heapAlloc))
	}
}
