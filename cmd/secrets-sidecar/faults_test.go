//go:build faults

// Fault injection against the real binary and the real Vault dev server
// (`make test-faults`): kill -9 at random moments, a Vault outage, token
// expiry, an unwritable destination and a slow Vault. Each test logs the
// counts and times it measured.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// checked is the content every kill -9 test secret renders: JSON whose sum
// field is the SHA-256 of the other fields, so a reader can tell a complete
// file from a partial, mixed or empty one.
type checked struct {
	ID      string `json:"id"`
	Seq     int    `json:"seq"`
	Payload string `json:"payload"`
	Sum     string `json:"sum"`
}

const checkedTemplate = `{"id": "{{ .id }}", "seq": {{ .seq }}, "payload": "{{ .payload }}", "sum": "{{ .sum }}"}` + "\n"

func checksum(id string, seq int, payload string) string {
	h := sha256.Sum256([]byte(id + "\x00" + strconv.Itoa(seq) + "\x00" + payload))
	return hex.EncodeToString(h[:])
}

// checkedData is secret id's seq-th value: a payload of 1 to 64 KiB, so a
// write takes long enough to be interrupted.
func checkedData(id string, seq int, rng *rand.Rand) map[string]any {
	payload := make([]byte, 512+rng.IntN(32<<10))
	for i := range payload {
		payload[i] = byte(rng.UintN(256))
	}
	p := hex.EncodeToString(payload)
	return map[string]any{"id": id, "seq": strconv.Itoa(seq), "payload": p, "sum": checksum(id, seq, p)}
}

// validate parses one observed file: complete, parseable, never empty,
// the right secret, and checksummed.
func validate(raw []byte, id string) (int, error) {
	if len(raw) == 0 {
		return 0, errors.New("empty file")
	}
	var c checked
	if err := json.Unmarshal(raw, &c); err != nil {
		return 0, fmt.Errorf("%d bytes, not JSON: %w", len(raw), err)
	}
	if c.ID != id {
		return 0, fmt.Errorf("holds secret %q", c.ID)
	}
	if c.Sum != checksum(c.ID, c.Seq, c.Payload) {
		return 0, fmt.Errorf("seq %d: checksum mismatch", c.Seq)
	}
	return c.Seq, nil
}

