package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
)

// The child gets the environment it is given: the secrets' fields, the
// base without the sidecar's credentials; its stdout is passed through; its exit
// code 0 is reported, and no secret value reaches the logs.
func TestChildSeesItsEnv(t *testing.T) {
	out := outFile(t)
	base := childEnv(
		"VAULT_TOKEN=hvs.sidecar-token", "VAULT_SECRET_ID=sidecar-secret-id",
		"VAULT_ADDR=https://admin:vault-password@vault.example:8200", "VAULT_NAMESPACE=team",
		"OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer otel-token", "CHILD_EXIT=0",
		"GREETING=from-base",
	)
	e := append(ScrubCredentials(base), "API_KEY=api-key-value", "DB_PASSWORD=s3cr3t-value", "GREETING=from-secret")
	log, logs := logtest.New(t)
	s := start(t, Options{Env: e, Stdout: out, Log: log})
	pid := s.PID()
	select {
	case <-s.Exited():
	case <-time.After(20 * time.Second):
		t.Fatal("the child did not exit")
	}
	if got := s.ExitCode(); got != 0 {
		t.Fatalf("ExitCode = %d, want 0", got)
	}
	seen := env(out.Name(), pid)
	for k, want := range map[string]string{
		"DB_PASSWORD": "s3cr3t-value", "API_KEY": "api-key-value", "GREETING": "from-secret",
		"VAULT_ADDR": "https://vault.example:8200", "VAULT_NAMESPACE": "team",
	} {
		if seen[k] != want {
			t.Errorf("child's %s = %q, want %q", k, seen[k], want)
		}
	}
	for _, k := range []string{"VAULT_TOKEN", "VAULT_SECRET_ID", "OTEL_EXPORTER_OTLP_HEADERS"} {
		if v, ok := seen[k]; ok {
			t.Errorf("child sees %s=%q", k, v)
		}
	}
	for _, secret := range []string{"s3cr3t-value", "api-key-value", "hvs.sidecar-token", "vault-password"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs hold %q:\n%s", secret, logs)
		}
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    []string
		signal syscall.Signal
		want   int
	}{
		{name: "exit 0", env: []string{"CHILD_EXIT=0"}, want: 0},
		{name: "exit 3", env: []string{"CHILD_EXIT=3"}, want: 3},
		{name: "killed by SIGTERM", signal: syscall.SIGTERM, want: 128 + 15},
		{name: "killed by SIGKILL", signal: syscall.SIGKILL, want: 128 + 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := outFile(t)
			s := start(t, Options{Env: childEnv(tc.env...), Stdout: out})
			if s.ExitCode() != -1 {
				t.Fatalf("ExitCode while running = %d, want -1", s.ExitCode())
			}
			if tc.signal != 0 {
				ready(t, out.Name(), s.PID())
				if err := s.Signal(tc.signal); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-s.Exited():
			case <-time.After(20 * time.Second):
				t.Fatal("the child did not exit")
			}
			if got := s.ExitCode(); got != tc.want {
				t.Fatalf("ExitCode = %d, want %d", got, tc.want)
			}
			if s.PID() != 0 {
				t.Errorf("PID after the exit = %d, want 0", s.PID())
			}
			if err := s.Signal(syscall.SIGHUP); !errors.Is(err, ErrNoChild) {
				t.Errorf("Signal after the exit = %v, want ErrNoChild", err)
			}
			if err := s.Restart(t.Context(), nil); !errors.Is(err, ErrNoChild) {
				t.Errorf("Restart after the exit = %v, want ErrNoChild", err)
			}
		})
	}
}

// Signal delivers SIGHUP to the child, which keeps running.
func TestSignal(t *testing.T) {
	out := outFile(t)
	sigfile := t.TempDir() + "/signals"
	s := start(t, Options{Env: childEnv("CHILD_SIGFILE=" + sigfile), Stdout: out})
	ready(t, out.Name(), s.PID())
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1} {
		if err := s.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "HUP and USR1 in the child's record", func() bool {
		got := signalsOf(sigfile)
		return slices.Contains(got, "HUP") && slices.Contains(got, "USR1")
	})
	select {
	case <-s.Exited():
		t.Fatal("the child exited on SIGHUP")
	default:
	}
}

