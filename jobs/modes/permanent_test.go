package modes_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/modes"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source/kv"
	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

func TestIsPermanent(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&jobs.SyncError{Secret: "s", Stage: metrics.StageRender, Err: errors.New("format env: NUL")}, true},
		{&jobs.SyncError{Secret: "s", Stage: metrics.StageFetch, Err: fmt.Errorf("read: %w", vault.ErrConfig)}, true},
		{&jobs.SyncError{Secret: "s", Stage: metrics.StageFetch, Err: fmt.Errorf("read: %w", vault.ErrNotFound)}, false},
		{&jobs.SyncError{Secret: "s", Stage: metrics.StageAuth, Err: errors.New("permission denied")}, false},
		{&jobs.SyncError{Secret: "s", Stage: metrics.StageWrite, Err: errors.New("read-only file system")}, false},
		{nil, false},
	} {
		if got := jobs.IsPermanent(tc.err); got != tc.want {
			t.Errorf("IsPermanent(%v) = %v", tc.err, got)
		}
	}
}

// TestOncePermanentErrorsFailAtOnce: a render error and a read that does
// not fit its mount fail in one attempt, not after --timeout; a missing
// secret is still retried.
func TestOncePermanentErrorsFailAtOnce(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	srv.PutKV2(t, "secret", p+"/nul", map[string]any{"K": "a\x00b"})
	srv.PutKV1(t, "kv", p+"/v1", map[string]any{"k": "v"})
	cfg := loadConfig(t, w.dir, fmt.Sprintf(`
secrets:
  - {name: nul, path: %[1]s/nul, destination: %[2]s/out/nul.env, format: env}
  - {name: pinned, mount: kv, path: %[1]s/v1, version: 2, destination: %[2]s/out/pinned, key: k}
  - {name: ghost, path: %[1]s/ghost, destination: %[2]s/out/ghost, key: k}
`, p, w.dir))
	fetch := &pathCounter{next: w.client, reads: map[string]int{}}
	syncer := jobs.NewSyncer(kv.New(fetch), w.log.Named("sync"), jobs.SyncerOptions{})
	start := time.Now()
	err := modes.NewOnce(cfg, syncer, w.log, modes.OnceSettings{Timeout: 3 * time.Second, Workers: 4}, nil).Run(t.Context())
	took := time.Since(start)
	var sf *modes.SyncFailed
	if !errors.As(err, &sf) || modes.ExitCode(err) != 1 || len(sf.Failed) != 3 || sf.Interrupted {
		t.Fatalf("once: %v (exit code %d), want 3 secrets failed, exit code 1", err, modes.ExitCode(err))
	}
	byName := map[string]error{}
	for _, f := range sf.Failed {
		byName[f.Secret] = f.Err
	}
	if !strings.Contains(byName["nul"].Error(), "NUL byte") || !strings.Contains(byName["pinned"].Error(), "a version pin needs KV v2, but mount kv is KV v1") {
		t.Fatalf("errors: %v", byName)
	}
	if !errors.Is(byName["ghost"], vault.ErrNotFound) || took < 3*time.Second {
		t.Fatalf("the missing secret was not retried until the timeout (%s): %v", took, byName["ghost"])
	}
	fetch.mu.Lock()
	reads := fetch.reads
	fetch.mu.Unlock()
	if reads[p+"/nul"] != 1 || reads[p+"/v1"] != 1 || reads[p+"/ghost"] < 2 {
		t.Fatalf("reads by path %v: want one for each permanent error, retries for the missing one", reads)
	}
	if !strings.Contains(w.logs.String(), `"secret_name":"nul"`) {
		t.Fatal("no failure logged for nul")
	}
	t.Logf("reads %v in %s", reads, took)
}

// TestDaemonPermanentErrorWaitsForRefresh: the run ends; the next
// scheduled refresh tries again (no backoff retries in between).
func TestDaemonPermanentErrorWaitsForRefresh(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	srv.PutKV2(t, "secret", p+"/nul", map[string]any{"K": "a\x00b"})
	cfg := loadConfig(t, w.dir, fmt.Sprintf(`
secrets:
  - {name: nul, path: %[1]s/nul, destination: %[2]s/out/nul.env, format: env, refresh_interval: 2s}
`, p, w.dir))
	fetch := &timedFetcher{next: w.client}
	w.syncer = jobs.NewSyncer(kv.New(fetch), w.log.Named("sync"), jobs.SyncerOptions{Status: w.status})
	w.daemon(t, cfg)
	// The first refresh comes 0.9 to 1.9 intervals after the first run
	// (a random phase, then the interval +-10%); a retry would come after
	// RetryBase (1 s, full jitter), sooner than any refresh.
	time.Sleep(5 * time.Second)
	at := fetch.times()
	if len(at) < 2 {
		t.Fatalf("%d reads in 5 s at a 2 s refresh, want the first run and a refresh", len(at))
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < 1800*time.Millisecond {
			t.Fatalf("read %d came %v after the one before, sooner than a refresh (0.9 x 2 s): a render error was retried", i+1, gap)
		}
	}
}

// timedFetcher records when each read started.
type timedFetcher struct {
	next kv.Reader
	mu   sync.Mutex
	at   []time.Time
}

func (f *timedFetcher) Read(ctx context.Context, req vault.ReadRequest) (*vault.Secret, error) {
	f.mu.Lock()
	f.at = append(f.at, time.Now())
	f.mu.Unlock()
	return f.next.Read(ctx, req)
}

func (f *timedFetcher) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.at...)
}

// pathCounter counts reads by path.
type pathCounter struct {
	next  kv.Reader
	mu    sync.Mutex
	reads map[string]int
}

func (c *pathCounter) Read(ctx context.Context, req vault.ReadRequest) (*vault.Secret, error) {
	c.mu.Lock()
	c.reads[req.Path]++
	c.mu.Unlock()
	return c.next.Read(ctx, req)
}
