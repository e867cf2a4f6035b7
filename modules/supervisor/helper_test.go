package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// helperMain is a sidecar stand-in that supervises the child role; the
// tests signal it, kill it, give it a terminal or a PID namespace. It
// prints what the tests check on stdout, which its child shares.
func helperMain() {
	log, err := logging.NewLogger(logging.Options{Level: "debug", Format: "console"}, os.Stderr)
	must(err)
	self, err := os.Executable()
	must(err)
	o := Options{Argv: []string{self}, Env: append(os.Environ(), roleEnv+"=child"), Log: log}
	switch os.Getenv("HELPER_MODE") {
	case "forward":
		helperForward(o)
	case "kill":
		helperKill(o)
	case "pid1":
		helperPID1(o)
	case "tty":
		helperTTY(o)
	case "subreaper":
		helperSubreaper(o)
	}
	fmt.Fprintln(os.Stderr, "unknown HELPER_MODE")
	os.Exit(99)
}

// helperForward forwards its signals to the child and exits with the
// child's exit code, as the sidecar does.
func helperForward(o Options) {
	s, err := New(o)
	must(err)
	stop := ForwardSignals(s)
	must(s.Start())
	fmt.Printf("CHILD %d\n", s.PID())
	<-s.Exited()
	stop()
	os.Exit(s.ExitCode())
}

// helperKill starts the child from a goroutine locked to a thread that then
// exits (the Go runtime ends a thread whose goroutine returns locked), and
// reports ALIVE when the child survived that; the test then SIGKILLs it.
func helperKill(o Options) {
	s, err := New(o)
	must(err)
	started := make(chan error)
	tid := make(chan int, 1)
	go func() {
		runtime.LockOSThread()
		tid <- unix.Gettid()
		started <- s.Start()
	}()
	must(<-started)
	pid := s.PID()
	fmt.Printf("CHILD %d\n", pid)
	thread := fmt.Sprintf("/proc/self/task/%d", <-tid)
	for {
		if _, err := os.Stat(thread); err != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Printf("THREAD_GONE %s\n", thread)
	time.Sleep(200 * time.Millisecond)
	select {
	case <-s.Exited():
		fmt.Printf("DIED %d %d\n", pid, s.ExitCode())
	default:
		fmt.Printf("ALIVE %d\n", pid)
	}
	time.Sleep(time.Hour)
}

// helperPID1 is PID 1 of a new PID namespace: it supervises a child that
// leaves orphans (of its process group, and in sessions of their own) and
// exits with 7, while it runs commands of its own that exit with 5. It
// prints RESULT with what it saw. HELPER_REAPER=none runs it without a
// reaper, HELPER_REAPER=blind with a wait4(-1) loop.
func helperPID1(o Options) {
	must(unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""))
	must(unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""))
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "not PID 1")
		os.Exit(97)
	}
	reaper := &Reaper{}
	switch os.Getenv("HELPER_REAPER") {
	case "none":
	case "blind": // what not to do: wait4(-1) for anything
		go func() {
			for {
				var ws unix.WaitStatus
				if _, err := unix.Wait4(-1, &ws, 0, nil); errors.Is(err, unix.ECHILD) {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	default:
		reaper = StartReaper(o.Log)
	}
	s, err := New(o)
	must(err)

	// Commands the sidecar runs and waits for itself (change actions):
	// registered ones, and plain os/exec ones that wait at once. Each exit
	// is a SIGCHLD, so the reaper scans while they run.
	type result struct{ owned, plain, ok int }
	results := make(chan result)
	go func() {
		var r result
		for i := range 200 {
			cmd := exec.Command("/bin/sh", "-c", "exit 5")
			if i%2 == 0 {
				err = RunCommand(cmd)
				r.owned++
			} else {
				err = cmd.Run()
				r.plain++
			}
			var exit *exec.ExitError
			if errors.As(err, &exit) && exit.ExitCode() == 5 {
				r.ok++
			} else {
				o.Log.Error("command status lost", zap.Error(err))
			}
		}
		results <- r
	}()

	must(s.Start())
	<-s.Exited()
	code := s.ExitCode()
	begin := time.Now()
	r := <-results

	// The orphans exit 300ms after they started; then only PID 1 remains
	// once they have been reaped.
	others := -1
	for time.Since(begin) < 15*time.Second {
		time.Sleep(100 * time.Millisecond)
		if others = countProcesses() - 1; others == 0 {
			break
		}
		if os.Getenv("HELPER_REAPER") == "none" && time.Since(begin) > 2*time.Second {
			break
		}
	}
	zombies, err := zombieChildren("/proc", 1)
	must(err)
	reaper.Stop()
	fmt.Printf("RESULT exit_code=%d others=%d zombies=%d reaped=%d commands=%d/%d+%d cleared_in=%s\n",
		code, others, len(zombies), reaper.Reaped(), r.ok, r.owned, r.plain, time.Since(begin).Round(time.Millisecond))
	os.Exit(0)
}

func countProcesses() int {
	entries, err := os.ReadDir("/proc")
	must(err)
	n := 0
	for _, e := range entries {
		if e.Name()[0] >= '0' && e.Name()[0] <= '9' {
			n++
		}
	}
	return n
}

// helperTTY runs with a terminal as stdin, stdout and stderr (its
// controlling terminal, its process group in the foreground): the child
// reads a line from it. HELPER_NOFG withholds the foreground from the
// child, which the kernel then stops (SIGTTIN) when it reads.
func helperTTY(o Options) {
	s, err := New(o)
	must(err)
	if os.Getenv("HELPER_NOFG") != "" {
		s.foreground = false
	}
	fmt.Printf("FOREGROUND %t\n", s.foreground)
	must(s.Start())
	<-s.Exited()
	os.Exit(s.ExitCode())
}

// helperSubreaper is the sidecar in exec mode (not PID 1): the subreaper of
// a child that leaves orphans in sessions of their own, which it restarts
// HELPER_RESTARTS times and then stops. It relays the child's output and
// prints RESULT with the orphans still alive afterwards.
func helperSubreaper(o Options) {
	reaper := &Reaper{}
	if os.Getenv("HELPER_NO_SUBREAPER") == "" {
		var err error
		reaper, err = StartSubreaper(o.Log)
		must(err)
	}
	r, w, err := os.Pipe()
	must(err)
	o.Stdout = w
	s, err := New(o)
	must(err)
	ready := make(chan struct{}, 1)
	var orphans []int
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			fmt.Println(line)
			f := strings.Fields(line)
			switch {
			case len(f) == 3 && f[0] == "ORPHAN":
				pid, err := strconv.Atoi(f[2])
				must(err)
				mu.Lock()
				orphans = append(orphans, pid)
				mu.Unlock()
			case len(f) == 2 && f[0] == "READY":
				ready <- struct{}{}
			}
		}
	}()
	must(s.Start())
	restarts, err := strconv.Atoi(os.Getenv("HELPER_RESTARTS"))
	must(err)
	for range restarts {
		<-ready
		must(s.Restart(context.Background(), nil))
	}
	<-ready
	must(s.Stop(context.Background()))
	mu.Lock()
	alive := 0
	for _, pid := range orphans {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		if st, err := ParseStat(b); err == nil && st.State != 'Z' {
			alive++
			fmt.Printf("ALIVE %d\n", pid)
		}
	}
	fmt.Printf("RESULT orphans=%d alive=%d\n", len(orphans), alive)
	mu.Unlock()
	reaper.Stop()
	os.Exit(0)
}
