package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
)

func writeStatus(t *testing.T, s status.Snapshot) string {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "status.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readySnapshot(age time.Duration) status.Snapshot {
	return status.Snapshot{
		Ready: true, UpdatedAt: time.Now().Add(-age), MaxRefreshInterval: time.Minute,
		Secrets: []status.SecretState{
			{Name: "db", VaultPath: "secret/db", RefreshInterval: time.Minute, Ready: true},
			{Name: "tls", VaultPath: "secret/tls", RefreshInterval: 30 * time.Second, Ready: true},
		},
	}
}

func TestIsReady(t *testing.T) {
	t.Setenv("SIDECAR_STATUS_FILE", "")
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte("{\"ready\": tr"), 0o644)
	notReady := readySnapshot(time.Second)
	notReady.Ready = false
	notReady.Secrets[1].Ready = false
	notReady.Secrets[1].LastError = "vault: permission denied"
	stopped := readySnapshot(0)
	stopped.Ready, stopped.Stopped = false, true

	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring; "" = empty
		stderr string // substring; "" = empty
	}{
		{"ready and fresh", []string{"--status-file", writeStatus(t, readySnapshot(10*time.Second))}, exitOK, "ready: 2 secrets, updated 10s ago", ""},
		{"within default max age (2x longest interval)", []string{"--status-file", writeStatus(t, readySnapshot(110*time.Second))}, exitOK, "ready:", ""},
		{"stale by default", []string{"--status-file", writeStatus(t, readySnapshot(3*time.Minute))}, exitFailure, "", "stale: last updated 3m0s ago"},
		{"stale for --max-age", []string{"--status-file", writeStatus(t, readySnapshot(30*time.Second)), "--max-age", "10s"}, exitFailure, "", "more than the max age of 10s"},
		{"fresh for a longer --max-age", []string{"--status-file", writeStatus(t, readySnapshot(3*time.Minute)), "--max-age", "1h"}, exitOK, "ready:", ""},
		{"not ready names the secret", []string{"--status-file", writeStatus(t, notReady)}, exitFailure, "", "not ready: 1 of 2 secrets not written yet: tls (last error: vault: permission denied)"},
		{"daemon stopped", []string{"--status-file", writeStatus(t, stopped)}, exitFailure, "", "not ready: the daemon stopped"},
		{"missing file", []string{"--status-file", filepath.Join(dir, "nope.json")}, exitFailure, "", "no status file at " + filepath.Join(dir, "nope.json")},
		{"not JSON", []string{"--status-file", garbage}, exitFailure, "", "status file " + garbage + " is not valid"},
		{"a directory", []string{"--status-file", dir}, exitFailure, "", "not a regular file"},
		{"negative max age", []string{"--status-file", garbage, "--max-age", "-1s"}, exitUsage, "", "--max-age must not be negative"},
		{"bad max age", []string{"--max-age", "soon"}, exitUsage, "", "invalid value"},
	} {
		code, out, errOut := runCLI(t, append([]string{"isready"}, c.args...)...)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d (stderr %q)", c.name, code, c.code, errOut)
		}
		if (c.stdout == "") != (out == "") || !strings.Contains(out, c.stdout) {
			t.Errorf("%s: stdout %q, want %q", c.name, out, c.stdout)
		}
		if (c.stderr == "") != (errOut == "") || !strings.Contains(errOut, c.stderr) {
			t.Errorf("%s: stderr %q, want %q", c.name, errOut, c.stderr)
		}
		if c.code == exitFailure && strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: want exactly one line on stderr, got %q", c.name, errOut)
		}
	}
}

