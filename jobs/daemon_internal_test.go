package jobs

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

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

// TestEarlyRunSkipped: a run that comes within half an interval of the
// last success (gocron's occasional double start) does not read Vault.
func TestEarlyRunSkipped(t *testing.T) {
	f := &fixedFetcher{}
	log := zap.NewNop()
	syncer := NewSyncer(f, log, SyncerOptions{})
	sec := config.Secret{
		Name: "s", Mount: "secret", Path: "p", KVVersion: "2", Key: "v",
		Destination: filepath.Join(t.TempDir(), "s"), RefreshInterval: config.NewDuration(time.Minute),
		Mode: config.NewFileMode(0o600), DirMode: config.NewFileMode(0o755),
	}
	cfg := &config.Config{Secrets: []config.Secret{sec}}
	d, err := NewDaemon(cfg, syncer, log, DaemonSettings{}, DaemonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	job, err := syncer.NewJob(sec)
	if err != nil {
		t.Fatal(err)
	}
	rs := &runState{}
	rs.phased.Store(true) // no phase wait: this test is about the early run
	d.run(t.Context(), job, rs, 0)
	d.run(t.Context(), job, rs, 0)
	if n := f.reads.Load(); n != 1 {
		t.Fatalf("%d reads for two runs a moment apart, want 1", n)
	}
	job.mu.Lock()
	job.state.LastSuccess = time.Now().Add(-31 * time.Second) // past half the interval
	job.mu.Unlock()
	d.run(t.Context(), job, rs, 0)
	if n := f.reads.Load(); n != 2 {
		t.Fatalf("a run half an interval later did not read (%d reads)", n)
	}
}

// timedFetcher records when each path was read.
type timedFetcher struct {
	mu    sync.Mutex
	reads map[string][]time.Time
}

func (f *timedFetcher) Read(_ context.Context, r vault.ReadRequest) (*vault.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads[r.Path] = append(f.reads[r.Path], time.Now())
	return &vault.Secret{Data: map[string]any{"v": r.Path}, Version: 1, KVVersion: 2}, nil
}

// TestFirstRefreshesSpread: secrets that start together are all read at
// once (readiness), but their first refreshes spread over the interval
// instead of coming together one interval (+-10%) later.
func TestFirstRefreshesSpread(t *testing.T) {
	const n, interval = 20, 2 * time.Second
	f := &timedFetcher{reads: map[string][]time.Time{}}
	log := zap.NewNop()
	syncer := NewSyncer(f, log, SyncerOptions{})
	cfg := &config.Config{}
	dir := t.TempDir()
	for i := range n {
		cfg.Secrets = append(cfg.Secrets, config.Secret{
			Name: fmt.Sprintf("s%02d", i), Mount: "secret", Path: fmt.Sprintf("p%02d", i), KVVersion: "2", Key: "v",
			Destination: filepath.Join(dir, fmt.Sprintf("s%02d", i)), RefreshInterval: config.NewDuration(interval),
			Mode: config.NewFileMode(0o600), DirMode: config.NewFileMode(0o755),
		})
	}
	d, err := NewDaemon(cfg, syncer, log, DaemonSettings{}, DaemonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2*interval + interval/2) // every first refresh is due within 2.2 intervals
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var first, lastInitial time.Duration
	var refresh []time.Duration
	for _, ts := range f.reads {
		lastInitial = max(lastInitial, ts[0].Sub(start))
		if len(ts) < 2 {
			t.Fatalf("a secret was read %d times in %s, want a refresh", len(ts), 2*interval+interval/2)
		}
		refresh = append(refresh, ts[1].Sub(start))
	}
	first = slices.Min(refresh)
	span := slices.Max(refresh) - first
	t.Logf("initial reads within %s; first refreshes from %s to %s after start (span %s, interval %s)",
		lastInitial, first, slices.Max(refresh), span, interval)
	if lastInitial > interval/2 {
		t.Fatalf("the initial reads took %s: they must not wait for the spread", lastInitial)
	}
	// Without the spread every first refresh falls in one interval +-10%
	// after the initial read: a span of at most 0.2 intervals.
	if span < interval/2 {
		t.Fatalf("first refreshes span only %s of a %s interval: not spread", span, interval)
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
	d, err := NewDaemon(cfg, NewSyncer(f, log, SyncerOptions{}), log, DaemonSettings{}, DaemonOptions{})
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