// TestFaultKill9Loop runs the daemon over 50 secrets at a 1 s refresh
// while a writer keeps changing them in Vault, kills it with SIGKILL at
// random moments at least 200 times (restarting it each time), and has a
// reader validate every file it observes: complete, parseable, checksummed,
// never empty, never gone once written, never older than before.
func TestFaultKill9Loop(t *testing.T) {
	const secrets, kills = 50, 200
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	p := prefix(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 8))

	ids := make([]string, secrets)
	latest := make([]atomic.Int64, secrets) // last seq written to Vault
	var cfg strings.Builder
	cfg.WriteString("defaults: {refresh_interval: 1s, mode: \"0444\"}\nsecrets:\n")
	for i := range ids {
		ids[i] = fmt.Sprintf("s%02d", i)
		srv.PutKV2(t, "secret", p+"/"+ids[i], checkedData(ids[i], 1, rng))
		latest[i].Store(1)
		fmt.Fprintf(&cfg, "  - {name: %s, path: %s/%s, destination: %s/%s.json, template: %q}\n", ids[i], p, ids[i], out, ids[i], checkedTemplate)
	}
	cfgPath := writeConfig(t, dir, cfg.String())
	env := []string{"VAULT_ADDR=" + srv.Addr, "VAULT_TOKEN=" + srv.Token, "SIDECAR_LOG_LEVEL=warn"}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Writer: a new version of a random secret every 5 ms.
	var vaultWrites atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := srv.Client(t)
		wrng := rand.New(rand.NewPCG(rng.Uint64(), 1))
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			i := wrng.IntN(secrets)
			seq := int(latest[i].Load()) + 1
			if _, err := c.KVv2("secret").Put(t.Context(), p+"/"+ids[i], checkedData(ids[i], seq, wrng)); err != nil {
				t.Errorf("writer: %v", err)
				return
			}
			latest[i].Store(int64(seq))
			vaultWrites.Add(1)
		}
	}()
	// Reader: every file and the status file, over and over.
	var reads, statusReads, missingBeforeFirst atomic.Int64
	var badMu sync.Mutex
	var bad []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		seen := make([]int, secrets) // highest seq observed; 0: never seen
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i, id := range ids {
				raw, err := os.ReadFile(filepath.Join(out, id+".json"))
				var problem string
				switch {
				case errors.Is(err, fs.ErrNotExist) && seen[i] == 0:
					missingBeforeFirst.Add(1)
					continue
				case err != nil:
					problem = err.Error()
				default:
					reads.Add(1)
					seq, verr := validate(raw, id)
					switch {
					case verr != nil:
						problem = verr.Error()
					case seq < seen[i]:
						problem = fmt.Sprintf("went back from seq %d to %d", seen[i], seq)
					default:
						seen[i] = seq
					}
				}
				if problem != "" {
					badMu.Lock()
					bad = append(bad, id+": "+problem)
					badMu.Unlock()
				}
			}
			if raw, err := os.ReadFile(filepath.Join(dir, "status.json")); err == nil {
				var snap map[string]any
				if jerr := json.Unmarshal(raw, &snap); jerr != nil || len(raw) == 0 {
					badMu.Lock()
					bad = append(bad, fmt.Sprintf("status file: %d bytes: %v", len(raw), jerr))
					badMu.Unlock()
				}
				statusReads.Add(1)
			}
		}
	}()

	started := time.Now()
	var midWrite, withFiles int
	for k := 0; k < kills; k++ {
		d := startDaemon(t, cfgPath, dir, env...)
		time.Sleep(time.Duration(rng.Int64N(int64(1500 * time.Millisecond))))
		if !d.running() {
			t.Fatalf("kill %d: the daemon exited by itself: %v", k, d.err)
		}
		d.kill(t)
		// A temp file left behind means the kill landed inside a write.
		entries, _ := os.ReadDir(out)
		if len(entries) > 0 {
			withFiles++
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				midWrite++
				break
			}
		}
	}
	killing := time.Since(started)
	close(stop)
	wg.Wait()

	// A final, clean start catches up with Vault and removes the temp files.
	d := startDaemon(t, cfgPath, dir, env...)
	waitFor(t, 60*time.Second, "every file to hold the latest version", func() bool {
		for i, id := range ids {
			raw, err := os.ReadFile(filepath.Join(out, id+".json"))
			if err != nil {
				return false
			}
			if seq, err := validate(raw, id); err != nil || seq != int(latest[i].Load()) {
				return false
			}
		}
		return true
	})
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temp file %s left after a clean start", e.Name())
		}
	}
	if took, code := d.term(t, 30*time.Second); code != 0 {
		t.Errorf("exit %d %s after SIGTERM", code, took)
	}

	badMu.Lock()
	defer badMu.Unlock()
	t.Logf("kills: %d in %s (%d landed inside a write, leaving a temp file); Vault writes: %d; file reads validated: %d; status file reads: %d; bad reads: %d",
		kills, killing.Round(time.Second), midWrite, vaultWrites.Load(), reads.Load(), statusReads.Load(), len(bad))
	for i, b := range bad {
		if i == 20 {
			t.Errorf("... and %d more", len(bad)-20)
			break
		}
		t.Errorf("bad read: %s", b)
	}
	if midWrite == 0 || reads.Load() < int64(kills) {
		t.Errorf("the loop did not exercise what it claims: %d kills inside a write, %d reads", midWrite, reads.Load())
	}
}

// fileState is what a reader sees of a destination: content and inode.
type fileState struct {
	content string
	inode   uint64
}

func snapshotFiles(t *testing.T, paths []string) map[string]fileState {
	t.Helper()
	out := map[string]fileState{}
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		ino, err := fileInode(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = fileState{string(raw), ino}
	}
	return out
}

