package modes_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/modes"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source/kv"
	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestDaemonWritesFilesAndFollowsChanges: every secret's file appears with
// its content, mode and owner; a change in Vault reaches its file within a
// refresh interval; unchanged secrets leave inode and mtime alone.
func TestDaemonWritesFilesAndFollowsChanges(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	srv.PutKV2(t, "secret", p+"/db", map[string]any{"username": "app", "password": "pw-1"})
	srv.PutKV2(t, "secret", p+"/tls", map[string]any{"private_key": "-----KEY-----\nabc\n", "cert": "c"})
	srv.PutKV2(t, "secret", p+"/config", map[string]any{"b": 2, "a": "x", "nested": map[string]any{"k": true}})
	srv.PutKV1(t, "kv", p+"/legacy", map[string]any{"url": "jdbc:x", "user": "u"})
	owner, group := os.Geteuid(), os.Getegid()
	if owner == 0 {
		owner, group = 1001, 1002
	}
	out := filepath.Join(w.dir, "out")
	cfg := loadConfig(t, w.dir, fmt.Sprintf(`
defaults:
  refresh_interval: 1s
secrets:
  - name: db
    path: %[1]s/db
    destination: %[2]s/db.env
    mode: "0440"
    owner: %[3]d
    group: %[4]d
    template: |
      DB_USER={{ .username }}
      DB_PASS={{ .password }}
  - name: tls
    path: %[1]s/tls
    destination: %[2]s/tls/key.pem
    mode: "0400"
    key: private_key
  - name: config
    path: %[1]s/config
    kv_version: 2
    destination: %[2]s/config.json
    format: json
  - name: legacy
    mount: kv
    path: %[1]s/legacy
    destination: %[2]s/legacy.env
    format: env
`, p, out, owner, group))
	clock := clockwork.NewFakeClock()
	d := w.daemonOn(t, cfg, clock)

	want := map[string]string{
		"db.env":      "DB_USER=app\nDB_PASS=pw-1\n",
		"tls/key.pem": "-----KEY-----\nabc\n",
		"legacy.env":  "url=jdbc:x\nuser=u\n",
	}
	for name, content := range want {
		eventually(t, 15*time.Second, name+" written", fileIs(filepath.Join(out, name), content))
	}
	eventually(t, 15*time.Second, "config.json written", func() bool {
		raw, err := os.ReadFile(filepath.Join(out, "config.json"))
		var v map[string]any
		return err == nil && json.Unmarshal(raw, &v) == nil && v["a"] == "x" && v["b"] == float64(2)
	})
	fi, st := statFile(t, filepath.Join(out, "db.env"))
	if fi.Mode().Perm() != 0o440 || int(st.Uid) != owner || int(st.Gid) != group {
		t.Errorf("db.env mode %v owner %d:%d, want 0440 %d:%d", fi.Mode().Perm(), st.Uid, st.Gid, owner, group)
	}
	if fi, _ := statFile(t, filepath.Join(out, "tls/key.pem")); fi.Mode().Perm() != 0o400 {
		t.Errorf("key.pem mode %v", fi.Mode().Perm())
	}
	eventually(t, 5*time.Second, "ready", w.status.Ready)

	// Remember the untouched files, then change one secret.
	_, tlsBefore := statFile(t, filepath.Join(out, "tls/key.pem"))
	tlsMtime, _ := statFile(t, filepath.Join(out, "tls/key.pem"))
	srv.PutKV2(t, "secret", p+"/db", map[string]any{"username": "app", "password": "pw-2"})
	changed := clock.Now()
	ticking(t, clock, 100*time.Millisecond, 20*time.Second, "db.env follows the change", fileIs(filepath.Join(out, "db.env"), "DB_USER=app\nDB_PASS=pw-2\n"))
	t.Logf("change reached the file after %s on the daemon's clock (refresh 1s +-10%%)", clock.Since(changed))
	if got := d.Jobs()["db"].State().Version; got != 2 {
		t.Errorf("db state version %d, want 2", got)
	}

	// A few more refresh cycles: nothing else is rewritten.
	reads := counter(t, w.reg, "secrets_sidecar_fetch_total", map[string]string{"secret_name": "tls", "result": "success"})
	ticking(t, clock, 100*time.Millisecond, 20*time.Second, "three more tls refreshes", func() bool {
		return counter(t, w.reg, "secrets_sidecar_fetch_total", map[string]string{"secret_name": "tls", "result": "success"}) >= reads+3
	})
	fi, tlsAfter := statFile(t, filepath.Join(out, "tls/key.pem"))
	if tlsBefore.Ino != tlsAfter.Ino || !fi.ModTime().Equal(tlsMtime.ModTime()) {
		t.Errorf("unchanged tls file was rewritten: inode %d->%d", tlsBefore.Ino, tlsAfter.Ino)
	}
	if n := d.Jobs()["tls"].State().Writes; n != 1 {
		t.Errorf("tls written %d times, want 1", n)
	}
	if n := counter(t, w.reg, "secrets_sidecar_file_writes_total", map[string]string{"secret_name": "tls"}); n != 1 {
		t.Errorf("file_writes_total{tls} = %v, want 1", n)
	}
	if n := counter(t, w.reg, "secrets_sidecar_fetch_total", map[string]string{"secret_name": "tls", "result": "success"}); n < 3 {
		t.Errorf("fetch_total{tls,success} = %v, want >= 3 refreshes", n)
	}
}

