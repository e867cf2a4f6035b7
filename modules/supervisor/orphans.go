package supervisor

import (
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

const (
	// orphanRounds bounds the kill rounds of killOrphans: each round kills
	// the orphans found, whose own children then become ours.
	orphanRounds = 64
	// orphanWait bounds the wait for one round's victims to die.
	orphanWait = 5 * time.Second
)

// adopting is set by StartSubreaper: the orphans of our children are ours,
// and a child's end kills every one of them.
var adopting atomic.Bool

// StartSubreaper makes this process the subreaper of its descendants
// (PR_SET_CHILD_SUBREAPER; PID 1 is one already): a process that the child
// leaves behind, even one in a session of its own (setsid, a daemon's
// double fork), becomes our child instead of init's. From then on,
// whenever a supervised child ends (exit, Restart, Stop) every such orphan
// and whatever it started is killed, so nothing piles up across restarts;
// and the returned Reaper reaps them. Commands the sidecar waits for
// itself (Own, StartCommand, RunCommand) are not orphans, but what they
// leave behind is. Stop the Reaper before exit.
func StartSubreaper(log *zap.Logger) (*Reaper, error) {
	if os.Getpid() != 1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return &Reaper{}, err
		}
	}
	adopting.Store(true)
	return startReaper(log, "/proc"), nil
}

// killOrphans kills every live child of this process that nobody owns
// (see Own), round after round, until none is left: a killed orphan's own
// children become ours when it dies. It returns how many it killed.
func killOrphans(log *zap.Logger) int {
	if !adopting.Load() {
		return 0
	}
	owned.spawning.Lock() // no process between fork and registration; no reaping meanwhile
	defer owned.spawning.Unlock()
	self, killed := os.Getpid(), 0
	for range orphanRounds {
		victims, err := liveChildren("/proc", self)
		if err != nil {
			log.Warn("cannot look for the child's orphans", zap.Error(err))
			return killed
		}
		var sent []int
		for _, pid := range victims {
			if isOwned(pid) {
				continue
			}
			// Our child, not reaped (the reaper waits for this lock), so
			// the pid cannot have been reused.
			if err := unix.Kill(pid, unix.SIGKILL); err == nil {
				sent = append(sent, pid)
			}
		}
		if len(sent) == 0 {
			return killed
		}
		killed += len(sent)
		waitDead(sent)
	}
	log.Warn("orphans still appearing after many rounds of killing them", zap.Int("killed", killed))
	return killed
}

// waitDead waits, bounded by orphanWait, until each of our children in
// pids is a zombie (its children are then reparented to us).
func waitDead(pids []int) {
	deadline := time.Now().Add(orphanWait)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			// WNOWAIT: the zombie stays for the reaper; WNOHANG: never
			// block. Linux leaves info zeroed while the child still runs.
			var info unix.Siginfo
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
			if err != nil || info.Signo != 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// liveChildren lists the processes in proc whose parent is ppid and that
// are not zombies.
func liveChildren(proc string, ppid int) ([]int, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile(proc + "/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		if st, err := ParseStat(b); err == nil && st.PPID == ppid && st.State != 'Z' && st.State != 'X' {
			out = append(out, pid)
		}
	}
	return out, nil
}