// TestFaultVaultOutage stops the dev server for 60 s while the daemon
// syncs 20 secrets every second: no destination file changes or
// disappears, the breaker opens; after the restart new values reach every
// file within the breaker's open timeout plus the retry bound.
func TestFaultVaultOutage(t *testing.T) {
	t.Parallel()
	const secrets, outage, openTimeout = 20, 60 * time.Second, 30 * time.Second
	srv := vaulttest.Start(t, vaulttest.Persistent())
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	p := prefix(t)
	var cfg strings.Builder
	cfg.WriteString("defaults: {refresh_interval: 1s}\nsecrets:\n")
	paths := make([]string, secrets)
	for i := range paths {
		srv.PutKV2(t, "secret", fmt.Sprintf("%s/s%02d", p, i), map[string]any{"v": fmt.Sprintf("before-%d", i)})
		paths[i] = fmt.Sprintf("%s/s%02d", out, i)
		fmt.Fprintf(&cfg, "  - {name: s%02d, path: %s/s%02d, destination: %s, key: v}\n", i, p, i, paths[i])
	}
	cfgPath := writeConfig(t, dir, cfg.String())
	addr := freeAddr(t)
	d := startDaemon(t, cfgPath, dir, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_HTTP_ADDR="+addr,
		"SIDECAR_BREAKER_OPEN_TIMEOUT="+openTimeout.String())
	d.waitReady(t, 30*time.Second)
	before := snapshotFiles(t, paths)

	srv.Stop(t)
	stopped := time.Now()
	checks, maxBreaker := 0, 0.0
	for time.Since(stopped) < outage {
		for _, path := range paths {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%s during the outage: %v", path, err)
			}
			ino, err := fileInode(path)
			if err != nil {
				t.Fatalf("%s during the outage: %v", path, err)
			}
			if (fileState{string(raw), ino}) != before[path] {
				t.Fatalf("%s changed during the outage", path)
			}
			checks++
		}
		if checks%(secrets*20) == 0 {
			maxBreaker = max(maxBreaker, metricSum(d.metrics(t), "secrets_sidecar_breaker_state"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	body := d.metrics(t)
	failures := metricSum(body, "secrets_sidecar_errors_total")
	if maxBreaker != 2 {
		t.Errorf("breaker state never 2 (open) during the outage; max %v", maxBreaker)
	}
	if !d.running() {
		t.Fatalf("the daemon died during the outage: %v", d.err)
	}

	srv.Restart(t)
	restarted := time.Now()
	for i := range paths {
		srv.PutKV2(t, "secret", fmt.Sprintf("%s/s%02d", p, i), map[string]any{"v": fmt.Sprintf("after-%d", i)})
	}
	// Bound: the breaker may have just opened again (open timeout), then
	// each secret's retry backoff (at most its 1 s interval, +10% jitter).
	bound := openTimeout + 2*time.Second + 5*time.Second
	waitFor(t, bound, "every file to hold the value written after the restart", func() bool {
		for i, path := range paths {
			raw, err := os.ReadFile(path)
			if err != nil || string(raw) != fmt.Sprintf("after-%d", i) {
				return false
			}
		}
		return true
	})
	recovery := time.Since(restarted)
	if took, code := d.term(t, 30*time.Second); code != 0 {
		t.Errorf("exit %d %s after SIGTERM", code, took)
	}
	t.Logf("outage %s: %d file checks, 0 changed or missing; %0.f failed syncs counted; breaker opened (state %v); all %d files fresh %s after the restart (bound %s)",
		outage, checks, failures, maxBreaker, secrets, recovery.Round(10*time.Millisecond), bound)
}

// TestFaultTokenExpiry logs in with AppRole tokens that live 4 s (12 s at
// most) and runs 40 s, more than 3x the max TTL, with a writer changing a
// secret every 2 s: not one failed sync, and the sidecar renewed and logged
// in again along the way.
func TestFaultTokenExpiry(t *testing.T) {
	t.Parallel()
	const secrets, maxTTL, run = 10, 12 * time.Second, 40 * time.Second
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	p := prefix(t)
	srv.Policy(t, p, fmt.Sprintf(`path "secret/data/%s/*" { capabilities = ["read"] }`, p))
	mount := "approle-" + strings.ToLower(p)
	roleID, secretID := srv.AppRole(t, mount, "short", map[string]any{
		"token_policies": []string{p}, "token_ttl": "4s", "token_max_ttl": maxTTL.String(),
	})
	for name, v := range map[string]string{"role-id": roleID, "secret-id": secretID} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	proxy := newFaultProxy(t, srv.Addr)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "vault: {address: %s, auth: {method: approle, approle: {mount: %s, role_id_file: %s/role-id, secret_id_file: %s/secret-id}}}\n",
		proxy.URL, mount, dir, dir)
	cfg.WriteString("defaults: {refresh_interval: 1s}\nsecrets:\n")
	for i := 0; i < secrets; i++ {
		srv.PutKV2(t, "secret", fmt.Sprintf("%s/s%02d", p, i), map[string]any{"v": "0"})
		fmt.Fprintf(&cfg, "  - {name: s%02d, path: %s/s%02d, destination: %s/s%02d, key: v}\n", i, p, i, out, i)
	}
	cfgPath := writeConfig(t, dir, cfg.String())
	addr := freeAddr(t)
	d := startDaemon(t, cfgPath, dir, "SIDECAR_HTTP_ADDR="+addr)
	d.waitReady(t, 30*time.Second)

	start := time.Now()
	version := 0
	for time.Since(start) < run {
		time.Sleep(2 * time.Second)
		version++
		srv.PutKV2(t, "secret", fmt.Sprintf("%s/s%02d", p, version%secrets), map[string]any{"v": strconv.Itoa(version)})
	}
	last := fmt.Sprintf("%s/s%02d", out, version%secrets)
	waitFor(t, 10*time.Second, "the last change to reach its file", func() bool {
		raw, err := os.ReadFile(last)
		return err == nil && string(raw) == strconv.Itoa(version)
	})
	body := d.metrics(t)
	errorsTotal := metricSum(body, "secrets_sidecar_errors_total")
	fetchErrors := metricSum(body, "secrets_sidecar_fetch_total", `result="error"`)
	fetchOK := metricSum(body, "secrets_sidecar_fetch_total", `result="success"`)
	logins, renewals := proxy.count("/login"), proxy.count("/renew-self")
	if took, code := d.term(t, 30*time.Second); code != 0 {
		t.Errorf("exit %d %s after SIGTERM", code, took)
	}
	t.Logf("%s with token_ttl 4s, token_max_ttl %s: %0.f successful fetches, %0.f failed fetches, %0.f sync errors; %d logins, %d renewals; %d changes followed",
		run, maxTTL, fetchOK, fetchErrors, errorsTotal, logins, renewals, version)
	if errorsTotal != 0 || fetchErrors != 0 {
		t.Errorf("%0.f failed syncs, %0.f failed fetches; want 0", errorsTotal, fetchErrors)
	}
	if want := int(run / maxTTL); logins < want+1 {
		t.Errorf("%d logins in %s: the tokens did not reach their max TTL (want at least %d)", logins, run, want+1)
	}
	if fetchOK < float64(secrets)*run.Seconds()*0.5 {
		t.Errorf("only %0.f successful fetches: syncing stalled", fetchOK)
	}
}

// fsImmutableFL is FS_IMMUTABLE_FL from linux/fs.h (x/sys/unix has only
// the equal STATX_ATTR_IMMUTABLE).
const fsImmutableFL = 0x00000010

// makeUnwritable stops anyone, root included, from creating files in dir:
// as root (CAP_DAC_OVERRIDE ignores permission bits) it sets the
// immutable attribute (FS_IMMUTABLE_FL, needs CAP_LINUX_IMMUTABLE and a
// file system that has it, such as ext4, xfs or btrfs);
// otherwise it makes dir read-only with chmod 0555. It returns the undo.
func makeUnwritable(t *testing.T, dir string) func() {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o555); err != nil {
			t.Fatal(err)
		}
		return func() { _ = os.Chmod(dir, 0o755) }
	}
	setFlags := func(set bool) error {
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		defer f.Close()
		flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
		if err != nil {
			return fmt.Errorf("FS_IOC_GETFLAGS: %w", err)
		}
		if set {
			flags |= fsImmutableFL
		} else {
			flags &^= fsImmutableFL
		}
		return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags))
	}
	if err := setFlags(true); err != nil {
		t.Fatalf("cannot make %s immutable (the test needs root with CAP_LINUX_IMMUTABLE and a file system with the attribute, e.g. ext4; set TMPDIR): %v", dir, err)
	}
	undo := func() { _ = setFlags(false) }
	t.Cleanup(undo) // before TempDir's removal, which runs later
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o600); err == nil {
		t.Fatalf("%s is still writable after setting the immutable attribute", dir)
	}
	return undo
}

