package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/modules/supervisor"
)

const (
	// maxPIDFile is the most a pid file may hold.
	maxPIDFile = 64
	// maxCmdline is how much of /proc/<pid>/cmdline is read for argv[0].
	maxCmdline = 4096
	// maxListedFailures bounds the per-target errors quoted in an error.
	maxListedFailures = 5
)

// signalAction sends a signal to the PID of a pid file or to every process
// of a name.
type signalAction struct {
	sig     unix.Signal
	pidFile string
	process string
}

func (a *signalAction) kind() string { return KindSignal }

func (a *signalAction) target() string {
	if a.pidFile != "" {
		return a.pidFile
	}
	return a.process
}

func (a *signalAction) run(_ context.Context, n *Notifier, _ input) ([]zap.Field, error) {
	name := unix.SignalName(a.sig)
	var pids []int
	if a.pidFile != "" {
		pid, owner, err := readPIDFile(a.pidFile, n.self)
		if err != nil {
			return nil, err
		}
		if err := ownedBy(n.procRoot, a.pidFile, pid, owner); err != nil {
			return nil, err
		}
		pids = []int{pid}
	} else {
		found, err := findProcesses(n.procRoot, a.process, n.self)
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return []zap.Field{zap.Int("signalled", 0), zap.Int("failed_targets", 0)},
				fmt.Errorf("%s: no process named %q (is the PID namespace shared?)", name, a.process)
		}
		pids = found
	}
	var failed []string
	gone := 0
	for _, pid := range pids {
		err := unix.Kill(pid, a.sig)
		switch {
		case errors.Is(err, unix.ESRCH) && a.pidFile == "":
			gone++ // found by name, exited since: nothing left to tell
		case err != nil:
			failed = append(failed, fmt.Sprintf("pid %d: %v", pid, err))
		}
	}
	nFailed := len(failed)
	fields := []zap.Field{zap.String("signal", name), zap.Int("signalled", len(pids)-nFailed-gone),
		zap.Int("failed_targets", nFailed)}
	if gone > 0 {
		fields = append(fields, zap.Int("gone", gone))
	}
	if gone == len(pids) {
		return fields, fmt.Errorf("%s: every process named %q exited before it could be signalled", name, a.process)
	}
	if nFailed > 0 {
		more := ""
		if len(failed) > maxListedFailures {
			failed, more = failed[:maxListedFailures], "; ..."
		}
		return fields, fmt.Errorf("%s: %d of %d processes could not be signalled: %s%s",
			name, nFailed, len(pids), strings.Join(failed, "; "), more)
	}
	return fields, nil
}

// readPIDFile reads a pid file the application controls: no-follow, a
// regular file of at most 64 bytes holding exactly one integer from 1 to
// 2^31-1 (surrounding whitespace allowed) that is not self. 0 and negative
// numbers would signal process groups, and larger ones are cut to 32 bits
// by kill(2) (4294967295 is -1: every process). owner is the file's uid.
func readPIDFile(path string, self int) (pid int, owner uint32, err error) {
	data, fi, err := files.ReadNoLinks(path, maxPIDFile)
	if err != nil {
		return 0, 0, fmt.Errorf("pid file: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		owner = st.Uid
	}
	s := strings.TrimSpace(string(data))
	switch {
	case s == "":
		return 0, 0, fmt.Errorf("pid file %s is empty", path)
	case strings.HasPrefix(s, "-") && allDigits(s[1:]):
		return 0, 0, fmt.Errorf("pid file %s holds a negative number, which would signal a process group: refusing", path)
	case !allDigits(s):
		return 0, 0, fmt.Errorf("pid file %s does not hold a single process ID", path)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil || n > math.MaxInt32:
		return 0, 0, fmt.Errorf("pid file %s holds a number too large to be a process ID: refusing", path)
	case n == 0:
		return 0, 0, fmt.Errorf("pid file %s holds 0, which would signal the sidecar's own process group: refusing", path)
	case int(n) == self:
		return 0, 0, fmt.Errorf("pid file %s holds the sidecar's own PID %d: refusing", path, n)
	}
	return int(n), owner, nil
}

// ownedBy refuses a pid file that names a process its owner could not
// signal itself: unless root owns the file, the process's real or
// effective uid must be the file's owner. Without this rule an
// application could have a sidecar running as root signal any process it
// can see in a shared PID namespace.
func ownedBy(procRoot, path string, pid int, owner uint32) error {
	if owner == 0 {
		return nil
	}
	status, err := readPrefix(filepath.Join(procRoot, strconv.Itoa(pid), "status"), 4096)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pid file %s: process %d: %w", path, pid, unix.ESRCH)
		}
		return fmt.Errorf("pid file %s: process %d: %w", path, pid, err)
	}
	for line := range strings.SplitSeq(status, "\n") {
		ids, ok := strings.CutPrefix(line, "Uid:")
		if !ok {
			continue
		}
		f := strings.Fields(ids)
		own := strconv.FormatUint(uint64(owner), 10)
		if len(f) >= 2 && (f[0] == own || f[1] == own) {
			return nil
		}
		uid := "?"
		if len(f) > 0 {
			uid = f[0]
		}
		return fmt.Errorf("pid file %s is owned by uid %d but names process %d of uid %s: refusing (a pid file may only name its owner's processes, unless root owns it)",
			path, owner, pid, uid)
	}
	return fmt.Errorf("pid file %s: process %d: no Uid line in its status", path, pid)
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// findProcesses lists the processes under root (a procfs) whose comm is
// name exactly or whose argv[0] has the base name name, except self.
func findProcesses(root, name string, self int) ([]int, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	parents := map[int]int{} // matching pid -> its parent
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 || pid > math.MaxInt32 || pid == self || !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if processNamed(dir, name) {
			parents[pid] = parentOf(dir)
		}
	}
	// The top of each same-named tree only: an nginx master, not its
	// workers; a shell script, not the subshells it forks (which a signal
	// they do not handle would kill).
	var pids []int
	for pid, ppid := range parents {
		if _, parentMatches := parents[ppid]; !parentMatches {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// parentOf is a process's parent PID from its stat file (0 when unknown).
func parentOf(dir string) int {
	stat, err := readPrefix(filepath.Join(dir, "stat"), 1024)
	if err != nil {
		return 0
	}
	st, err := supervisor.ParseStat([]byte(stat))
	if err != nil {
		return 0
	}
	return st.PPID
}

func processNamed(dir, name string) bool {
	if comm, err := readPrefix(filepath.Join(dir, "comm"), 64); err == nil && strings.TrimSuffix(comm, "\n") == name {
		return true
	}
	cmdline, err := readPrefix(filepath.Join(dir, "cmdline"), maxCmdline)
	if err != nil {
		return false // gone, or not ours to read
	}
	argv0, _, _ := strings.Cut(cmdline, "\x00")
	return argv0 != "" && filepath.Base(argv0) == name
}

// readPrefix reads at most limit bytes of a procfs file (whose size stat
// reports as 0).
func readPrefix(path string, limit int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return string(b), nil
}