// Restart stops the child with StopSignal and starts a new one (new pid,
// new environment, same stdout); the old child's end is not an exit.
func TestRestart(t *testing.T) {
	out := outFile(t)
	dir := t.TempDir()
	s := start(t, Options{Env: childEnv("CHILD_SIGFILE="+dir+"/1", "GENERATION=1", "CHILD_DIE_ON=INT"), Stdout: out,
		StopSignal: syscall.SIGINT, StopTimeout: 20 * time.Second})
	first := s.PID()
	ready(t, out.Name(), first)
	old := procOf(t, first)

	begin := time.Now()
	if err := s.Restart(t.Context(), childEnv("CHILD_SIGFILE="+dir+"/2", "GENERATION=2", "CHILD_DIE_ON=INT")); err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	t.Logf("restart of a child that obeys the stop signal: %s", took)
	if took > 10*time.Second {
		t.Errorf("Restart took %s: it waited for StopTimeout instead of the child's exit", took)
	}
	second := s.PID()
	if second == 0 || second == first {
		t.Fatalf("PID after Restart = %d, first was %d", second, first)
	}
	if !old.dead() {
		t.Fatal("the old child is still running")
	}
	if got := signalsOf(dir + "/1"); !slices.Equal(got, []string{"INT"}) {
		t.Errorf("old child got %v, want [INT]", got)
	}
	ready(t, out.Name(), second)
	if g := env(out.Name(), second)["GENERATION"]; g != "2" {
		t.Errorf("new child's GENERATION = %q, want 2", g)
	}
	if g := env(out.Name(), first)["GENERATION"]; g != "1" {
		t.Errorf("old child's GENERATION = %q, want 1 (same stdout file)", g)
	}
	select {
	case <-s.Exited():
		t.Fatal("Exited closed by a restart")
	default:
	}
	if s.ExitCode() != -1 {
		t.Errorf("ExitCode after a restart = %d, want -1", s.ExitCode())
	}
	// nil keeps the environment.
	if err := s.Restart(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	third := s.PID()
	ready(t, out.Name(), third)
	if g := env(out.Name(), third)["GENERATION"]; g != "2" {
		t.Errorf("GENERATION after Restart(nil) = %q, want 2", g)
	}
}

// A child that ignores StopSignal gets SIGKILL after StopTimeout, and so
// does everything in its process group.
func TestRestartKillsTheGroupAfterStopTimeout(t *testing.T) {
	out := outFile(t)
	sigfile := t.TempDir() + "/signals"
	const stopTimeout = 500 * time.Millisecond
	s := start(t, Options{Env: childEnv("CHILD_SIGFILE="+sigfile, "CHILD_DIE_ON=", "CHILD_GRANDCHILD=1"),
		Stdout: out, StopTimeout: stopTimeout})
	first := s.PID()
	ready(t, out.Name(), first)
	old := procOf(t, first)
	grandchild := procOf(t, grandchildOf(t, out.Name(), first))

	begin := time.Now()
	if err := s.Restart(t.Context(), childEnv("CHILD_EXIT=0")); err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	t.Logf("restart of a child that ignores SIGTERM, StopTimeout %s: %s", stopTimeout, took)
	if took < stopTimeout || took > stopTimeout+5*time.Second {
		t.Errorf("Restart took %s, want StopTimeout (%s) and a little", took, stopTimeout)
	}
	if got := signalsOf(sigfile); !slices.Equal(got, []string{"TERM"}) {
		t.Errorf("old child got %v, want [TERM]", got)
	}
	if !old.dead() {
		t.Error("the old child survived")
	}
	waitFor(t, 5*time.Second, "the grandchild's death", grandchild.dead)
	if s.PID() == first || s.PID() == 0 {
		t.Errorf("PID after Restart = %d", s.PID())
	}
	<-s.Exited() // the new child exits 0 by itself
	if s.ExitCode() != 0 {
		t.Errorf("ExitCode = %d, want 0", s.ExitCode())
	}
}

// Stop ends the child gracefully; it is not an exit. A context that ends
// first cuts StopTimeout short.
func TestStop(t *testing.T) {
	out := outFile(t)
	s := start(t, Options{Env: childEnv(), Stdout: out})
	ready(t, out.Name(), s.PID())
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Exited():
		t.Error("Exited closed by Stop")
	default:
	}
	if s.ExitCode() != 128+15 {
		t.Errorf("ExitCode after Stop = %d, want 143", s.ExitCode())
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := s.Start(); !errors.Is(err, ErrStarted) {
		t.Errorf("Start after Stop = %v, want ErrStarted", err)
	}

	// Ignores SIGTERM, StopTimeout a minute, the context ends after 300ms.
	out = outFile(t)
	s = start(t, Options{Env: childEnv("CHILD_DIE_ON="), Stdout: out, StopTimeout: time.Minute})
	ready(t, out.Name(), s.PID())
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop of a child that ignores SIGTERM, context 300ms: %s", time.Since(begin))
	if time.Since(begin) > 20*time.Second {
		t.Error("Stop waited for StopTimeout despite the context")
	}
	if s.ExitCode() != 128+9 {
		t.Errorf("ExitCode = %d, want 137 (SIGKILL)", s.ExitCode())
	}
}

// When the child exits by itself, what it left in its process group is
// killed too (no orphans).
func TestExitKillsTheRestOfTheGroup(t *testing.T) {
	out := outFile(t)
	// The child exits at once; its grandchild ignores SIGTERM and sleeps.
	s := start(t, Options{Env: childEnv("CHILD_GRANDCHILD=1", "CHILD_EXIT=4"), Stdout: out})
	pid := s.PID()
	<-s.Exited()
	if s.ExitCode() != 4 {
		t.Errorf("ExitCode = %d, want 4", s.ExitCode())
	}
	gc := grandchildOf(t, out.Name(), pid)
	waitFor(t, 5*time.Second, "the grandchild's death", func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(gc))
		if err != nil {
			return true
		}
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(gc) + "/stat")
		st, _ := ParseStat(b)
		return st.State == 'Z'
	})
}