// TestIsReadyEnvironment: SIDECAR_STATUS_FILE names the file when the flag
// does not; the flag wins; an invalid unrelated SIDECAR_* variable does not
// break the healthcheck; unset, the default path is read.
func TestIsReadyEnvironment(t *testing.T) {
	t.Setenv("SIDECAR_SHUTDOWN_TIMEOUT", "soon")
	t.Setenv("SIDECAR_LOG_LEVEL", "chatty")
	ready := writeStatus(t, readySnapshot(0))
	t.Setenv("SIDECAR_STATUS_FILE", ready)
	if code, _, errOut := runCLI(t, "isready"); code != exitOK {
		t.Fatalf("from SIDECAR_STATUS_FILE: exit %d %q", code, errOut)
	}
	missing := filepath.Join(t.TempDir(), "missing.json")
	if code, _, errOut := runCLI(t, "isready", "--status-file", missing); code != exitFailure || !strings.Contains(errOut, missing) {
		t.Fatalf("the flag must win: exit %d %q", code, errOut)
	}
	os.Unsetenv("SIDECAR_STATUS_FILE")
	code, _, errOut := runCLI(t, "isready")
	if _, statErr := os.Stat(status.DefaultFile); os.IsNotExist(statErr) {
		if code != exitFailure || !strings.Contains(errOut, "no status file at "+status.DefaultFile) {
			t.Fatalf("default path: exit %d %q", code, errOut)
		}
	} else if code != exitOK && !strings.Contains(errOut, status.DefaultFile) {
		// A daemon on this machine owns the default file; the message
		// must still name it.
		t.Fatalf("default path: exit %d %q", code, errOut)
	}
}

// TestIsReadyReadsTheTrackersFile: the file the daemon's tracker writes is
// what isready reads, through the whole life cycle.
func TestIsReadyReadsTheTrackersFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "status.json")
	tr := status.NewTracker(path, nil, nil, nil)
	tr.Configure([]status.SecretInfo{{Name: "db", VaultPath: "secret/db", RefreshInterval: time.Minute}})
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "isready", "--status-file", path); code != exitFailure || !strings.Contains(errOut, "not written yet: db") {
		t.Fatalf("before the first write: exit %d %q", code, errOut)
	}
	tr.Succeeded("db", time.Now(), 1)
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "isready", "--status-file", path); code != exitOK {
		t.Fatalf("ready: exit %d %q %q", code, out, errOut)
	}
	if err := tr.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "isready", "--status-file", path); code != exitFailure || !strings.Contains(errOut, "daemon stopped") {
		t.Fatalf("after stop: exit %d %q", code, errOut)
	}
}

