package notify_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// settle is how long a test waits for a signal that must not come.
const settle = 300 * time.Millisecond

func TestSignalOncePerWindowByPIDFile(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, self, "app")
	pidFile := a.pidFile(t)
	r := newRuns()
	n := start(t, notify.Settings{Notify: fast(3), Backoff: 10 * time.Millisecond}, notify.Options{Recorder: r, Status: status{r}})

	// Nothing changed: nothing is sent.
	if got := a.signals(); len(got) != 0 {
		t.Fatalf("signals before any change: %v", got)
	}

	// Three secrets in one window, spelling the same action three ways.
	dotted := filepath.Join(filepath.Dir(pidFile), ".", filepath.Base(pidFile))
	n.Changed(change("db", signalAction("HUP", pidFile, "")))
	n.Changed(change("api", signalAction("SIGHUP", dotted, "")))
	n.Changed(change("tls", signalAction("hup", pidFile, "")))
	r.wait(t, 1)
	waitFor(t, 5*time.Second, "the SIGHUP", func() bool { return len(a.signals()) == 1 })
	// The run was reported: its one attempt is the only signal it sent.
	if got := a.signals(); !slices.Equal(got, []string{"SIGHUP"}) || r.count() != 1 {
		t.Fatalf("3 secrets in one window: signals %v, runs %d, want exactly one SIGHUP and one run", got, r.count())
	}
	for _, s := range []string{"db", "api", "tls"} {
		reps := r.reports(s)
		if len(reps) != 1 || reps[0].Result != metrics.ResultSuccess || reps[0].Kind != notify.KindSignal || reps[0].Target != pidFile || reps[0].Attempts != 1 {
			t.Fatalf("status of %s: %+v", s, reps)
		}
	}

	// Each later window sends one more.
	for window := 2; window <= 3; window++ {
		n.Changed(change("db", signalAction("SIGHUP", pidFile, "")))
		n.Changed(change("api", signalAction("SIGHUP", pidFile, "")))
		r.wait(t, window)
		waitFor(t, 5*time.Second, "the next SIGHUP", func() bool { return len(a.signals()) == window })
	}
	stopNow(t, n)
	if got := a.signals(); len(got) != 3 || r.count() != 3 {
		t.Fatalf("3 windows: signals %v, runs %d; want 3 and 3", got, r.count())
	}
}

func TestSignalByProcessName(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	name := "nfy" + strconv.FormatUint(rand.Uint64N(1<<30), 36)
	byComm := startApp(t, copyBinary(t, name), "launcher")            // comm is name
	byArgv0 := startApp(t, self, filepath.Join("/opt", "bin", name))  // argv[0]'s base is name
	suffix := startApp(t, self, name+"-extra")                        // a longer name
	dir := startApp(t, self, filepath.Join("/opt", name, "other"))    // name only in a directory
	prefix := startApp(t, copyBinary(t, "x"+name), "/usr/bin/x"+name) // comm and argv[0] contain name
	r := newRuns()
	log, logs := logtest.New(t)
	n := start(t, notify.Settings{Notify: fast(1)}, notify.Options{Log: log, Recorder: r, Status: status{r}})

	n.Changed(change("db", signalAction("USR1", "", name)))
	n.Changed(change("api", signalAction("SIGUSR1", "", name)))
	r.wait(t, 1)
	waitFor(t, 5*time.Second, "both targets to get SIGUSR1", func() bool {
		return len(byComm.signals()) == 1 && len(byArgv0.signals()) == 1
	})
	time.Sleep(settle)
	for _, c := range []struct {
		name string
		a    *app
		want int
	}{{"comm match", byComm, 1}, {"argv[0] match", byArgv0, 1}, {"longer name", suffix, 0}, {"directory", dir, 0}, {"prefixed name", prefix, 0}} {
		if got := c.a.signals(); len(got) != c.want || (c.want == 1 && got[0] != "SIGUSR1") {
			t.Errorf("%s: signals %v, want %d SIGUSR1", c.name, got, c.want)
		}
	}
	if reps := r.reports("db"); len(reps) != 1 || reps[0].Result != metrics.ResultSuccess || reps[0].Target != name {
		t.Fatalf("report: %+v", reps)
	}
	if !strings.Contains(logs.String(), `"signalled":2`) {
		t.Fatalf("log does not count 2 signalled processes:\n%s", logs)
	}
}

func TestSignalNoProcessFails(t *testing.T) {
	r := newRuns()
	n := start(t, notify.Settings{Notify: fast(3), Backoff: 10 * time.Millisecond}, notify.Options{Recorder: r, Status: status{r}})
	n.Changed(change("db", signalAction("HUP", "", "no-such-process-anywhere")))
	r.wait(t, 1)
	reps := r.reports("db")
	if len(reps) != 1 || reps[0].Result != metrics.ResultError || reps[0].Attempts != 3 ||
		!strings.Contains(reps[0].Error, `no process named "no-such-process-anywhere"`) {
		t.Fatalf("report: %+v", reps)
	}
	if got := r.all(); got[0].kind != notify.KindSignal || got[0].result != metrics.ResultError {
		t.Fatalf("recorder: %+v", got)
	}
}