// TestDaemonSurvivesVaultOutage stops Vault mid-run: files keep their
// content, errors are counted, the breaker opens; when Vault returns the
// sync resumes by itself.
func TestDaemonSurvivesVaultOutage(t *testing.T) {
	srv := vaulttest.Start(t, vaulttest.Persistent())
	w := newWorld(t, srv, breaker.Settings{MaxFailures: 3, OpenTimeout: time.Second, Interval: time.Minute})
	srv.PutKV2(t, "secret", "outage/a", map[string]any{"v": "one"})
	srv.PutKV2(t, "secret", "outage/b", map[string]any{"v": "two"})
	out := filepath.Join(w.dir, "out")
	cfg := loadConfig(t, w.dir, fmt.Sprintf(`
defaults: {refresh_interval: 1s}
secrets:
  - {name: a, path: outage/a, destination: %[1]s/a, key: v}
  - {name: b, path: outage/b, destination: %[1]s/b, key: v}
`, out))
	d := w.daemon(t, cfg)
	eventually(t, 15*time.Second, "files written", func() bool {
		return fileIs(filepath.Join(out, "a"), "one")() && fileIs(filepath.Join(out, "b"), "two")()
	})
	_, before := statFile(t, filepath.Join(out, "a"))

	srv.Stop(t)
	eventually(t, 20*time.Second, "breaker open", func() bool { return w.breaker.State() == breaker.Open })
	eventually(t, 10*time.Second, "fetch errors counted", func() bool {
		return counter(t, w.reg, "secrets_sidecar_errors_total", map[string]string{"secret_name": "a", "stage": "fetch"}) >= 2
	})
	failed := counter(t, w.reg, "secrets_sidecar_errors_total", map[string]string{"secret_name": "a", "stage": "fetch"})
	eventually(t, 20*time.Second, "more failing refreshes", func() bool {
		return counter(t, w.reg, "secrets_sidecar_errors_total", map[string]string{"secret_name": "a", "stage": "fetch"}) >= failed+2
	})
	for name, want := range map[string]string{"a": "one", "b": "two"} {
		if !fileIs(filepath.Join(out, name), want)() {
			t.Fatalf("%s changed or vanished during the outage", name)
		}
	}
	if _, during := statFile(t, filepath.Join(out, "a")); during.Ino != before.Ino {
		t.Error("file a was rewritten during the outage")
	}
	if got := counter(t, w.reg, "secrets_sidecar_breaker_state", nil); got != 2 {
		t.Errorf("breaker_state gauge %v, want 2 (open)", got)
	}
	if s := d.Jobs()["a"].State(); s.Failures == 0 || s.LastError == "" {
		t.Errorf("job state during outage: %+v", s)
	}

	srv.Restart(t)
	srv.PutKV2(t, "secret", "outage/a", map[string]any{"v": "one-after"})
	restarted := time.Now()
	eventually(t, 30*time.Second, "sync resumed", fileIs(filepath.Join(out, "a"), "one-after"))
	t.Logf("recovered %s after Vault came back", time.Since(restarted).Round(time.Millisecond))
	eventually(t, 10*time.Second, "breaker closed", func() bool { return w.breaker.State() == breaker.Closed })
	seen := w.states.seen()
	opened := false
	for _, st := range seen {
		opened = opened || st == 2
	}
	if !opened || seen[len(seen)-1] != 0 {
		t.Errorf("breaker states %v: want open (2) during the outage and closed (0) last", seen)
	}
}

