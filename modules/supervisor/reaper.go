package supervisor

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

const (
	// reapGrace is how long an unregistered zombie is left to its owner
	// before the reaper takes it: an os/exec Wait already in progress
	// reaps its child within microseconds of the exit.
	reapGrace = time.Second
	// reapSafety is the scan interval when no SIGCHLD comes.
	reapSafety = 30 * time.Second
)

// Reaper reaps orphaned zombies (see the package doc).
type Reaper struct {
	log    *zap.Logger
	proc   string
	quit   chan struct{}
	done   chan struct{}
	once   sync.Once
	reaped atomic.Int64
}

// StartReaper starts reaping orphaned zombies when this process is PID 1 of
// its PID namespace (a container without an init), where every orphan
// becomes our child; elsewhere it returns an inactive Reaper. Processes the
// sidecar starts and waits for itself must be started through Own,
// StartCommand or RunCommand while the reaper runs. Stop it before exit.
func StartReaper(log *zap.Logger) *Reaper {
	if os.Getpid() != 1 {
		return &Reaper{}
	}
	return startReaper(log, "/proc")
}

func startReaper(log *zap.Logger, proc string) *Reaper {
	if log == nil {
		log = zap.NewNop()
	}
	r := &Reaper{log: log, proc: proc, quit: make(chan struct{}), done: make(chan struct{})}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGCHLD) // before returning: no exit goes unnoticed
	go r.run(sigs)
	log.Info("reaping orphaned processes", zap.Bool("pid1", os.Getpid() == 1), zap.Bool("subreaper", adopting.Load()))
	return r
}

// Active reports whether the reaper runs.
func (r *Reaper) Active() bool { return r.quit != nil }

// Reaped is the number of zombies reaped so far.
func (r *Reaper) Reaped() int64 { return r.reaped.Load() }

// Stop stops reaping and waits for the reaper to finish.
func (r *Reaper) Stop() {
	if !r.Active() {
		return
	}
	r.once.Do(func() {
		close(r.quit)
		<-r.done
	})
}

func (r *Reaper) run(sigs chan os.Signal) {
	defer close(r.done)
	defer signal.Stop(sigs)
	seen := make(map[zombie]time.Time)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-r.quit:
			return
		case <-sigs:
		case <-timer.C:
		}
		timer.Reset(r.reap(seen, time.Now()))
	}
}

// reap reaps the zombie children that nobody owns and that have been
// zombies for reapGrace, and returns when to look again.
func (r *Reaper) reap(seen map[zombie]time.Time, now time.Time) time.Duration {
	owned.spawning.Lock()
	defer owned.spawning.Unlock()
	zombies, err := zombieChildren(r.proc, os.Getpid())
	if err != nil {
		r.log.Warn("cannot look for zombies", zap.Error(err))
		return reapSafety
	}
	next := reapSafety
	current := make(map[zombie]bool, len(zombies))
	for _, z := range zombies {
		if isOwned(z.pid) {
			continue
		}
		current[z] = true
		first, ok := seen[z]
		if !ok {
			seen[z] = now
			first = now
		}
		if wait := first.Add(reapGrace).Sub(now); wait > 0 {
			next = min(next, wait)
			continue
		}
		var ws unix.WaitStatus
		pid, err := unix.Wait4(z.pid, &ws, unix.WNOHANG, nil)
		switch {
		case pid == z.pid:
			r.reaped.Add(1)
			delete(current, z)
			r.log.Debug("reaped an orphaned process", zap.Int("pid", z.pid), zap.Int("exit_code", exitCodeOf(ws)))
		case err != nil && !errors.Is(err, unix.ECHILD):
			r.log.Warn("cannot reap a zombie", zap.Int("pid", z.pid), zap.Error(err))
		}
	}
	for z := range seen {
		if !current[z] {
			delete(seen, z)
		}
	}
	return next
}

func exitCodeOf(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
