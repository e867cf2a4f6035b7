package supervisor

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// child is one run of the command.
type child struct {
	cmd  *exec.Cmd
	log  *zap.Logger
	pid  int
	done chan struct{} // closed once the child has been reaped; code is set
	code int
	// waitErr is a failure to read the exit status (not an exit status).
	waitErr error

	mu   sync.Mutex
	gone bool // the child has exited and its group was killed: the group id may be free
}

// startChild starts cmd on an OS thread of its own, which stays locked to
// the goroutine that waits for the child: the kernel sends the parent-death
// signal when the thread that forked the child exits, and the Go runtime
// exits idle threads (and every thread a goroutine locked and then left).
// onExit runs on that goroutine once the child has been reaped.
func startChild(cmd *exec.Cmd, log *zap.Logger, onExit func(*child)) (*child, error) {
	c := &child{cmd: cmd, log: log, done: make(chan struct{}), code: -1}
	started := make(chan error, 1)
	go c.run(started, onExit)
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

func (c *child) run(started chan<- error, onExit func(*child)) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread() // only after the child has been reaped

	release, err := Own(func() (int, error) {
		if err := c.cmd.Start(); err != nil {
			return 0, err
		}
		return c.cmd.Process.Pid, nil
	})
	if err != nil {
		started <- err
		return
	}
	c.pid = c.cmd.Process.Pid
	started <- nil

	c.code = c.wait()
	release()
	close(c.done)
	onExit(c)
}

// wait waits for the child to exit, kills what is left of its process group
// while the child's zombie still holds the group id (so the id cannot have
// been reused), then reaps the child and returns its exit code.
func (c *child) wait() int {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, c.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	c.mu.Lock()
	c.gone = true
	_ = unix.Kill(-c.pid, unix.SIGKILL) // ESRCH: the child was alone
	c.mu.Unlock()
	// What left the group (setsid, a daemon's double fork) was reparented
	// to us as the child exited, when we are the subreaper.
	if n := killOrphans(c.log); n > 0 {
		c.log.Info("killed processes the child left behind", zap.Int("pid", c.pid), zap.Int("killed", n))
	}
	var exit *exec.ExitError
	if err := c.cmd.Wait(); err != nil && !errors.As(err, &exit) {
		c.waitErr = err
	}
	return exitCode(c.cmd.ProcessState)
}

// killGroup sends SIGKILL to the child's process group (the child included)
// unless the child is already gone (then wait did it).
func (c *child) killGroup() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gone {
		_ = unix.Kill(-c.pid, unix.SIGKILL)
	}
}

// signal sends sig to the child process alone (through its pidfd where the
// kernel has them, so never to a process that reused the pid).
func (c *child) signal(sig syscall.Signal) error {
	err := c.cmd.Process.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return ErrNoChild
	}
	return err
}

// exitCode is the code a shell reports for a finished process: its exit
// status, or 128+N when signal N killed it; 1 when the status is unknown
// (something else reaped the child, which the reaper's registry prevents).
func exitCode(ps *os.ProcessState) int {
	if ps == nil {
		return 1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	if code := ps.ExitCode(); code >= 0 {
		return code
	}
	return 1
}
