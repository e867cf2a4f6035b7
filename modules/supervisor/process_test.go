package supervisor

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helper starts the helper role in mode with extra environment; its stdout
// (shared with its child) is the returned file.
func helper(t *testing.T, mode string, attr *syscall.SysProcAttr, extra ...string) (*exec.Cmd, *os.File) {
	t.Helper()
	out := outFile(t)
	cmd := exec.Command(testBin(t))
	cmd.Env = append(os.Environ(), append([]string{roleEnv + "=helper", "HELPER_MODE=" + mode, "GORACE=atexit_sleep_ms=0"}, extra...)...)
	cmd.Stdout = out
	stderr, err := os.Create(t.TempDir() + "/stderr")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		stderr.Close()
		if t.Failed() {
			b, _ := os.ReadFile(stderr.Name())
			t.Logf("helper's stderr:\n%s", b)
		}
	})
	return cmd, out
}

// helperChild is the pid of the helper's child (its CHILD line).
func helperChild(t *testing.T, out string) int {
	t.Helper()
	var pid int
	waitFor(t, 20*time.Second, "the helper's CHILD line", func() bool {
		f := fields(out, "CHILD")
		if len(f) > 0 {
			pid, _ = strconv.Atoi(f[0][0])
		}
		return pid > 0
	})
	return pid
}

// TERM, INT, HUP, USR1, USR2 and QUIT sent to the supervising process reach
// the child; the supervisor stays up until the child exits (here of the
// forwarded SIGTERM) and then exits with the child's code, 143.
func TestForwardSignals(t *testing.T) {
	sigfile := t.TempDir() + "/signals"
	cmd, out := helper(t, "forward", nil, "CHILD_SIGFILE="+sigfile)
	child := helperChild(t, out.Name())
	ready(t, out.Name(), child)
	var want []string
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM} {
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		want = append(want, signalName(sig))
		waitFor(t, 10*time.Second, "the child's record of "+signalName(sig), func() bool {
			return slices.Equal(signalsOf(sigfile), want)
		})
	}
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != 128+15 {
		t.Fatalf("helper exited with %v, want exit status 143 (the child's)", err)
	}
}

// SIGKILL of the supervising process kills the child at once, also when
// the supervisor's Start ran on a thread that exited meanwhile.
func TestNoOrphanWhenTheSupervisorIsKilled(t *testing.T) {
	cmd, out := helper(t, "kill", nil, "CHILD_DIE_ON=")
	pid := helperChild(t, out.Name())
	child := procOf(t, pid)
	waitFor(t, 20*time.Second, "ALIVE", func() bool { return len(fields(out.Name(), "ALIVE")) > 0 })
	if len(fields(out.Name(), "THREAD_GONE")) == 0 {
		t.Fatal("the thread that called Start did not exit")
	}
	if d := fields(out.Name(), "DIED"); len(d) > 0 {
		t.Fatalf("the child died when the thread that called Start exited: %v", d)
	}
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	for !child.dead() {
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("child %d still runs 10s after its supervisor was SIGKILLed", pid)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("child dead %s after SIGKILL of its supervisor", time.Since(killed))
}

// The hazard the locked thread avoids: with Pdeathsig, a child started
// from a thread that then exits is killed although its parent lives.
func TestPdeathsigFollowsTheForkingThread(t *testing.T) {
	cmd := exec.Command(testBin(t))
	cmd.Env = childEnv("CHILD_DIE_ON=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error)
	go func() {
		runtime.LockOSThread() // returns locked: the runtime ends the thread
		started <- cmd.Start()
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("child ended with %v, want SIGKILL", cmd.ProcessState)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("the child survived the exit of the thread that forked it: Pdeathsig does not follow the thread here")
	}
}

func signalName(sig syscall.Signal) string {
	return map[syscall.Signal]string{
		syscall.SIGHUP: "HUP", syscall.SIGINT: "INT", syscall.SIGQUIT: "QUIT",
		syscall.SIGUSR1: "USR1", syscall.SIGUSR2: "USR2", syscall.SIGTERM: "TERM",
	}[sig]
}

// Processes the child leaves in sessions of their own (setsid: out of
// reach of the group kill) do not pile up, one set per restart: as the
// subreaper, the sidecar adopts and kills them whenever a child ends.
func TestSubreaperKillsWhatEachChildLeaves(t *testing.T) {
	for _, tc := range []struct {
		name      string
		extra     []string
		wantAlive int
	}{
		{"subreaper", nil, 0},
		// Without it they outlive every restart: what the test guards.
		{"without", []string{"HELPER_NO_SUBREAPER=1"}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, out := helper(t, "subreaper", nil, append([]string{"CHILD_ORPHANS=2", "CHILD_ORPHAN_SLEEP=1h", "HELPER_RESTARTS=3"}, tc.extra...)...)
			err := cmd.Wait()
			for _, f := range fields(out.Name(), "ORPHAN") {
				if pid, _ := strconv.Atoi(f[1]); pid > 0 {
					_ = syscall.Kill(pid, syscall.SIGKILL) // whatever is left
				}
			}
			if err != nil {
				t.Fatalf("helper: %v", err)
			}
			res := fields(out.Name(), "RESULT")
			if len(res) != 1 {
				t.Fatalf("no RESULT: %v", res)
			}
			want := fmt.Sprintf("orphans=8 alive=%d", tc.wantAlive)
			if got := strings.Join(res[0], " "); got != want {
				t.Fatalf("RESULT %s, want %s (2 orphans from each of 4 children)", got, want)
			}
		})
	}
}
