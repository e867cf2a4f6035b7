package modes

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jonboulle/clockwork"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source/kv"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// fixedFetcher answers every read with the same secret (a unit-test stand-in
// for the Vault client; the package's other tests use the real server).
type fixedFetcher struct{ reads atomic.Int64 }

func (f *fixedFetcher) Read(context.Context, vault.ReadRequest) (*vault.Secret, error) {
	f.reads.Add(1)
	return &vault.Secret{Data: map[string]any{"v": "x"}, Version: 1, KVVersion: 2}, nil
}

// driveRun runs one scheduled run of job on the fake clock, advancing the
// clock a second at a time whenever the run waits, and returns how much
// fake time the run took.
func driveRun(t *testing.T, d *Daemon, clock *clockwork.FakeClock, job *jobs.Job, rs *runState) time.Duration {
	t.Helper()
	start := clock.Now()
	done := make(chan struct{})
	go func() { defer close(done); d.run(t.Context(), job, rs) }()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { <-done; cancel() }()
	for clock.BlockUntilContext(ctx, 1) == nil {
		clock.Advance(time.Second)
	}
	<-done
	return clock.Since(start)
}

func testSecret(dir, name string, interval time.Duration) config.Secret {
	return config.Secret{
		Name: name, Mount: "secret", Path: name, KVVersion: "2", Key: "v",
		Destination: filepath.Join(dir, name), RefreshInterval: config.NewDuration(interval),
		Mode: config.NewFileMode(0o600), DirMode: config.NewFileMode(0o755),
	}
}

