package jobs

import (
	"context"
	"path/filepath"
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
	d, err := NewDaemon(cfg, syncer, log, DaemonOptions{})
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