// Stdin, stdout and stderr are the files given (here a pipe for stdin).
func TestStdin(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	out := outFile(t)
	s := start(t, Options{Env: childEnv("CHILD_READLINE=1", "CHILD_EXIT=0"), Stdin: r, Stdout: out})
	if _, err := w.WriteString("over the pipe\n"); err != nil {
		t.Fatal(err)
	}
	<-s.Exited()
	got := fields(out.Name(), "LINE")
	if len(got) != 1 || got[0][1] != "over the pipe" {
		t.Fatalf("child read %v", got)
	}
}

// The command is looked up in the sidecar's PATH (Options.Path), never in
// the child's environment, which may hold a secret's PATH.
func TestLookPathUsesTheSidecarsPATH(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(testBin(t), dir+"/only-here"); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Argv: []string{"only-here"}, Path: "/nonexistent", Env: []string{"PATH=" + dir}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("New = %v, want ErrNotFound: the child's PATH chose the command", err)
	}
	if _, err := New(Options{Argv: []string{"only-here"}, Path: "relative:" + dir + "/../nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("New = %v, want ErrNotFound", err)
	}
	out := outFile(t)
	// The child's PATH is its own: it does not hold dir.
	s := start(t, Options{Argv: []string{"only-here"}, Path: "/nonexistent:" + dir, Env: childEnv("PATH=/nonexistent", "CHILD_EXIT=6"), Stdout: out})
	<-s.Exited()
	if s.ExitCode() != 6 {
		t.Fatalf("ExitCode = %d, want 6", s.ExitCode())
	}
	t.Setenv("PATH", dir)
	if _, err := New(Options{Argv: []string{"only-here"}, Env: []string{"PATH=/nonexistent"}}); err != nil {
		t.Fatalf("New without Path did not use the sidecar's PATH: %v", err)
	}
	if _, err := New(Options{Argv: []string{dir + "/missing"}}); err == nil {
		t.Fatal("New accepted a missing command")
	}
	if _, err := New(Options{}); err == nil {
		t.Fatal("New accepted no command")
	}
}

// A missing command is ErrNotFound (a shell's 127); one that exists but
// cannot be run is ErrNotExecutable (126), by path and found in PATH.
func TestNotFoundAndNotExecutable(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		o    Options
		want error
	}{
		{"missing path", Options{Argv: []string{dir + "/missing"}}, ErrNotFound},
		{"under a file", Options{Argv: []string{plain + "/x"}}, ErrNotFound},
		{"missing in PATH", Options{Argv: []string{"missing"}, Path: dir}, ErrNotFound},
		{"no execute bit", Options{Argv: []string{plain}}, ErrNotExecutable},
		{"a directory", Options{Argv: []string{dir}}, ErrNotExecutable},
		{"no execute bit in PATH", Options{Argv: []string{"plain"}, Path: dir}, ErrNotExecutable},
	} {
		_, err := New(c.o)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: New = %v, want %v", c.name, err, c.want)
		}
		other := ErrNotFound
		if errors.Is(c.want, ErrNotFound) {
			other = ErrNotExecutable
		}
		if errors.Is(err, other) {
			t.Errorf("%s: New = %v is also %v", c.name, err, other)
		}
	}
}

func grandchildOf(t *testing.T, out string, pid int) int {
	t.Helper()
	var gc int
	waitFor(t, 10*time.Second, "GRANDCHILD line", func() bool {
		for _, f := range fields(out, "GRANDCHILD") {
			if f[0] == strconv.Itoa(pid) {
				gc, _ = strconv.Atoi(f[1])
				return true
			}
		}
		return false
	})
	return gc
}

// A SIGTERM that arrives during a Restart is not lost: it reaches the new
// child once it runs, so the sidecar still stops when asked to.
func TestSignalDuringRestartReachesTheNewChild(t *testing.T) {
	out := outFile(t)
	s := start(t, Options{Env: childEnv("CHILD_DIE_ON="), Stdout: out, StopTimeout: 500 * time.Millisecond})
	first := s.PID()
	ready(t, out.Name(), first)
	restarted := make(chan error, 1)
	go func() { restarted <- s.Restart(context.Background(), childEnv()) }()
	waitFor(t, 10*time.Second, "the restart to begin", func() bool { return s.PID() == 0 })
	if err := s.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Exited():
	case <-time.After(20 * time.Second):
		t.Fatal("the new child did not get the SIGTERM")
	}
	if s.ExitCode() != 128+15 {
		t.Errorf("ExitCode = %d, want 143", s.ExitCode())
	}
}