// TestEarlyRunSkipped: a run that comes within half an interval of the
// last success (gocron's occasional double start) does not read Vault.
func TestEarlyRunSkipped(t *testing.T) {
	f := &fixedFetcher{}
	log := zap.NewNop()
	clock := clockwork.NewFakeClock()
	syncer := jobs.NewSyncer(kv.New(f), log, jobs.SyncerOptions{})
	sec := testSecret(t.TempDir(), "s", time.Minute)
	d, err := NewDaemon(&config.Config{Secrets: []config.Secret{sec}}, syncer, log, DaemonSettings{Clock: clock}, DaemonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := syncer.NewJob(sec)
	if err != nil {
		t.Fatal(err)
	}
	rs := &runState{}
	rs.phased.Store(true) // a regular run: its tail is at most 12s of the minute
	took := driveRun(t, d, clock, job, rs)
	driveRun(t, d, clock, job, rs)
	if n := f.reads.Load(); n != 1 {
		t.Fatalf("%d reads for two runs %s apart, want 1", n, took)
	}
	clock.Advance(30*time.Second - took) // half the interval after the success
	driveRun(t, d, clock, job, rs)
	if n := f.reads.Load(); n != 2 {
		t.Fatalf("a run half an interval later did not read (%d reads)", n)
	}
}

// TestFirstRunSpreadsTheRefreshes: secrets that start together are read at
// once (readiness), and their first run then ends after a random part of a
// whole interval, so their refreshes spread over it instead of coming
// together one interval (+-10%) later; later runs end within the jitter.
func TestFirstRunSpreadsTheRefreshes(t *testing.T) {
	const n, interval = 20, 100 * time.Second
	f := &fixedFetcher{}
	log := zap.NewNop()
	clock := clockwork.NewFakeClock()
	syncer := jobs.NewSyncer(kv.New(f), log, jobs.SyncerOptions{})
	d, err := NewDaemon(&config.Config{}, syncer, log, DaemonSettings{Clock: clock}, DaemonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var first, later []time.Duration
	dir := t.TempDir()
	for i := range n {
		job, err := syncer.NewJob(testSecret(dir, fmt.Sprintf("s%02d", i), interval))
		if err != nil {
			t.Fatal(err)
		}
		rs := &runState{}
		before := f.reads.Load()
		first = append(first, driveRun(t, d, clock, job, rs))
		if f.reads.Load() != before+1 {
			t.Fatal("the first run did not read at once")
		}
		clock.Advance(interval)
		later = append(later, driveRun(t, d, clock, job, rs))
	}
	span := slices.Max(first) - slices.Min(first)
	t.Logf("first runs ended %s..%s after their read; later runs within %s", slices.Min(first), slices.Max(first), slices.Max(later))
	// Without the spread every first run ends within the jitter's 20s.
	if span < interval/2 {
		t.Fatalf("first runs' tails span only %s of a %s interval: not spread", span, interval)
	}
	if m := slices.Max(later); m > 21*time.Second {
		t.Fatalf("a regular run's tail took %s, beyond the 20s jitter window", m)
	}
}

// slowFetcher records the most reads in flight at once.
type slowFetcher struct {
	mu            sync.Mutex
	inFlight, max int
}

func (f *slowFetcher) Read(context.Context, vault.ReadRequest) (*vault.Secret, error) {
	f.mu.Lock()
	f.inFlight++
	f.max = max(f.max, f.inFlight)
	f.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
	return &vault.Secret{Data: map[string]any{"v": "x"}, Version: 1, KVVersion: 2}, nil
}

// TestStartupSyncsBounded: start-up reads at most maxConcurrentSyncs
// secrets at a time, not every secret at once.
func TestStartupSyncsBounded(t *testing.T) {
	const n = 4 * maxConcurrentSyncs
	f := &slowFetcher{}
	log := zap.NewNop()
	cfg := &config.Config{}
	dir := t.TempDir()
	for i := range n {
		cfg.Secrets = append(cfg.Secrets, config.Secret{
			Name: fmt.Sprintf("s%02d", i), Mount: "secret", Path: fmt.Sprintf("p%02d", i), KVVersion: "2", Key: "v",
			Destination: filepath.Join(dir, fmt.Sprintf("s%02d", i)), RefreshInterval: config.NewDuration(time.Hour),
			Mode: config.NewFileMode(0o600), DirMode: config.NewFileMode(0o755),
		})
	}
	d, err := NewDaemon(cfg, jobs.NewSyncer(kv.New(f), log, jobs.SyncerOptions{}), log, DaemonSettings{}, DaemonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		synced := 0
		for _, j := range d.Jobs() {
			if !j.State().LastSuccess.IsZero() {
				synced++
			}
		}
		if synced == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d secrets synced after 10s", synced, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t.Logf("at most %d of %d reads in flight at once", f.max, n)
	if f.max > maxConcurrentSyncs || f.max < 2 {
		t.Fatalf("%d reads in flight at once, want 2..%d", f.max, maxConcurrentSyncs)
	}
}

// signallingFetcher names each read's path on a channel.
type signallingFetcher struct{ reads chan string }

func (f *signallingFetcher) Read(_ context.Context, req vault.ReadRequest) (*vault.Secret, error) {
	f.reads <- req.Path
	return &vault.Secret{Data: map[string]any{"v": "x"}, Version: 1, KVVersion: 2}, nil
}

// TestWokenSecretSyncsAtOnce: a secret its source wakes (a lease
// replaced) is read again at once, though its last success was a moment
// ago and its refresh is an hour away; the others are not.
func TestWokenSecretSyncsAtOnce(t *testing.T) {
	f := &signallingFetcher{reads: make(chan string, 10)}
	log := zap.NewNop()
	clock := clockwork.NewFakeClock()
	syncer := jobs.NewSyncer(kv.New(f), log, jobs.SyncerOptions{})
	dir := t.TempDir()
	a, b := testSecret(dir, "a", time.Hour), testSecret(dir, "b", time.Hour)
	wake := source.NewWake()
	d, err := NewDaemon(&config.Config{Secrets: []config.Secret{a, b}}, syncer, log, DaemonSettings{Clock: clock}, DaemonOptions{Wake: wake})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	read := func() string {
		t.Helper()
		select {
		case p := <-f.reads:
			return p
		case <-time.After(time.Minute):
			t.Fatal("no read within a minute of real time")
			return ""
		}
	}
	first := []string{read(), read()}
	slices.Sort(first)
	if !slices.Equal(first, []string{"a", "b"}) {
		t.Fatalf("first runs read %v", first)
	}
	// Both jobs are in their first run's tail now (waiting on the clock).
	if err := clock.BlockUntilContext(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	wake.Wake("a")
	if p := read(); p != "a" {
		t.Fatalf("after waking a, %s was read", p)
	}
	// a's run has ended (gocron waits an hour for the next one): a wake
	// now runs the job through gocron at once, too soon or not.
	for {
		d.mu.Lock()
		busy := d.entries["a"].rs.busy.Load()
		d.mu.Unlock()
		if !busy {
			break
		}
		runtime.Gosched()
	}
	wake.Wake("a")
	if p := read(); p != "a" {
		t.Fatalf("after waking a again, %s was read", p)
	}
	select {
	case p := <-f.reads:
		t.Fatalf("an extra read of %s", p)
	default:
	}
}
