package supervisor

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// The tests run real processes: the test binary re-executed with
// roleEnv set plays the child (and its children), or a supervising helper
// that the tests signal and kill (the test process itself is never sent a
// signal).
const roleEnv = "SUPERVISOR_TEST_ROLE"

func TestMain(m *testing.M) {
	// Keep the main thread to the main goroutine: the runtime never ends
	// the main thread (it parks it), and the tests need a goroutine that
	// locks its thread and returns to really end that thread.
	runtime.LockOSThread()
	switch os.Getenv(roleEnv) {
	case "":
		goleak.VerifyTestMain(m)
	case "child":
		childMain()
	case "sleeper":
		sleeperMain()
	case "exit":
		code, _ := strconv.Atoi(os.Getenv("EXIT_CODE"))
		os.Exit(code)
	case "helper":
		helperMain()
	default:
		fmt.Fprintln(os.Stderr, "unknown role")
		os.Exit(99)
	}
}

// recorded are the signals the child records.
var recorded = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM}

// childMain is the supervised command. It prints "ENV <pid> NAME=value" for
// its environment, starts what CHILD_GRANDCHILD / CHILD_ORPHANS ask for,
// prints "READY <pid>", appends every signal it gets to CHILD_SIGFILE (and
// dies of the ones in CHILD_DIE_ON, default TERM), echoes a line of stdin as
// "LINE <pid> text" when CHILD_READLINE is set, and exits with CHILD_EXIT
// when set.
func childMain() {
	pid := os.Getpid()
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, recorded...)
	for _, kv := range os.Environ() {
		fmt.Printf("ENV %d %s\n", pid, kv)
	}
	if os.Getenv("CHILD_GRANDCHILD") != "" {
		// In the child's process group, ignoring SIGTERM, forever.
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), roleEnv+"=sleeper")
		must(cmd.Start())
		fmt.Printf("GRANDCHILD %d %d\n", pid, cmd.Process.Pid)
	}
	if n, _ := strconv.Atoi(os.Getenv("CHILD_ORPHANS")); n > 0 {
		// Sessions of their own (out of reach of the group kill), exiting
		// after a moment: once this child is gone they are orphans that
		// become zombies of whoever is PID 1.
		for range n {
			cmd := exec.Command(os.Args[0])
			sleep := "300ms"
			if v := os.Getenv("CHILD_ORPHAN_SLEEP"); v != "" {
				sleep = v
			}
			cmd.Env = append(os.Environ(), roleEnv+"=sleeper", "SLEEP_FOR="+sleep)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			must(cmd.Start())
			fmt.Printf("ORPHAN %d %d\n", pid, cmd.Process.Pid)
		}
	}
	fmt.Printf("READY %d\n", pid)
	if os.Getenv("CHILD_READLINE") != "" {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		must(err)
		fmt.Printf("LINE %d %s\n", pid, strings.TrimSpace(line))
	}
	if code := os.Getenv("CHILD_EXIT"); code != "" {
		n, err := strconv.Atoi(code)
		must(err)
		os.Exit(n)
	}
	dieOn := "TERM"
	if v, ok := os.LookupEnv("CHILD_DIE_ON"); ok {
		dieOn = v
	}
	for sig := range sigs {
		name := strings.TrimPrefix(unix.SignalName(sig.(syscall.Signal)), "SIG")
		if path := os.Getenv("CHILD_SIGFILE"); path != "" {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			must(err)
			_, err = fmt.Fprintln(f, name)
			must(err)
			must(f.Close())
		}
		if slices.Contains(strings.Split(dieOn, ","), name) {
			signal.Reset(sig)
			must(syscall.Kill(pid, sig.(syscall.Signal)))
			time.Sleep(time.Minute)
		}
	}
}

// sleeperMain ignores SIGTERM and sleeps SLEEP_FOR (default: an hour).
func sleeperMain() {
	signal.Ignore(syscall.SIGTERM)
	d, err := time.ParseDuration(os.Getenv("SLEEP_FOR"))
	if err != nil {
		d = time.Hour
	}
	time.Sleep(d)
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(98)
	}
}