// TestFaultUnwritableDestination makes one secret's destination directory
// unwritable mid-run: its sync fails at the write stage (errors_total and
// a log line), its old file stays intact, the other secrets keep
// updating, and once the directory is writable again it catches up.
func TestFaultUnwritableDestination(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Shared(t)
	dir := t.TempDir()
	good, locked := filepath.Join(dir, "good"), filepath.Join(dir, "locked")
	p := prefix(t)
	names := []string{"a", "b", "c"}
	var cfg strings.Builder
	cfg.WriteString("defaults: {refresh_interval: 1s}\nsecrets:\n")
	for _, n := range names {
		srv.PutKV2(t, "secret", p+"/"+n, map[string]any{"v": "old-" + n})
		fmt.Fprintf(&cfg, "  - {name: %s, path: %s/%s, destination: %s/%s, key: v}\n", n, p, n, good, n)
	}
	srv.PutKV2(t, "secret", p+"/locked", map[string]any{"v": "old-locked"})
	fmt.Fprintf(&cfg, "  - {name: locked, path: %s/locked, destination: %s/locked, key: v}\n", p, locked)
	cfgPath := writeConfig(t, dir, cfg.String())
	addr := freeAddr(t)
	d := startDaemon(t, cfgPath, dir, "VAULT_ADDR="+srv.Addr, "VAULT_TOKEN="+srv.Token, "SIDECAR_HTTP_ADDR="+addr)
	d.waitReady(t, 30*time.Second)

	undo := makeUnwritable(t, locked)
	for _, n := range append(names, "locked") {
		srv.PutKV2(t, "secret", p+"/"+n, map[string]any{"v": "new-" + n})
	}
	waitFor(t, 15*time.Second, "the other secrets to update and the locked one to fail", func() bool {
		for _, n := range names {
			if raw, _ := os.ReadFile(filepath.Join(good, n)); string(raw) != "new-"+n {
				return false
			}
		}
		return metricSum(d.metrics(t), "secrets_sidecar_errors_total", `secret_name="locked"`, `stage="write"`) >= 2
	})
	body := d.metrics(t)
	writeErrors := metricSum(body, "secrets_sidecar_errors_total", `secret_name="locked"`, `stage="write"`)
	otherErrors := metricSum(body, "secrets_sidecar_errors_total") - writeErrors
	if otherErrors != 0 {
		t.Errorf("%0.f errors for other secrets or stages", otherErrors)
	}
	if raw, err := os.ReadFile(filepath.Join(locked, "locked")); err != nil || string(raw) != "old-locked" {
		t.Errorf("the locked file is %q (%v), want the old content intact", raw, err)
	}
	logged := false
	for _, line := range strings.Split(d.logs.String(), "\n") {
		if strings.Contains(line, "secret sync failed") && strings.Contains(line, `"secret_name":"locked"`) && strings.Contains(line, `"stage":"write"`) {
			logged = true
		}
	}
	if !logged {
		t.Error("no \"secret sync failed\" log line for the locked secret at the write stage")
	}
	snap, err := status.ReadFile(d.status)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snap.Secrets {
		if (s.Name == "locked") != (s.LastError != "") {
			t.Errorf("status: %s has last_error %q", s.Name, s.LastError)
		}
	}

	undo()
	recoverStart := time.Now()
	waitFor(t, 15*time.Second, "the locked secret to catch up once writable", func() bool {
		raw, _ := os.ReadFile(filepath.Join(locked, "locked"))
		return string(raw) == "new-locked"
	})
	if took, code := d.term(t, 30*time.Second); code != 0 {
		t.Errorf("exit %d %s after SIGTERM", code, took)
	}
	t.Logf("unwritable directory (%s): %0.f write-stage errors counted and logged for it, 0 for the others, old file intact; caught up %s after it became writable",
		map[bool]string{true: "immutable attribute", false: "chmod 0555"}[os.Geteuid() == 0], writeErrors, time.Since(recoverStart).Round(10*time.Millisecond))
}

