package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
)

// daemon is one `secrets-sidecar run` process of the real binary.
type daemon struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // valid after exited is closed
	logs   *logtest.Buffer
	http   string // host:port of /metrics, "" when disabled
	status string // status file
}

// startDaemon runs the binary with cfg, a clean environment (VAULT_* and
// SIDECAR_* only from env) and its own status file in dir.
func startDaemon(t *testing.T, cfg, dir string, env ...string) *daemon {
	t.Helper()
	d := &daemon{logs: &logtest.Buffer{}, exited: make(chan struct{}), status: filepath.Join(dir, "status.json")}
	full := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "SIDECAR_STATUS_FILE=" + d.status,
		"SIDECAR_HTTP_ADDR=", "SIDECAR_LOG_LEVEL=info"}
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "SIDECAR_HTTP_ADDR="); ok {
			d.http = v
		}
	}
	full = append(full, env...) // later entries win
	// The process is stopped by the test (term, kill, or Cleanup).
	d.cmd = exec.CommandContext(context.Background(), sidecarBinary(t), "run", "--config", cfg)
	d.cmd.Env = full
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			out := d.logs.String()
			if len(out) > 8000 {
				out = "..." + out[len(out)-8000:]
			}
			t.Logf("sidecar output (pid %d):\n%s", d.cmd.Process.Pid, out)
		}
	})
	return d
}

// kill sends SIGKILL and waits for the process to be gone.
func (d *daemon) kill(t *testing.T) {
	t.Helper()
	_ = d.cmd.Process.Kill()
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("process still there 10s after SIGKILL")
	}
}

// term sends SIGTERM and returns how long the process took to exit and its
// exit code; it fails the test past bound.
func (d *daemon) term(t *testing.T, bound time.Duration) (time.Duration, int) {
	t.Helper()
	sent := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(bound):
		t.Fatalf("still running %s after SIGTERM", bound)
	}
	return time.Since(sent), d.cmd.ProcessState.ExitCode()
}

func (d *daemon) running() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// waitReady polls the status file until it says ready.
func (d *daemon) waitReady(t *testing.T, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, bound, "the sidecar to become ready", func() bool {
		if !d.running() {
			t.Fatalf("sidecar exited: %v", d.err)
		}
		snap, err := status.ReadFile(d.status)
		return err == nil && snap.Ready
	})
	return time.Since(start)
}

// metrics returns the /metrics body.
func (d *daemon) metrics(t *testing.T) string {
	t.Helper()
	if d.http == "" {
		t.Fatal("HTTP server disabled")
	}
	resp, err := http.Get("http://" + d.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricSum adds up the samples of metric name whose labels include every
// `key="value"` in labels (Prometheus text format).
func metricSum(body, name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// freeAddr is a free 127.0.0.1 port for the sidecar's HTTP server.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitFor polls cond every 50 ms; bound is a failure guard.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: still waiting for %s", bound, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// faultProxy is a reverse proxy in front of Vault that counts requests by
// path and can add latency to every request.
type faultProxy struct {
	*httptest.Server
	delay  atomic.Int64 // nanoseconds
	mu     sync.Mutex
	counts map[string]int
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &faultProxy{counts: map[string]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.URL.Path]++
		p.mu.Unlock()
		if d := time.Duration(p.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// count adds up the requests whose path contains substr.
func (p *faultProxy) count(substr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for path, c := range p.counts {
		if strings.Contains(path, substr) {
			n += c
		}
	}
	return n
}

func fileInode(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("%s: no inode", path)
	}
	return st.Ino, nil
}
