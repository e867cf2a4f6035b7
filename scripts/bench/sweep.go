package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// sweep runs t as a daemon for each of sizes at the same time (one process
// per size) and returns each one's memory at rssAt after the start. The
// slope of RSS over the sizes is the memory a secret costs.
func (h *harness) sweep(ctx context.Context, t tool, sizes []int) ([]memStat, error) {
	type proc struct {
		r      run
		logs   *tail
		pid    int
		exited chan struct{}
	}
	procs := make([]*proc, 0, len(sizes))
	defer func() {
		for _, p := range procs {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
			<-p.exited
			_ = os.RemoveAll(filepath.Dir(p.r.out))
		}
	}()
	start := time.Now()
	for _, n := range sizes {
		r, err := h.newRun(n, true)
		if err != nil {
			return nil, err
		}
		cmd, err := t.command(r)
		if err != nil {
			return nil, err
		}
		p := &proc{r: r, logs: &tail{}, exited: make(chan struct{})}
		cmd.Stdout, cmd.Stderr = io.Discard, p.logs
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		p.pid = cmd.Process.Pid
		go func() { _ = cmd.Wait(); close(p.exited) }()
		procs = append(procs, p)
	}
	select {
	case <-time.After(time.Until(start.Add(h.s.rssAt))):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := make([]memStat, len(procs))
	for i, p := range procs {
		if err := checkFiles(p.r, false); err != nil {
			return nil, fmt.Errorf("daemon with %d secrets, %s after start: %w; last output:\n%s", p.r.n, h.s.rssAt, err, p.logs)
		}
		m, err := procMem(p.pid)
		if err != nil {
			return nil, fmt.Errorf("daemon with %d secrets: %w; last output:\n%s", p.r.n, err, p.logs)
		}
		out[i] = m
	}
	return out, nil
}

// slope is the least-squares slope of ys over xs: bytes per secret.
func slope(xs []int, ys []int64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		x, y := float64(xs[i]), float64(ys[i])
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