// TestFaultSlowVault puts 2 s of latency on every Vault request and sends
// SIGTERM at random moments: the daemon exits 0 within its shutdown bound
// (SIDECAR_SHUTDOWN_TIMEOUT, plus the margin fx gets for the rest), both
// when in-flight syncs can finish within the timeout and when they cannot,
// and also when the signal arrives while start-up still waits for Vault.
func TestFaultSlowVault(t *testing.T) {
	t.Parallel()
	const secrets, latency = 10, 2 * time.Second
	srv := vaulttest.Shared(t)
	proxy := newFaultProxy(t, srv.Addr)
	proxy.delay.Store(int64(latency))
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	p := prefix(t)
	var cfg strings.Builder
	cfg.WriteString("defaults: {refresh_interval: 1s}\nsecrets:\n")
	for i := 0; i < secrets; i++ {
		srv.PutKV2(t, "secret", fmt.Sprintf("%s/s%02d", p, i), map[string]any{"v": strings.Repeat("x", 1000)})
		fmt.Fprintf(&cfg, "  - {name: s%02d, path: %s/s%02d, destination: %s/s%02d, key: v}\n", i, p, i, out, i)
	}
	cfgPath := writeConfig(t, dir, cfg.String())
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))

	// shutdowns starts the daemon rounds times, waits (wait returns after
	// how long), sends SIGTERM and checks the exit.
	shutdowns := func(t *testing.T, timeout, bound time.Duration, wait func(d *daemon)) string {
		var report strings.Builder
		var worst time.Duration
		for round := 0; round < 4; round++ {
			d := startDaemon(t, cfgPath, dir, "VAULT_ADDR="+proxy.URL, "VAULT_TOKEN="+srv.Token,
				"SIDECAR_SHUTDOWN_TIMEOUT="+timeout.String())
			wait(d)
			took, code := d.term(t, bound+10*time.Second)
			if code != 0 {
				t.Errorf("SIDECAR_SHUTDOWN_TIMEOUT=%s: exit %d after SIGTERM (-1: killed by the signal)", timeout, code)
			}
			if took > bound {
				t.Errorf("SIDECAR_SHUTDOWN_TIMEOUT=%s: exited %s after SIGTERM, over the %s bound", timeout, took, bound)
			}
			worst = max(worst, took)
			fmt.Fprintf(&report, " %s", took.Round(10*time.Millisecond))
		}
		fmt.Fprintf(&report, " (SIDECAR_SHUTDOWN_TIMEOUT=%s, bound %s, worst %s)", timeout, bound, worst.Round(10*time.Millisecond))
		return report.String()
	}

	t.Run("running", func(t *testing.T) {
		// Every sync holds a read for 2 s and the refresh is 1 s: a SIGTERM
		// after ready always finds syncs in flight.
		var report strings.Builder
		for _, timeout := range []time.Duration{5 * time.Second, time.Second} {
			report.WriteString(shutdowns(t, timeout, timeout+stopMargin, func(d *daemon) {
				d.waitReady(t, 60*time.Second)
				time.Sleep(time.Duration(rng.Int64N(int64(3 * time.Second))))
			}))
			report.WriteString(";")
		}
		entries, err := os.ReadDir(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			raw, err := os.ReadFile(filepath.Join(out, e.Name()))
			if !strings.HasPrefix(e.Name(), ".") && (err != nil || len(raw) != 1000) {
				t.Errorf("%s: %d bytes (%v) after the shutdowns", e.Name(), len(raw), err)
			}
		}
		t.Logf("Vault latency %s on every request, SIGTERM after ready, to exit:%s", latency, report.String())
	})
	t.Run("starting", func(t *testing.T) {
		// Start-up checks Vault (health, then the token: 2 x 2 s here,
		// bounded at 5 s): a SIGTERM in that window must still end in a
		// clean exit once start-up is over.
		const timeout = 5 * time.Second
		report := shutdowns(t, timeout, 5*time.Second+timeout+stopMargin, func(*daemon) {
			time.Sleep(200*time.Millisecond + time.Duration(rng.Int64N(int64(3*time.Second))))
		})
		t.Logf("Vault latency %s on every request, SIGTERM during start-up, to exit:%s", latency, report)
	})
}