// TestIsReadyRefusesForgedStatus replays what another user of a shared
// /tmp can do, each refused with exit 1 and one line saying why:
// a world-writable status directory of theirs with a forged "ready" file
// (the daemon refuses the directory, so /ready says 503 while the file
// says ready), a status file linked to /dev/zero (it used to run isready
// out of memory), a file larger than 64 MiB, and an updated_at far in the
// future that would stay "fresh" for ever.
func TestIsReadyRefusesForgedStatus(t *testing.T) {
	base := t.TempDir()
	forgedDir := filepath.Join(base, "secrets-sidecar")
	if err := os.Mkdir(forgedDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(forgedDir, 0o777); err != nil {
		t.Fatal(err)
	}
	forged := filepath.Join(forgedDir, "status.json")
	data, err := json.Marshal(readySnapshot(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(forged, data, 0o600); err != nil {
		t.Fatal(err)
	}
	wantForged := "is owned by uid 65534, not by this process (uid 0); refusing to trust it"
	if os.Geteuid() == 0 {
		for _, p := range []string{forgedDir, forged} {
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}
	} else { // a user cannot give a file away: the forgeable kind is one anybody may write
		if err := os.Chmod(forged, 0o666); err != nil {
			t.Fatal(err)
		}
		wantForged = "is writable by group or others (mode 0666); refusing to trust it"
	}
	// The daemon will not write there, so its /ready (the tracker) is not
	// ready while the forged file says ready.
	tr := status.NewTracker(forged, nil, nil, nil)
	tr.Configure([]status.SecretInfo{{Name: "db", VaultPath: "secret/db", RefreshInterval: time.Minute}})
	if err := tr.Flush(); !errors.Is(err, status.ErrUntrusted) {
		t.Fatalf("the daemon wrote into another user's world-writable directory: %v", err)
	}
	if tr.Snapshot().Ready {
		t.Fatal("/ready would say ready")
	}

	zero := filepath.Join(base, "zero.json")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(base, "big.json")
	if err := os.WriteFile(big, append(data, bytes.Repeat([]byte(" "), status.MaxFileSize)...), 0o644); err != nil {
		t.Fatal(err)
	}
	future := readySnapshot(0)
	future.UpdatedAt = time.Now().Add(time.Hour)

	for _, c := range []struct{ name, path, want string }{
		{"forged in another user's directory", forged, "isready: status file " + forged + " " + wantForged},
		{"linked to /dev/zero", zero, "isready: status file " + zero + ": is a symbolic link: refusing to follow it"},
		{"/dev/zero itself", "/dev/zero", "isready: status file /dev/zero: not a regular file"},
		{"larger than 64 MiB", big, "isready: status file " + big + ": file too large"},
		{"from the future", writeStatus(t, future), "is 1h0m0s in the future, more than 5s"},
	} {
		start := time.Now()
		code, out, errOut := runCLI(t, "isready", "--status-file", c.path)
		if code != exitFailure || out != "" || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and one line with %q", c.name, code, out, errOut, c.want)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: took %s", c.name, took)
		}
	}
}

// TestStatusCommand: `status` prints the tracker's file as a table, one
// row per secret with its source, version or lease expiry, last change,
// next action (a lease's renewal rather than a refresh) and last error;
// a lease with less than leases.min_remaining left is EXPIRING and makes
// the sidecar not ready for isready too; a missing file is exit 1.
func TestStatusCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "status.json")
	tr := status.NewTracker(path, nil, nil, nil)
	tr.Configure([]status.SecretInfo{
		{Name: "db", VaultPath: "secret/db", RefreshInterval: time.Minute, Source: "kv"},
		{Name: "pg", VaultPath: "database/creds/app", RefreshInterval: time.Minute, Source: "lease", MinRemaining: 10 * time.Minute},
	})
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Stop(context.Background()) })
	tr.Succeeded("db", time.Now(), 4)
	tr.Succeeded("pg", time.Now(), 0)
	tr.Changed("pg", time.Now().Add(-90*time.Second))
	tr.LeaseExpiry("pg", time.Now().Add(time.Hour))
	tr.Next("pg", "renew", time.Now().Add(40*time.Second))
	tr.Certificate("db", "3a:0f:c2", time.Date(2031, 5, 4, 12, 0, 0, 0, time.Local))
	tr.Failed("db", time.Now(), "vault read secret/db: permission denied (HTTP 403)")
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "status", "--status-file", path)
	if code != exitOK {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"ready (updated", "SECRET", "db", "kv", "v4", "permission denied (HTTP 403)", "pg", "lease", "(in ", "1m30s ago", "renew in 4", "refresh in 1m0s", "3a:0f:c2 until 2031-05-04 12:00:00"} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "EXPIRING") {
		t.Errorf("an hour left with min_remaining 10m is not expiring:\n%s", out)
	}
	tr.LeaseExpiry("pg", time.Now().Add(5*time.Minute))
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, out, _ := runCLI(t, "status", "--status-file", path); !strings.Contains(out, "EXPIRING") || !strings.Contains(out, "not ready: leases expiring") {
		t.Errorf("5 minutes left with min_remaining 10m:\n%s", out)
	}
	if code, _, errOut := runCLI(t, "isready", "--status-file", path); code != exitFailure || !strings.Contains(errOut, "pg (lease expires") {
		t.Errorf("isready with an expiring lease: exit %d %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "status", "--status-file", path+".missing"); code != exitFailure || !strings.Contains(errOut, "no status file") {
		t.Errorf("status without a file: exit %d %q", code, errOut)
	}
}
