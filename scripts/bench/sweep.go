package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// sweepMeasure is one daemon of the sweep.
type sweepMeasure struct {
	n       int
	refresh time.Duration
	ready   time.Duration // process start to every file written
	opens   time.Duration // process start to the window's start
	// mem is the median of the 1 s samples of VmRSS, RssAnon and RssFile
	// in the window; hwm is VmHWM at its end.
	mem     memStat
	samples int
	cpu     float64 // CPU seconds per second in the window
	load    vaultLoad
	isready isreadyCheck // the sidecar only
	// Sizes in bytes of the tool's config file and (the sidecar) of its
	// status file at the end of the window.
	configBytes, statusBytes int64
	// The sidecar's status file writes from the start until every file
	// was written, and in the window.
	statusWritesStart, statusWritesWindow int
}

// isreadyCheck is `secrets-sidecar isready --status-file` run against a
// daemon of the sweep from the moment every file is written until it
// exits 0.
type isreadyCheck struct {
	checked bool
	code    int           // exit code of the last attempt
	after   time.Duration // from every file written to the exit 0 (or the last attempt)
	tries   int
	output  string // of the last attempt
}

// sweep runs t as a daemon for each of sizes at the same time (one process
// per size, each with a counting proxy of its own) and measures each one
// over a common window that starts one refresh interval after the slowest
// daemon has written every file (so every secret has had its first
// regular refresh) and lasts -sweep-window: memory sampled every second,
// CPU, and the requests its proxy saw.
func (h *harness) sweep(ctx context.Context, t tool, sizes []int) ([]sweepMeasure, error) {
	type proc struct {
		r       run
		proxy   *countingProxy
		logs    *tail
		pid     int
		exited  chan struct{}
		ready   time.Duration
		isready chan isreadyCheck
		mem     []memStat
		state   *fsCounter // the sidecar's status directory
	}
	procs := make([]*proc, 0, len(sizes))
	defer func() {
		for _, p := range procs {
			if p.pid != 0 {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
				<-p.exited
			}
			p.proxy.Close()
			if p.state != nil {
				p.state.close()
			}
			_ = os.RemoveAll(filepath.Dir(p.r.out))
		}
	}()
	sidecar := t.name == "secrets-sidecar"
	var cmds []*exec.Cmd
	for _, n := range sizes {
		proxy, err := newCountingProxy(h.vaultAddr)
		if err != nil {
			return nil, err
		}
		p := &proc{proxy: proxy, logs: &tail{}, exited: make(chan struct{}), isready: make(chan isreadyCheck, 1)}
		procs = append(procs, p)
		if p.r, err = h.newRun(n, true); err != nil {
			return nil, err
		}
		p.r.vault, p.r.refresh = proxy.URL, h.s.refreshFor(n)
		cmd, err := t.command(p.r)
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = io.Discard, p.logs
		cmds = append(cmds, cmd)
		if sidecar {
			if p.state, err = watchDir(p.r.state); err != nil {
				return nil, err
			}
		}
	}
	start := time.Now()
	for i, cmd := range cmds {
		p := procs[i]
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		p.pid = cmd.Process.Pid
		go func() { _ = cmd.Wait(); close(p.exited) }()
	}
	exitedEarly := func(p *proc) error {
		select {
		case <-p.exited:
			return fmt.Errorf("daemon with %d secrets exited early; last output:\n%s", p.r.n, p.logs)
		default:
			return nil
		}
	}

	// Every file written, polled; then isready, in the background.
	pending := len(procs)
	for pending > 0 {
		for _, p := range procs {
			if err := exitedEarly(p); err != nil {
				return nil, err
			}
			if p.ready > 0 || checkFiles(p.r, false) != nil {
				continue
			}
			p.ready = time.Since(start)
			pending--
			if sidecar {
				go func() { p.isready <- h.isready(ctx, statusPath(p.r)) }()
			} else {
				close(p.isready)
			}
		}
		if pending == 0 {
			break
		}
		if limit := 2*time.Minute + 20*time.Millisecond*time.Duration(slices.Max(sizes)); time.Since(start) > limit {
			for _, p := range procs {
				if p.ready == 0 {
					return nil, fmt.Errorf("daemon with %d secrets: not every file written after %s; last output:\n%s", p.r.n, limit, p.logs)
				}
			}
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
	var from time.Time
	for _, p := range procs {
		if at := start.Add(p.ready + p.r.refresh); at.After(from) {
			from = at
		}
	}
	window := h.s.sweepWindow.Truncate(time.Second)
	to := from.Add(window)
	if err := sleepCtx(ctx, time.Until(from)); err != nil {
		return nil, err
	}
	cpu0 := make([]time.Duration, len(procs))
	for i, p := range procs {
		if err := exitedEarly(p); err != nil {
			return nil, err
		}
		c, err := procCPU(p.pid)
		if err != nil {
			return nil, err
		}
		cpu0[i] = c
	}
	for next := from; next.Before(to); next = next.Add(time.Second) {
		if err := sleepCtx(ctx, time.Until(next)); err != nil {
			return nil, err
		}
		for _, p := range procs {
			if m, err := procMem(p.pid); err == nil {
				p.mem = append(p.mem, m)
			}
		}
	}
	if err := sleepCtx(ctx, time.Until(to)); err != nil {
		return nil, err
	}
	out := make([]sweepMeasure, len(procs))
	for i, p := range procs {
		if err := exitedEarly(p); err != nil {
			return nil, err
		}
		cpu1, err := procCPU(p.pid)
		if err != nil {
			return nil, err
		}
		last, err := procMem(p.pid)
		if err != nil {
			return nil, err
		}
		if err := checkFiles(p.r, true); err != nil {
			return nil, fmt.Errorf("daemon with %d secrets at the end: %w", p.r.n, err)
		}
		m := sweepMeasure{n: p.r.n, refresh: p.r.refresh, ready: p.ready, opens: from.Sub(start), samples: len(p.mem),
			cpu: (cpu1 - cpu0[i]).Seconds() / window.Seconds()}
		m.mem = medianMem(p.mem)
		m.mem.hwm = last.hwm
		if chk, ok := <-p.isready; ok {
			m.isready = chk
		}
		m.configBytes = dirBytes(p.r.conf)
		if fi, err := os.Stat(statusPath(p.r)); err == nil && sidecar {
			m.statusBytes = fi.Size()
		}
		if p.state != nil {
			for _, ev := range p.state.close() {
				if filepath.Base(ev.name) != "status.json" || ev.op&(fsnotify.Create|fsnotify.Write) == 0 {
					continue
				}
				switch {
				case ev.at.Before(start.Add(p.ready)):
					m.statusWritesStart++
				case !ev.at.Before(from) && ev.at.Before(to):
					m.statusWritesWindow++
				}
			}
			p.state = nil
		}
		reqs, conns := p.proxy.takeAll()
		m.load = measureLoad(reqs, conns, p.r.n, p.r.refresh, from, window, h.s.draws)
		out[i] = m
	}
	return out, nil
}

// statusPath is where the sidecar of run r keeps its status file.
func statusPath(r run) string { return filepath.Join(r.state, "status.json") }

// isready runs `secrets-sidecar isready --status-file path` every 100 ms
// until it exits 0, for at most 30 s.
func (h *harness) isready(ctx context.Context, path string) isreadyCheck {
	c := isreadyCheck{checked: true, code: -1}
	start := time.Now()
	for {
		cmd := exec.CommandContext(ctx, h.s.sidecar, "isready", "--status-file", path)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
		out, err := cmd.CombinedOutput()
		c.tries++
		c.after, c.output = time.Since(start), strings.TrimSpace(string(out))
		var exit *exec.ExitError
		switch {
		case err == nil:
			c.code = 0
			return c
		case errors.As(err, &exit):
			c.code = exit.ExitCode()
		default:
			c.code, c.output = -1, err.Error()
		}
		if time.Since(start) > 30*time.Second || sleepCtx(ctx, 100*time.Millisecond) != nil {
			return c
		}
	}
}

// dirBytes is the total size of the regular files in dir.
func dirBytes(dir string) int64 {
	var total int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
	}
	return total
}

// medianMem is the median of each of VmRSS, RssAnon and RssFile.
func medianMem(ms []memStat) memStat {
	pick := func(f func(memStat) int64) int64 {
		xs := make([]int64, len(ms))
		for i, m := range ms {
			xs[i] = f(m)
		}
		sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
		if len(xs) == 0 {
			return 0
		}
		return xs[len(xs)/2]
	}
	return memStat{rss: pick(func(m memStat) int64 { return m.rss }), anon: pick(func(m memStat) int64 { return m.anon }),
		file: pick(func(m memStat) int64 { return m.file })}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// slopeBetween is the memory one more secret costs between the sizes a
// and b of the sweep ms: (f(b) - f(a)) / (b - a), in bytes.
func slopeBetween(ms []sweepMeasure, a, b int, f func(memStat) int64) (float64, bool) {
	var ma, mb *sweepMeasure
	for i := range ms {
		switch ms[i].n {
		case a:
			ma = &ms[i]
		case b:
			mb = &ms[i]
		}
	}
	if ma == nil || mb == nil || a == b {
		return 0, false
	}
	return float64(f(mb.mem)-f(ma.mem)) / float64(b-a), true
}