// The sidecar never signals itself, even when its own name is configured.
// SIGWINCH is harmless to any other process that might share the name.
func TestSignalNeverSelf(t *testing.T) {
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan os.Signal, 4)
	signal.Notify(got, syscall.SIGWINCH)
	defer signal.Stop(got)
	r := newRuns()
	n := start(t, notify.Settings{Notify: fast(1)}, notify.Options{Recorder: r, Status: status{r}})
	n.Changed(change("db", signalAction("WINCH", "", strings.TrimSpace(string(comm)))))
	r.wait(t, 1)
	// The run found no process: it sent nothing, to itself neither.
	select {
	case s := <-got:
		t.Fatalf("the sidecar signalled itself: %v", s)
	default:
	}
	if reps := r.reports("db"); reps[0].Result != metrics.ResultError || !strings.Contains(reps[0].Error, "no process named") {
		t.Fatalf("report: %+v", reps)
	}
}

func TestPIDFileRules(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	a := startApp(t, self, "app")
	target := a.pidFile(t)
	link := filepath.Join(dir, "link.pid")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A PID nobody holds: a child that has exited and been reaped.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}

	// A co-tenant swaps a parent directory for a link to a directory
	// holding a pid file it may not write (here the application's own), or
	// reaches one through a /proc magic link: neither is followed.
	real := filepath.Join(dir, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(real, "app.pid"), []byte(strconv.Itoa(a.pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "shared")); err != nil {
		t.Fatal(err)
	}
	magic := fmt.Sprintf("/proc/%d/root%s/app.pid", a.pid, real)

	cases := []struct{ name, path, want string }{
		{"symlink", link, "symbolic link"},
		{"symlinked parent", filepath.Join(dir, "shared", "app.pid"), "a directory on its path is a symbolic link"},
		{"magic link parent", magic, "a directory on its path is a symbolic link"},
		{"fifo", fifo, "not a regular file"},
		{"missing", filepath.Join(dir, "missing.pid"), "no such file"},
		{"empty", write("empty.pid", " \n"), "is empty"},
		{"zero", write("zero.pid", "0\n"), "holds 0"},
		{"negative", write("neg.pid", "-1\n"), "negative"},
		{"own PID", write("self.pid", strconv.Itoa(os.Getpid())), "own PID"},
		{"garbage", write("garbage.pid", "app\n"), "does not hold a single process ID"},
		{"two numbers", write("two.pid", "12 13\n"), "does not hold a single process ID"},
		{"plus sign", write("plus.pid", "+12\n"), "does not hold a single process ID"},
		{"wraps to -1", write("wrap.pid", "4294967295\n"), "too large"},
		{"over 64 bytes", write("big.pid", strings.Repeat(" ", 64)+"1"), "file too large"},
		{"dead PID", write("dead.pid", strconv.Itoa(dead.Process.Pid)), "no such process"},
	}
	if os.Geteuid() == 0 {
		// Running as root, as a sidecar may: a file the application owns
		// cannot name another user's process.
		foreign := write("foreign.pid", strconv.Itoa(a.pid))
		if err := os.Chown(foreign, 54321, 54321); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ name, path, want string }{"another user's process", foreign, "owned by uid 54321 but names process"})
	}
	r := newRuns()
	n := start(t, notify.Settings{Notify: fast(1)}, notify.Options{Recorder: r, Status: status{r}})
	for i, c := range cases {
		n.Changed(notify.Change{Secret: c.name, Destination: c.path, Actions: []config.Action{signalAction("HUP", c.path, "")}})
		r.wait(t, i+1)
		reps := r.reports(c.name)
		if len(reps) != 1 || reps[0].Result != metrics.ResultError || !strings.Contains(reps[0].Error, c.want) {
			t.Errorf("%s: report %+v, want an error containing %q", c.name, reps, c.want)
			continue
		}
		t.Logf("%s: %s", c.name, reps[0].Error)
	}
	if got := a.signals(); len(got) != 0 {
		t.Fatalf("a refused pid file signalled the application: %v", got)
	}

	// The same file with surrounding whitespace is fine.
	ok := write("ok.pid", "\n  "+strconv.Itoa(a.pid)+"  \n")
	n.Changed(notify.Change{Secret: "ok", Destination: ok, Actions: []config.Action{signalAction("HUP", ok, "")}})
	r.wait(t, len(cases)+1)
	if reps := r.reports("ok"); reps[0].Result != metrics.ResultSuccess {
		t.Fatalf("valid pid file: %+v", reps)
	}
	waitFor(t, 5*time.Second, "the SIGHUP", func() bool { return len(a.signals()) == 1 })
}

func TestSignalUnknownNameFailsAtOnce(t *testing.T) {
	r := newRuns()
	n := start(t, notify.Settings{Notify: fast(3), Backoff: time.Hour}, notify.Options{Recorder: r, Status: status{r}})
	n.Changed(change("db", signalAction("SIGNOPE", "/run/app.pid", "")))
	r.wait(t, 1)
	if reps := r.reports("db"); reps[0].Attempts != 1 || !strings.Contains(reps[0].Error, `unknown signal "SIGNOPE"`) {
		t.Fatalf("report: %+v", reps)
	}
}