// TestFailingSecretDoesNotBlockOthers: a missing path retries with backoff
// while the other secrets sync; once it exists it is written without
// waiting a whole (long) refresh interval.
func TestFailingSecretDoesNotBlockOthers(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	srv.PutKV2(t, "secret", p+"/ok", map[string]any{"v": "fine"})
	out := filepath.Join(w.dir, "out")
	cfg := loadConfig(t, w.dir, fmt.Sprintf(`
defaults: {refresh_interval: 1h}
secrets:
  - {name: ok, path: %[1]s/ok, destination: %[2]s/ok, key: v}
  - {name: late, path: %[1]s/late, destination: %[2]s/late, key: v}
`, p, out))
	clock := clockwork.NewFakeClock()
	d := w.daemonOn(t, cfg, clock)
	eventually(t, 10*time.Second, "ok written", fileIs(filepath.Join(out, "ok"), "fine"))
	eventually(t, 10*time.Second, "late failing", func() bool { return d.Jobs()["late"].State().Failures >= 1 })
	if w.status.Ready() {
		t.Fatal("ready with a secret never written")
	}
	if s := d.Jobs()["late"].State(); !strings.Contains(s.LastError, "not found") || !strings.Contains(s.LastError, p+"/late") {
		t.Errorf("last error %q should say not found and name the path", s.LastError)
	}
	srv.PutKV2(t, "secret", p+"/late", map[string]any{"v": "arrived"})
	// Refresh is 1h: only the retry backoff (1s, 2s, 4s... jittered) can
	// pick this up; the clock moves a second per poll, never a whole hour.
	start := clock.Now()
	ticking(t, clock, time.Second, 40*time.Second, "late written by a retry", fileIs(filepath.Join(out, "late"), "arrived"))
	if took := clock.Since(start); took >= time.Hour {
		t.Fatalf("late written %s after it arrived: by a refresh, not a retry", took)
	}
	eventually(t, 5*time.Second, "ready", w.status.Ready)
}

// TestSharedRead: secrets reading the same path at the same moment share
// one Vault read.
func TestSharedRead(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	srv.PutKV2(t, "secret", p+"/shared", map[string]any{"user": "u", "pass": "p"})
	cf := &countingFetcher{next: w.client}
	cf.delay.Store(int64(300 * time.Millisecond))
	syncer := jobs.NewSyncer(kv.New(cf), w.log, jobs.SyncerOptions{})
	out := filepath.Join(w.dir, "out")
	cfg := loadConfig(t, w.dir, fmt.Sprintf(`
secrets:
  - {name: user, path: %[1]s/shared, destination: %[2]s/user, key: user}
  - {name: pass, path: %[1]s/shared, destination: %[2]s/pass, key: pass}
  - {name: both, path: %[1]s/shared, destination: %[2]s/both, format: env}
  - {name: other, path: %[1]s/shared, version: 1, destination: %[2]s/v1, key: user}
`, p, out))
	var wg sync.WaitGroup
	for _, s := range cfg.Secrets {
		job, err := syncer.NewJob(s)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := syncer.Sync(t.Context(), job); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// Three secrets read latest, one pins version 1: two distinct reads.
	if n := cf.reads.Load(); n != 2 {
		t.Fatalf("%d Vault reads for 4 secrets on one path (one pinned), want 2", n)
	}
	for name, want := range map[string]string{"user": "u", "pass": "p", "v1": "u", "both": "pass=p\nuser=u\n"} {
		if !fileIs(filepath.Join(out, name), want)() {
			t.Errorf("%s wrong", name)
		}
	}
}

// TestSymlinkAttackRefusedAndLogged: the app replaces the destination's
// directory with a link out of the volume; the sidecar refuses, logs it
// and counts a write error; nothing lands outside.
func TestSymlinkAttackRefusedAndLogged(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	srv.PutKV2(t, "secret", p+"/s", map[string]any{"v": "top-secret-value"})
	volume := filepath.Join(w.dir, "volume")
	outside := filepath.Join(w.dir, "outside")
	if err := os.MkdirAll(filepath.Join(volume, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, w.dir, fmt.Sprintf(`
secrets:
  - {name: s, path: %s/s, destination: %s/app/secret.txt, key: v}
`, p, volume))
	// The attack is in place before the first write.
	if err := os.RemoveAll(filepath.Join(volume, "app")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(volume, "app")); err != nil {
		t.Fatal(err)
	}
	job, err := w.syncer.NewJob(cfg.Secrets[0])
	if err != nil {
		t.Fatal(err)
	}
	err = w.syncer.Sync(t.Context(), job)
	var serr *jobs.SyncError
	if !errors.As(err, &serr) || serr.Stage != metrics.StageWrite || !errors.Is(err, files.ErrSymlink) {
		t.Fatalf("sync through a symlinked directory: %v", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("wrote outside the volume: %v", entries)
	}
	if n := counter(t, w.reg, "secrets_sidecar_errors_total", map[string]string{"secret_name": "s", "stage": "write"}); n != 1 {
		t.Errorf("errors_total{stage=write} = %v", n)
	}
	logs := w.logs.String()
	if !strings.Contains(logs, "symbolic link") || !strings.Contains(logs, `"stage":"write"`) {
		t.Errorf("refusal not logged:\n%s", logs)
	}
	if strings.Contains(logs, "top-secret-value") {
		t.Error("secret value in logs")
	}
}

// TestReadersSeeCompleteFilesDuringSync: readers read the destination in a
// tight loop while the daemon rewrites it as Vault changes.
func TestReadersSeeCompleteFilesDuringSync(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	value := func(i int) string { return fmt.Sprintf("%d:%s", i, strings.Repeat("x", 1+i*997%8000)) }
	srv.PutKV2(t, "secret", p+"/hot", map[string]any{"v": value(0)})
	dest := filepath.Join(w.dir, "out", "hot")
	cfg := loadConfig(t, w.dir, fmt.Sprintf(`
defaults: {refresh_interval: 1s}
secrets:
  - {name: hot, path: %s/hot, destination: %s, key: v}
`, p, dest))
	w.daemon(t, cfg)
	eventually(t, 10*time.Second, "first write", fileIs(dest, value(0)))

	var stop atomic.Bool
	var reads, bad atomic.Int64
	var wg sync.WaitGroup
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				got, err := os.ReadFile(dest)
				reads.Add(1)
				s := string(got)
				i := 0
				if _, perr := fmt.Sscanf(s, "%d:", &i); err != nil || perr != nil || s != value(i) {
					bad.Add(1)
				}
			}
		}()
	}
	for i := 1; i <= 4; i++ {
		srv.PutKV2(t, "secret", p+"/hot", map[string]any{"v": value(i)})
		eventually(t, 10*time.Second, "rewrite", fileIs(dest, value(i)))
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d of %d reads saw a partial or empty file", bad.Load(), reads.Load())
	}
	t.Logf("%d reads during 4 rewrites, all complete", reads.Load())
}

