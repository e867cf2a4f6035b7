package supervisor

import (
	"os/exec"
	"sync"
)

// owned is the registry of child processes that somebody waits for, which
// the reaper must leave alone. Process-wide, as child processes are.
var owned struct {
	// spawning is read-locked while a process starts and is registered,
	// write-locked while the reaper looks for zombies: the reaper never
	// sees a process between its fork and its registration.
	spawning sync.RWMutex

	mu   sync.Mutex
	pids map[int]int // pid -> registrations
}

// Own runs start, which starts one child process and returns its pid, and
// registers that process as owned: the PID 1 reaper (StartReaper) does not
// reap it, so the owner's wait gets its exit status. Call release once the
// process has been waited for. start must not call Own. Use it for every
// process the sidecar starts and waits for while the reaper may run;
// StartCommand and RunCommand do it for os/exec.
func Own(start func() (pid int, err error)) (release func(), err error) {
	owned.spawning.RLock()
	defer owned.spawning.RUnlock()
	pid, err := start()
	if err != nil {
		return func() {}, err
	}
	owned.mu.Lock()
	if owned.pids == nil {
		owned.pids = make(map[int]int)
	}
	owned.pids[pid]++
	owned.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			owned.mu.Lock()
			defer owned.mu.Unlock()
			if owned.pids[pid]--; owned.pids[pid] <= 0 {
				delete(owned.pids, pid)
			}
		})
	}, nil
}

// isOwned reports whether pid is registered; the caller holds
// owned.spawning for writing.
func isOwned(pid int) bool {
	owned.mu.Lock()
	defer owned.mu.Unlock()
	return owned.pids[pid] > 0
}

// StartCommand is cmd.Start as an owned process (see Own); wait is
// cmd.Wait followed by the release.
func StartCommand(cmd *exec.Cmd) (wait func() error, err error) {
	release, err := Own(func() (int, error) {
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		return cmd.Process.Pid, nil
	})
	if err != nil {
		return nil, err
	}
	return func() error {
		defer release()
		return cmd.Wait()
	}, nil
}

// RunCommand is cmd.Run as an owned process (see Own).
func RunCommand(cmd *exec.Cmd) error {
	wait, err := StartCommand(cmd)
	if err != nil {
		return err
	}
	return wait()
}
