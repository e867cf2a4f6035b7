package supervisor

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
)

func testBin(t *testing.T) string {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// childEnv is the test's environment plus the child role and extra.
func childEnv(extra ...string) []string {
	return append(append(os.Environ(), roleEnv+"=child", "GORACE=atexit_sleep_ms=0"), extra...)
}

// outFile is a file the child's stdout appends to, shared by restarts.
func outFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile(t.TempDir()+"/out", os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// fields are the space-separated fields of the lines of path that start
// with tag.
func fields(path, tag string) [][]string {
	b, _ := os.ReadFile(path)
	var out [][]string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, " ", 3)
		if f[0] == tag {
			out = append(out, f[1:])
		}
	}
	return out
}

// env is what the child with pid printed as its environment.
func env(path string, pid int) map[string]string {
	m := map[string]string{}
	for _, f := range fields(path, "ENV") {
		if len(f) == 2 && f[0] == strconv.Itoa(pid) {
			k, v, _ := strings.Cut(f[1], "=")
			m[k] = v
		}
	}
	return m
}

func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: still waiting for %s", bound, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ready waits for the child pid to print READY (its signal handlers are
// in place).
func ready(t *testing.T, out string, pid int) {
	t.Helper()
	waitFor(t, 20*time.Second, "READY from child "+strconv.Itoa(pid), func() bool {
		for _, f := range fields(out, "READY") {
			if f[0] == strconv.Itoa(pid) {
				return true
			}
		}
		return false
	})
}

// signalsOf are the signals the child recorded in sigfile.
func signalsOf(sigfile string) []string {
	b, _ := os.ReadFile(sigfile)
	return strings.Fields(string(b))
}

// process is a process identity: pid and start time (pids are reused).
type process struct {
	pid   int
	start uint64
}

func procOf(t *testing.T, pid int) process {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStat(b)
	if err != nil {
		t.Fatal(err)
	}
	return process{pid, st.Start}
}

// dead reports whether p has exited (gone, or a zombie nobody reaped yet).
func (p process) dead() bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/stat")
	if err != nil {
		return true
	}
	st, err := ParseStat(b)
	return err != nil || st.Start != p.start || st.State == 'Z'
}

func testLog(t *testing.T) *zap.Logger {
	log, _ := logtest.New(t)
	return log
}

// start is a started Supervisor of the child role, stopped at the end.
func start(t *testing.T, o Options) *Supervisor {
	t.Helper()
	if o.Argv == nil {
		o.Argv = []string{testBin(t)}
	}
	if o.Log == nil {
		o.Log = testLog(t)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}
