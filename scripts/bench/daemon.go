package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

type daemonMeasure struct {
	ready                time.Duration // process start to every file written
	mem                  memStat       // at rssAt
	cpuPerCycle          float64       // CPU seconds per refresh cycle
	readsPerSecretCycle  float64       // KV reads per secret per cycle
	requestsPerCycle     float64       // all Vault requests per cycle
	writesPerCycle       float64       // destination files replaced per cycle
	fsEventsPerCycle     float64       // any inotify event in the output directory per cycle
	statusWritesPerCycle float64       // status file replaced (the sidecar's; consul-template has none)
	classes              map[string]int
	cycles               float64 // refresh cycles in the window (per secret, mean)
	period               time.Duration
	shutdown             time.Duration // SIGTERM to exit
}

// fsCounter records inotify events in one directory with their times.
type fsCounter struct {
	w      *fsnotify.Watcher
	mu     sync.Mutex
	events []fsEvent
	done   chan struct{}
}

type fsEvent struct {
	at   time.Time
	name string
	op   fsnotify.Op
}

func watchDir(dir string) (*fsCounter, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, err
	}
	c := &fsCounter{w: w, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				c.mu.Lock()
				c.events = append(c.events, fsEvent{at: time.Now(), name: ev.Name, op: ev.Op})
				c.mu.Unlock()
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
	return c, nil
}

func (c *fsCounter) close() []fsEvent {
	c.w.Close()
	<-c.done
	return c.events
}

// daemon runs t as a daemon over n secrets: waits for every file, samples
// CPU, requests and file events over the steady-state window [warm,
// warm+window] after process start and RSS at rssAt, then stops it with
// SIGTERM.
func (h *harness) daemon(ctx context.Context, t tool, n int) (daemonMeasure, error) {
	var m daemonMeasure
	r, err := h.newRun(n, true)
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(filepath.Dir(r.out))
	cmd, err := t.command(r)
	if err != nil {
		return m, err
	}
	logs := &tail{}
	cmd.Stdout, cmd.Stderr = io.Discard, logs
	watch, err := watchDir(r.out)
	if err != nil {
		return m, err
	}
	state, err := watchDir(r.state)
	if err != nil {
		watch.close()
		return m, err
	}
	h.proxy.take()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		watch.close()
		return m, err
	}
	var waitErr error // set before exited is closed
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		watch.close()
		state.close()
	}()
	sleepUntil := func(at time.Time) error {
		select {
		case <-time.After(time.Until(at)):
			return nil
		case <-exited:
			stopped = true
			return fmt.Errorf("exited early (%w); last output:\n%s", waitErr, logs)
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	for {
		if err := checkFiles(r, false); err == nil {
			break
		}
		if time.Since(start) > 2*time.Minute {
			return m, fmt.Errorf("not every file written after 2m; last output:\n%s", logs)
		}
		if err := sleepUntil(time.Now().Add(20 * time.Millisecond)); err != nil {
			return m, err
		}
	}
	m.ready = time.Since(start)
	if err := checkFiles(r, true); err != nil {
		return m, err
	}

	from, to, rssAt := start.Add(h.s.warm), start.Add(h.s.warm+h.s.window), start.Add(h.s.rssAt)
	if err := sleepUntil(from); err != nil {
		return m, err
	}
	cpu0, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return m, err
	}
	if rssAt.Before(to) {
		if err := sleepUntil(rssAt); err != nil {
			return m, err
		}
		if m.mem, err = procMem(cmd.Process.Pid); err != nil {
			return m, err
		}
	}
	if err := sleepUntil(to); err != nil {
		return m, err
	}
	cpu1, err := procCPU(cmd.Process.Pid)
	if err != nil {
		return m, err
	}
	if m.mem.rss == 0 {
		if m.mem, err = procMem(cmd.Process.Pid); err != nil {
			return m, err
		}
	}

	sent := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		err := waitErr
		stopped = true
		m.shutdown = time.Since(sent)
		if code := cmd.ProcessState.ExitCode(); code != t.stopCode {
			return m, fmt.Errorf("exit code %d after SIGTERM, want %d (%w); last output:\n%s", code, t.stopCode, err, logs)
		}
	case <-time.After(60 * time.Second):
		return m, fmt.Errorf("still running 60s after SIGTERM; last output:\n%s", logs)
	}

	reqs := between(h.proxy.take(), from, to)
	total, period := cycles(reqs, h.s.refresh)
	if total == 0 {
		return m, errors.New("no refresh cycle in the steady-state window")
	}
	m.classes = countClasses(reqs)
	m.period = period
	perSecret := float64(total) / float64(n) // cycles in the window
	m.cycles = perSecret
	m.readsPerSecretCycle = float64(m.classes[classKVRead]) / float64(total)
	m.requestsPerCycle = float64(len(reqs)) / perSecret
	m.cpuPerCycle = (cpu1 - cpu0).Seconds() / perSecret

	dests := map[string]bool{}
	for i := 0; i < n; i++ {
		dests[outFile(r.out, i)] = true
	}
	var writes, events int
	for _, ev := range watch.close() {
		if ev.at.Before(from) || !ev.at.Before(to) {
			continue
		}
		events++
		if dests[filepath.Clean(ev.name)] && ev.op&(fsnotify.Create|fsnotify.Write|fsnotify.Rename) != 0 {
			writes++
		}
	}
	m.writesPerCycle = float64(writes) / perSecret
	m.fsEventsPerCycle = float64(events) / perSecret
	var statusWrites int
	for _, ev := range state.close() {
		if !ev.at.Before(from) && ev.at.Before(to) && filepath.Base(ev.name) == "status.json" && ev.op&(fsnotify.Create|fsnotify.Write) != 0 {
			statusWrites++
		}
	}
	m.statusWritesPerCycle = float64(statusWrites) / perSecret
	return m, nil
}
