package status_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// readyLog records the observer's calls.
type readyLog struct {
	mu    sync.Mutex
	calls []bool
}

func (r *readyLog) Ready(ready bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, ready)
}

func (r *readyLog) get() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.calls...)
}

func twoSecrets() []status.SecretInfo {
	return []status.SecretInfo{
		{Name: "db", VaultPath: "secret/myapp/db", RefreshInterval: time.Minute},
		{Name: "tls", VaultPath: "secret/myapp/tls", RefreshInterval: 5 * time.Minute},
	}
}

func secret(t *testing.T, s status.Snapshot, name string) status.SecretState {
	t.Helper()
	for _, st := range s.Secrets {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("secret %q not in snapshot %+v", name, s)
	return status.SecretState{}
}

// waitFile polls the status file until cond holds (bounded: a failure
// guard, not a timing assertion).
func waitFile(t *testing.T, path string, cond func(status.Snapshot) bool) status.Snapshot {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var (
		s   status.Snapshot
		err error
	)
	for time.Now().Before(deadline) {
		if s, err = status.ReadFile(path); err == nil && cond(s) {
			return s
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("status file never reached the expected state; last %+v, err %v", s, err)
	return s
}

func TestTransitions(t *testing.T) {
	obs := &readyLog{}
	clock := clockwork.NewFakeClockAt(t0)
	tr := status.NewTracker(filepath.Join(t.TempDir(), "status.json"), nil, obs, clock)
	if tr.Ready() {
		t.Fatal("ready before Configure")
	}
	tr.Configure(twoSecrets())
	s := tr.Snapshot()
	if tr.Ready() || s.Ready || len(s.Secrets) != 2 || s.MaxRefreshInterval != 5*time.Minute || !s.UpdatedAt.Equal(t0) {
		t.Fatalf("after Configure: %+v", s)
	}
	tr.Succeeded("db", t0.Add(time.Second), 3)
	if tr.Ready() {
		t.Fatal("ready with tls not written")
	}
	tr.Failed("tls", t0.Add(2*time.Second), "permission denied on secret/myapp/tls")
	if st := secret(t, tr.Snapshot(), "tls"); st.Ready || st.LastError != "permission denied on secret/myapp/tls" || !st.LastErrorAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("tls after failure: %+v", st)
	}
	tr.Succeeded("tls", t0.Add(3*time.Second), 0)
	if !tr.Ready() || !tr.Snapshot().Ready {
		t.Fatal("not ready after every secret was written")
	}
	if st := secret(t, tr.Snapshot(), "tls"); st.LastError != "" || !st.LastErrorAt.IsZero() || !st.LastSuccess.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("a success must clear the last error: %+v", st)
	}
	// A later failure keeps the file (ready) and the last success.
	tr.Failed("db", t0.Add(time.Hour), "vault unreachable")
	st := secret(t, tr.Snapshot(), "db")
	if !tr.Ready() || !st.Ready || !st.LastSuccess.Equal(t0.Add(time.Second)) || st.Version != 3 || st.LastError != "vault unreachable" {
		t.Fatalf("db after a later failure: ready %v, %+v", tr.Ready(), st)
	}
	if got := obs.get(); !reflect.DeepEqual(got, []bool{true}) {
		t.Fatalf("observer calls %v, want [true]", got)
	}
	// Long error texts are bounded.
	tr.Failed("db", t0, strings.Repeat("x", 5000))
	if n := len(secret(t, tr.Snapshot(), "db").LastError); n > 1024 {
		t.Fatalf("error text of %d bytes stored", n)
	}
}

func TestReload(t *testing.T) {
	obs := &readyLog{}
	tr := status.NewTracker(filepath.Join(t.TempDir(), "status.json"), nil, obs, clockwork.NewFakeClockAt(t0))
	tr.Configure(twoSecrets())
	tr.Succeeded("db", t0, 1)
	tr.Succeeded("tls", t0, 2)
	if !tr.Ready() {
		t.Fatal("not ready")
	}
	// Reload: tls removed, api added, db kept with a new interval.
	tr.Configure([]status.SecretInfo{
		{Name: "api", VaultPath: "secret/myapp/api", RefreshInterval: 30 * time.Second},
		{Name: "db", VaultPath: "secret/myapp/db", RefreshInterval: 10 * time.Minute},
	})
	s := tr.Snapshot()
	if tr.Ready() || s.Ready {
		t.Fatal("ready although api was never written")
	}
	if len(s.Secrets) != 2 || s.Secrets[0].Name != "api" || s.Secrets[1].Name != "db" || s.MaxRefreshInterval != 10*time.Minute {
		t.Fatalf("secrets after reload (config order): %+v", s)
	}
	if db := secret(t, s, "db"); !db.Ready || db.Version != 1 || db.RefreshInterval != 10*time.Minute {
		t.Fatalf("db lost its state: %+v", db)
	}
	tr.Succeeded("tls", t0, 3) // a job finishing after its secret was removed
	if len(tr.Snapshot().Secrets) != 2 {
		t.Fatal("a removed secret came back")
	}
	tr.Succeeded("api", t0, 1)
	if !tr.Ready() {
		t.Fatal("not ready after the new secret was written")
	}
	// The same name on another Vault path is a new secret.
	tr.Configure([]status.SecretInfo{
		{Name: "api", VaultPath: "secret/myapp/api", RefreshInterval: 30 * time.Second},
		{Name: "db", VaultPath: "secret/other/db", RefreshInterval: 10 * time.Minute},
	})
	if db := secret(t, tr.Snapshot(), "db"); tr.Ready() || db.Ready || !db.LastSuccess.IsZero() {
		t.Fatalf("db on a new path must start over: %+v", db)
	}
	if got := obs.get(); !reflect.DeepEqual(got, []bool{true, false, true, false}) {
		t.Fatalf("observer calls %v", got)
	}
}

// TestFileContent: the exact JSON, written atomically with mode 0644 into
// a created 0755 directory, no temp file left behind.
func TestFileContent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "sidecar")
	path := filepath.Join(dir, "status.json")
	tr := status.NewTracker(path, nil, nil, clockwork.NewFakeClockAt(t0))
	tr.Configure(twoSecrets())
	tr.Succeeded("db", t0.Add(-time.Minute), 7)
	tr.Failed("tls", t0.Add(-time.Second), "vault: 503 Service Unavailable")
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Compact, one secret per line.
	want := `{"ready":false,"updated_at":"2025-01-02T03:04:05Z","max_refresh_interval":"5m0s","secrets":[
{"name":"db","vault_path":"secret/myapp/db","refresh_interval":"1m0s","ready":true,"last_success":"2025-01-02T03:03:05Z","version":7},
{"name":"tls","vault_path":"secret/myapp/tls","refresh_interval":"5m0s","ready":false,"last_error":"vault: 503 Service Unavailable","last_error_at":"2025-01-02T03:04:04Z"}
]}
`
	if string(got) != want {
		t.Fatalf("status file:\n%s\nwant:\n%s", got, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("file mode %v", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 { // made by the daemon: its own
		t.Errorf("dir mode %v", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}
	// The file round-trips.
	s, err := status.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, tr.Snapshot()) {
		t.Fatalf("round trip:\n%+v\n%+v", s, tr.Snapshot())
	}
}

// TestStartWritesAndFollowsChanges: Start replaces a stale file from an
// earlier run with not-ready, and each change reaches the file.
func TestStartWritesAndFollowsChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	if err := os.WriteFile(path, []byte(`{"ready":true,"updated_at":"2099-01-01T00:00:00Z"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tr := status.NewTracker(path, nil, nil, nil)
	tr.Configure(twoSecrets())
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer tr.Stop(context.Background())
	s, err := status.ReadFile(path)
	if err != nil || s.Ready || len(s.Secrets) != 2 {
		t.Fatalf("Start must write the not-ready state at once: %+v %v", s, err)
	}
	tr.Succeeded("db", time.Now(), 1)
	tr.Succeeded("tls", time.Now(), 1)
	waitFile(t, path, func(s status.Snapshot) bool { return s.Ready })
	tr.Failed("tls", time.Now(), "boom")
	waitFile(t, path, func(s status.Snapshot) bool { return secret(t, s, "tls").LastError == "boom" })
	if err := tr.Start(context.Background()); err == nil {
		t.Fatal("second Start accepted")
	}
}

// TestHeartbeat: with no state change the file is rewritten every
// shortest refresh interval (capped at a minute), following reloads.
func TestHeartbeat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	clock := clockwork.NewFakeClockAt(t0)
	tr := status.NewTracker(path, nil, nil, clock)
	tr.Configure([]status.SecretInfo{{Name: "db", VaultPath: "p", RefreshInterval: time.Hour}})
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer tr.Stop(context.Background())
	waitFile(t, path, func(s status.Snapshot) bool { return s.UpdatedAt.Equal(t0) })

	// An hour's refresh interval: the heartbeat is capped at a minute.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(status.MaxHeartbeat)
	waitFile(t, path, func(s status.Snapshot) bool { return s.UpdatedAt.Equal(t0.Add(time.Minute)) })

	// A reload to a 5s interval: the heartbeat follows. Advance 5s at a
	// time until a heartbeat lands, well before the old minute.
	tr.Configure([]status.SecretInfo{{Name: "db", VaultPath: "p", RefreshInterval: 5 * time.Second}})
	waitFile(t, path, func(s status.Snapshot) bool { return s.MaxRefreshInterval == 5*time.Second })
	for step := 1; ; step++ {
		if step > 10 {
			t.Fatal("no heartbeat within 50s of fake time after the reload")
		}
		clock.Advance(5 * time.Second)
		now := clock.Now()
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			if s, err := status.ReadFile(path); err == nil && s.UpdatedAt.Equal(now) {
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

func TestStopWritesNotReady(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	obs := &readyLog{}
	tr := status.NewTracker(path, nil, obs, nil)
	tr.Configure(twoSecrets()[:1])
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.Succeeded("db", time.Now(), 1)
	waitFile(t, path, func(s status.Snapshot) bool { return s.Ready })
	if err := tr.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, err := status.ReadFile(path)
	if err != nil || s.Ready || !s.Stopped || !secret(t, s, "db").Ready {
		t.Fatalf("after Stop: %+v %v", s, err)
	}
	if err := s.Check(time.Now(), time.Hour); err == nil || !strings.Contains(err.Error(), "daemon stopped") {
		t.Fatalf("Check after Stop: %v", err)
	}
	if tr.Ready() || tr.Snapshot().Ready {
		t.Fatal("Ready after Stop")
	}
	if got := obs.get(); !reflect.DeepEqual(got, []bool{true, false}) {
		t.Fatalf("observer %v", got)
	}
	// Nothing writes after the final state.
	before, _ := os.ReadFile(path)
	tr.Succeeded("db", time.Now(), 2)
	tr.Configure(twoSecrets())
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatalf("file changed after Stop:\n%s", after)
	}
	if err := tr.Stop(context.Background()); err != nil {
		t.Fatal("second Stop:", err)
	}
}

// TestWriteFailureIsNotFatal: a status file that cannot be written is
// logged once per failure streak; the tracker keeps working.
func TestWriteFailureIsNotFatal(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	tr := status.NewTracker(filepath.Join(blocker, "status.json"), zap.New(core), nil, nil)
	tr.Configure(twoSecrets())
	if err := tr.Start(context.Background()); err != nil {
		t.Fatalf("a write failure must not fail Start: %v", err)
	}
	tr.Succeeded("db", time.Now(), 1)
	tr.Succeeded("tls", time.Now(), 1)
	if !tr.Ready() {
		t.Fatal("state must still be tracked")
	}
	if err := tr.Flush(); err == nil {
		t.Fatal("Flush must report the write error")
	}
	if err := tr.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if n := logs.FilterMessage("status file not written; isready will report not ready").Len(); n != 1 {
		t.Fatalf("want the first failure logged once at warn, got %d: %v", n, logs.All())
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).FilterMessage("final status file not written").Len(); n != 1 {
		t.Fatalf("want the final write's failure logged, got %d: %v", n, logs.All())
	}
}

// TestConcurrentUpdates: jobs, reloads, readers and the writer at once
// (run with -race); the final state is exact.
func TestConcurrentUpdates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	tr := status.NewTracker(path, nil, &readyLog{}, nil)
	var infos []status.SecretInfo
	for i := range 20 {
		infos = append(infos, status.SecretInfo{Name: fmt.Sprintf("s%02d", i), VaultPath: fmt.Sprintf("secret/s%02d", i), RefreshInterval: time.Second})
	}
	tr.Configure(infos)
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, in := range infos {
		wg.Go(func() {
			for j := range 50 {
				tr.Failed(in.Name, time.Now(), "transient")
				tr.Succeeded(in.Name, time.Now(), j)
				_ = tr.Snapshot()
				_ = tr.Ready()
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			tr.Configure(infos)
			_ = tr.Flush()
		}
	})
	wg.Wait()
	if !tr.Ready() {
		t.Fatal("not ready after every secret succeeded")
	}
	s := waitFile(t, path, func(s status.Snapshot) bool { return s.Ready })
	for _, st := range s.Secrets {
		if st.Version != 49 || st.LastError != "" {
			t.Fatalf("%+v", st)
		}
	}
	if err := tr.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := status.ReadFile(filepath.Join(dir, "missing.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
	for name, content := range map[string]string{
		"empty":      "",
		"garbage":    "{not json",
		"no-updated": `{"ready":true}`,
		"bad-dur":    `{"ready":true,"updated_at":"2025-01-01T00:00:00Z","max_refresh_interval":"soon"}`,
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		if _, err := status.ReadFile(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCheck(t *testing.T) {
	now := t0.Add(time.Hour)
	ready := status.Snapshot{
		Ready: true, UpdatedAt: now.Add(-90 * time.Second), MaxRefreshInterval: time.Minute,
		Secrets: []status.SecretState{{Name: "db", Ready: true}},
	}
	notReady := status.Snapshot{
		UpdatedAt: now.Add(-time.Second), MaxRefreshInterval: time.Minute,
		Secrets: []status.SecretState{
			{Name: "db", Ready: true},
			{Name: "tls", LastError: "permission denied\nat line 2"},
			{Name: "api"},
		},
	}
	for _, c := range []struct {
		name   string
		snap   status.Snapshot
		maxAge time.Duration
		want   string // "" = ready
	}{
		{"fresh within default 2x longest interval", ready, 0, ""},
		{"stale for a custom max age", ready, time.Minute, "stale: last updated 1m30s ago at 2025-01-02T04:02:35Z, more than the max age of 1m0s"},
		{"fresh for a custom max age", ready, 2 * time.Minute, ""},
		{"stale by default", withUpdated(ready, now.Add(-3*time.Minute)), 0, "stale: last updated 3m0s ago"},
		{"a clock step within 5s counts as fresh", withUpdated(ready, now.Add(5*time.Second)), 0, ""},
		{"further in the future is not fresh", withUpdated(ready, now.Add(time.Minute)), 0, "not fresh: updated_at 2025-01-02T04:05:05Z is 1m0s in the future, more than 5s"},
		{"not ready names the secrets", notReady, 0, "not ready: 2 of 3 secrets not written yet: tls (last error: permission denied at line 2), api"},
		{"no secrets", status.Snapshot{UpdatedAt: now}, 0, "not ready: no secrets configured yet"},
		{"no interval falls back to 10m", status.Snapshot{Ready: true, UpdatedAt: now.Add(-9 * time.Minute)}, 0, ""},
		{"fallback stale", status.Snapshot{Ready: true, UpdatedAt: now.Add(-11 * time.Minute)}, 0, "stale: last updated 11m0s ago"},
		{"stopped", status.Snapshot{Stopped: true, UpdatedAt: now}, 0, "not ready: the daemon stopped at 2025-01-02T04:04:05Z"},
	} {
		err := c.snap.Check(now, c.maxAge)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%s: more than one line: %q", c.name, err)
		}
	}
}

func withUpdated(s status.Snapshot, at time.Time) status.Snapshot {
	s.UpdatedAt = at
	return s
}

func TestModule(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	env, err := config.ParseEnv([]string{"SIDECAR_STATUS_FILE=" + path})
	if err != nil {
		t.Fatal(err)
	}
	obs := &readyLog{}
	var tr *status.Tracker
	app := fxtest.New(t,
		fx.Supply(env, zap.NewNop()),
		fx.Provide(func() status.ReadyObserver { return obs }),
		status.Module,
		fx.Populate(&tr),
	)
	app.RequireStart()
	if tr.Path() != path {
		t.Fatalf("path %q", tr.Path())
	}
	if s, err := status.ReadFile(path); err != nil || s.Ready {
		t.Fatalf("after start: %+v %v", s, err)
	}
	tr.Configure(twoSecrets()[:1])
	tr.Succeeded("db", time.Now(), 1)
	waitFile(t, path, func(s status.Snapshot) bool { return s.Ready })
	app.RequireStop()
	if s, err := status.ReadFile(path); err != nil || s.Ready || !s.Stopped {
		t.Fatalf("after stop: %+v %v", s, err)
	}
	if got := obs.get(); !reflect.DeepEqual(got, []bool{true, false}) {
		t.Fatalf("observer %v", got)
	}
}

// TestRoutineSuccessWaitsForHeartbeat: a success that only moves the time
// is not written at once (with many secrets that was a write per refresh);
// news is, and the heartbeat carries the routine times.
func TestRoutineSuccessWaitsForHeartbeat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	clock := clockwork.NewFakeClockAt(t0)
	tr := status.NewTracker(path, nil, nil, clock)
	tr.Configure([]status.SecretInfo{{Name: "db", VaultPath: "p", RefreshInterval: 10 * time.Second}})
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer tr.Stop(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := clock.BlockUntilContext(ctx, 1); err != nil { // the heartbeat ticker
		t.Fatal(err)
	}

	// News: the first success makes the secret ready; written at once.
	first := t0.Add(time.Second)
	tr.Succeeded("db", first, 1)
	waitFile(t, path, func(s status.Snapshot) bool { return s.Ready && secret(t, s, "db").LastSuccess.Equal(first) })

	// Routine: same version, no error; the file keeps the old time.
	second := t0.Add(2 * time.Second)
	tr.Succeeded("db", second, 1)
	time.Sleep(200 * time.Millisecond)
	if s, err := status.ReadFile(path); err != nil || !secret(t, s, "db").LastSuccess.Equal(first) {
		t.Fatalf("a routine success was written at once: %+v %v", s, err)
	}
	if got := secret(t, tr.Snapshot(), "db").LastSuccess; !got.Equal(second) {
		t.Fatalf("in-memory state (for /ready) lags: %v", got)
	}

	// The heartbeat writes it.
	clock.Advance(10 * time.Second)
	waitFile(t, path, func(s status.Snapshot) bool { return secret(t, s, "db").LastSuccess.Equal(second) })

	// News again: a new version and a new error are written at once.
	tr.Succeeded("db", t0.Add(11*time.Second), 2)
	waitFile(t, path, func(s status.Snapshot) bool { return secret(t, s, "db").Version == 2 })
	tr.Failed("db", t0.Add(12*time.Second), "vault unreachable")
	waitFile(t, path, func(s status.Snapshot) bool { return secret(t, s, "db").LastError == "vault unreachable" })
}

// TestActionDone: a change action's outcome shows per secret in the
// snapshot and the file, never flips readiness, and a secret no longer
// configured is ignored.
func TestActionDone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "st", "status.json")
	obs := &readyLog{}
	tr := status.NewTracker(path, nil, obs, clockwork.NewFakeClockAt(t0))
	tr.Configure(twoSecrets())
	tr.Succeeded("db", t0, 1)
	tr.Succeeded("tls", t0, 1)
	if !tr.Ready() {
		t.Fatal("not ready after both secrets succeeded")
	}
	tr.ActionDone("db", notify.Report{Kind: "http", Target: "http://127.0.0.1:9/-/reload", Result: "error",
		Error: "POST http://127.0.0.1:9/-/reload: connection refused", At: t0, Attempts: 3})
	tr.ActionDone("gone", notify.Report{Kind: "signal", Result: "success", At: t0, Attempts: 1})
	if !tr.Ready() {
		t.Error("a failed action made the sidecar not ready")
	}
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	snap, err := status.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := secret(t, snap, "db").LastAction
	want := &status.ActionState{Kind: "http", Target: "http://127.0.0.1:9/-/reload", Result: "error",
		Error: "POST http://127.0.0.1:9/-/reload: connection refused", At: t0, Attempts: 3}
	if got == nil || !reflect.DeepEqual(*got, *want) {
		t.Errorf("db last_action = %+v, want %+v", got, want)
	}
	if a := secret(t, snap, "tls").LastAction; a != nil {
		t.Errorf("tls has a last_action it never ran: %+v", a)
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), `"last_action":{`) || !strings.Contains(string(raw), `"attempts":3`) {
		t.Errorf("status file lacks last_action:\n%s", raw)
	}
	if got := obs.get(); !reflect.DeepEqual(got, []bool{true}) {
		t.Errorf("readiness observer saw %v, want only [true]", got)
	}
}

// TestFileTenThousandSecrets: a status file of 10,000 secrets, every one
// failing with the longest error the tracker keeps and a failed action,
// is still one isready reads and checks.
func TestFileTenThousandSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	clock := clockwork.NewFakeClockAt(t0)
	tr := status.NewTracker(path, nil, nil, clock)
	infos := make([]status.SecretInfo, 10000)
	for i := range infos {
		infos[i] = status.SecretInfo{Name: fmt.Sprintf("%s-%05d", strings.Repeat("n", 120), i),
			VaultPath: "secret/" + strings.Repeat("p", 200) + fmt.Sprint(i), RefreshInterval: time.Minute}
	}
	tr.Configure(infos)
	long := strings.Repeat("vault: 503 Service Unavailable; ", 100)
	for _, in := range infos {
		tr.Succeeded(in.Name, t0.Add(-time.Second), 3)
		tr.Failed(in.Name, t0, long)
		tr.ActionDone(in.Name, notify.Report{Kind: "http", Target: "http://127.0.0.1:9/" + strings.Repeat("r", 200),
			Result: "error", Error: long, At: t0, Attempts: 3})
	}
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := status.ReadFile(path)
	if err != nil {
		t.Fatalf("isready's read of a %d-byte file: %v", fi.Size(), err)
	}
	if len(snap.Secrets) != 10000 || !snap.Ready {
		t.Fatalf("%d secrets, ready %v", len(snap.Secrets), snap.Ready)
	}
	if err := snap.Check(t0, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("10,000 failing secrets: %d bytes (%d per secret; the cap is %d)", fi.Size(), fi.Size()/10000, status.MaxFileSize)
}

// BenchmarkStartup10000: 10,000 secrets each written once (a daemon's
// start-up): the tracker's own cost, without the file.
func BenchmarkStartup10000(b *testing.B) {
	infos := make([]status.SecretInfo, 10000)
	for i := range infos {
		infos[i] = status.SecretInfo{Name: fmt.Sprintf("s%05d", i), VaultPath: fmt.Sprintf("secret/s%05d", i), RefreshInterval: time.Minute}
	}
	for b.Loop() {
		tr := status.NewTracker(filepath.Join(b.TempDir(), "status.json"), nil, nil, clockwork.NewFakeClockAt(t0))
		tr.Configure(infos)
		for _, in := range infos {
			tr.Succeeded(in.Name, t0, 1)
		}
		if !tr.Ready() {
			b.Fatal("not ready")
		}
	}
}
