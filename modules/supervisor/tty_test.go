package supervisor

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// terminal is the master side of a pseudo-terminal; it collects what the
// processes on the other side write.
type terminal struct {
	master *os.File
	mu     sync.Mutex
	buf    bytes.Buffer
	done   chan struct{}
}

// openTerminal returns the terminal and its slave side.
func openTerminal(t *testing.T) (*terminal, *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{master: master, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			term.mu.Lock()
			term.buf.Write(b[:n])
			term.mu.Unlock()
			if err != nil {
				return // EIO once no process holds the slave side
			}
		}
	}()
	t.Cleanup(func() {
		master.Close()
		<-term.done
		if t.Failed() {
			t.Logf("terminal:\n%s", term.String())
		}
	})
	return term, slave
}

func (term *terminal) String() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.buf.String()
}

// readyPID is the pid of the first "READY <pid>" on the terminal.
func (term *terminal) readyPID(t *testing.T) int {
	t.Helper()
	var pid int
	waitFor(t, 20*time.Second, "READY on the terminal", func() bool {
		_, rest, ok := strings.Cut(term.String(), "READY ")
		if ok {
			pid, _ = strconv.Atoi(strings.Fields(rest)[0])
		}
		return pid > 0
	})
	return pid
}

// ttyHelper runs the tty helper in a session of its own whose controlling
// terminal is term (stdin, stdout and stderr), as a shell would run it.
func ttyHelper(t *testing.T, extra ...string) (*terminal, *exec.Cmd) {
	t.Helper()
	term, slave := openTerminal(t)
	cmd := exec.Command(testBin(t))
	cmd.Env = append(os.Environ(), append([]string{roleEnv + "=helper", "HELPER_MODE=tty",
		"GORACE=atexit_sleep_ms=0", "CHILD_READLINE=1", "CHILD_EXIT=0"}, extra...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return term, cmd
}

// With a terminal as stdin in the foreground, the child gets the
// foreground: it reads what is typed (a background child would be stopped
// by SIGTTIN), and exits, and so does the supervisor, with its code.
func TestTerminalForeground(t *testing.T) {
	term, cmd := ttyHelper(t)
	pid := term.readyPID(t)
	if !strings.Contains(term.String(), "FOREGROUND true") {
		t.Fatal("the helper did not see its terminal in the foreground")
	}
	if _, err := term.master.WriteString("typed on the terminal\n"); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("LINE %d typed on the terminal", pid)
	waitFor(t, 20*time.Second, want, func() bool { return strings.Contains(term.String(), want) })
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

// The control: a child left in the background is stopped when it reads
// the terminal, so the test above can tell.
func TestTerminalBackgroundChildStops(t *testing.T) {
	term, _ := ttyHelper(t, "HELPER_NOFG=1")
	child := term.readyPID(t)
	if _, err := term.master.WriteString("typed on the terminal\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the background child stopped by SIGTTIN", func() bool {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat")
		if err != nil {
			return false
		}
		st, err := ParseStat(b)
		return err == nil && st.State == 'T'
	})
}
