package notify_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// childEnv makes the test binary a small application: it appends
// "ready" and then the name of every SIGHUP and SIGUSR1 it gets to the
// file the variable names.
const childEnv = "NOTIFY_TEST_APP_OUT"

func TestMain(m *testing.M) {
	if out := os.Getenv(childEnv); out != "" {
		runApp(out)
		return
	}
	goleak.VerifyTestMain(m)
}

func runApp(out string) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGUSR1)
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		os.Exit(3)
	}
	_, _ = fmt.Fprintln(f, "ready")
	for s := range ch {
		_, _ = fmt.Fprintln(f, unix.SignalName(s.(syscall.Signal)))
	}
}

// app is a running test application.
type app struct {
	pid int
	out string
}

// startApp runs bin (the test binary or a copy) as an application whose
// argv[0] is argv0, and waits until its signal handler is installed.
func startApp(t *testing.T, bin, argv0 string) *app {
	t.Helper()
	out := filepath.Join(t.TempDir(), "signals")
	cmd := exec.Command(bin)
	cmd.Args = []string{argv0}
	cmd.Env = append(os.Environ(), childEnv+"="+out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	a := &app{pid: cmd.Process.Pid, out: out}
	waitFor(t, 10*time.Second, "the application to start", func() bool {
		b, _ := os.ReadFile(out)
		return strings.HasPrefix(string(b), "ready\n")
	})
	return a
}

// signals are the signals the application got so far.
func (a *app) signals() []string {
	b, _ := os.ReadFile(a.out)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[1:]
}

// pidFile writes the application's PID to a file.
func (a *app) pidFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(p, []byte(strconv.Itoa(a.pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// copyBinary copies the test binary to dir/name (a process of another
// comm).
func copyBinary(t *testing.T, name string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst := filepath.Join(t.TempDir(), name)
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, src); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// outcome is one action run as the Recorder and the StatusSink saw it.
type outcome struct {
	kind   string
	result metrics.Result
}

// runs records every run; it is the Recorder and the StatusSink.
type runs struct {
	mu       sync.Mutex
	done     []outcome
	statuses map[string][]notify.Report
}

func newRuns() *runs { return &runs{statuses: map[string][]notify.Report{}} }

func (r *runs) ActionDone(kind string, result metrics.Result, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = append(r.done, outcome{kind: kind, result: result})
}

// status adapts runs to StatusSink (the method names collide).
type status struct{ r *runs }

func (s status) ActionDone(secret string, rep notify.Report) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.statuses[secret] = append(s.r.statuses[secret], rep)
}

func (r *runs) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.done)
}

func (r *runs) all() []outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]outcome(nil), r.done...)
}

func (r *runs) reports(secret string) []notify.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Report(nil), r.statuses[secret]...)
}

func (r *runs) wait(t *testing.T, n int) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d action runs", n), func() bool { return r.count() >= n })
}

// start runs a Notifier with the real clock and stops it at the end.
func start(t *testing.T, s notify.Settings, o notify.Options) *notify.Notifier {
	t.Helper()
	n := notify.NewNotifier(s, o)
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return n
}

// stopNow stops n and fails the test if pending runs were cut short: once
// it returns every change has run and no run can start again, so counts
// read after it are final (no waiting for a guessed time).
func stopNow(t *testing.T, n *notify.Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// fast are settings for real-clock tests: short windows, quick retries;
// attempts 0 is config.Load's default.
func fast(attempts int) config.Notify {
	if attempts == 0 {
		attempts = config.DefaultAttempts
	}
	return config.Notify{Debounce: config.NewDuration(50 * time.Millisecond), Attempts: attempts}
}

func signalAction(name, pidFile, process string) config.Action {
	return config.Action{Signal: &config.SignalAction{Name: name, PIDFile: pidFile, Process: process}}
}

func execAction(timeout time.Duration, argv ...string) config.Action {
	if timeout <= 0 {
		timeout = config.DefaultExecTimeout // what config.Load fills in
	}
	a := &config.ExecAction{Command: argv, Timeout: config.NewDuration(timeout)}
	return config.Action{Exec: a}
}

// logOutput is a with exec.log_output: true.
func logOutput(a config.Action) config.Action {
	a.Exec.LogOutput = true
	return a
}

func change(secret string, actions ...config.Action) notify.Change {
	return notify.Change{Secret: secret, Destination: "/secrets/" + secret + ".json", Actions: actions}
}