// TestStopWaitsForInFlightSync: Stop lets a slow sync finish (within the
// bound) instead of cutting it off, and no partial file is left.
func TestStopWaitsForInFlightSync(t *testing.T) {
	srv := vaulttest.Shared(t)
	w := newWorld(t, srv, breaker.Settings{})
	p := uniq(t)
	srv.PutKV2(t, "secret", p+"/slow", map[string]any{"v": "complete"})
	cf := &countingFetcher{next: w.client}
	cf.delay.Store(int64(1500 * time.Millisecond))
	syncer := jobs.NewSyncer(kv.New(cf), w.log, jobs.SyncerOptions{})
	dest := filepath.Join(w.dir, "out", "slow")
	cfg := loadConfig(t, w.dir, fmt.Sprintf("secrets: [{name: slow, path: %s/slow, destination: %s, key: v}]\n", p, dest))
	d, err := modes.NewDaemon(cfg, syncer, w.log, modes.DaemonSettings{ShutdownTimeout: 5 * time.Second}, modes.DaemonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "read in flight", func() bool { return cf.reads.Load() == 1 })
	start := time.Now()
	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if !fileIs(dest, "complete")() {
		t.Fatalf("in-flight sync did not finish before Stop returned (took %s)", took)
	}
	if took > 6*time.Second {
		t.Fatalf("Stop took %s, beyond the 5s bound", took)
	}

	// With a bound shorter than the sync, Stop returns at the bound and
	// the write never happens: no partial file either way.
	cf.delay.Store(int64(time.Hour))
	dest2 := filepath.Join(w.dir, "out", "never")
	cfg2 := loadConfig(t, w.dir, fmt.Sprintf("secrets: [{name: never, path: %s/slow, destination: %s, key: v}]\n", p, dest2))
	d2, err := modes.NewDaemon(cfg2, syncer, w.log, modes.DaemonSettings{ShutdownTimeout: 500 * time.Millisecond}, modes.DaemonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "second read in flight", func() bool { return cf.reads.Load() == 2 })
	start = time.Now()
	if err := d2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Stop ignored its 500ms bound: %s", took)
	}
	if _, err := os.Stat(dest2); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a cancelled sync left a file: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(w.dir, "out", ".*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func statFile(t testing.TB, p string) (os.FileInfo, *syscall.Stat_t) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi, fi.Sys().(*syscall.Stat_t)
}
