package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

// devVault is a running scripts/devvault server (Vault v1.14.0's core with
// in-memory storage, KV v2 mounted at secret/).
type devVault struct {
	Addr   string
	Token  string
	cmd    *exec.Cmd
	exited chan struct{}
}

func startDevVault(bin string) (*devVault, error) {
	// The server lives until stop; it must not outlive the benchmark.
	cmd := exec.CommandContext(context.Background(), bin, "-addr", "127.0.0.1:0", "-log-level", "error")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	v := &devVault{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(v.exited) }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() { // keep draining
		}
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			return nil, errors.New("dev server exited before it printed its address")
		}
		var banner struct {
			Addr  string `json:"addr"`
			Token string `json:"token"`
		}
		if err := json.Unmarshal([]byte(line), &banner); err != nil {
			v.stop()
			return nil, fmt.Errorf("dev server banner %q: %w", line, err)
		}
		v.Addr, v.Token = banner.Addr, banner.Token
	case <-time.After(90 * time.Second):
		v.stop()
		return nil, errors.New("dev server not ready after 90s")
	}
	return v, nil
}

func (v *devVault) stop() {
	_ = v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.exited:
	case <-time.After(10 * time.Second):
		_ = v.cmd.Process.Kill()
		<-v.exited
	}
}

// seedWriters is how many secrets seed writes at the same time.
const seedWriters = 32

// seed writes n KV v2 secrets of 5 fields at secret/<prefix>/sNNNN with
// seedWriters concurrent writers over as many kept-alive connections.
func seed(ctx context.Context, v *devVault, prefix string, n int) error {
	cfg := api.DefaultConfig()
	cfg.Address = v.Addr
	if tr, ok := cfg.HttpClient.Transport.(*http.Transport); ok {
		tr.MaxIdleConnsPerHost = seedWriters
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	c.SetToken(v.Token)
	next := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := 0; w < seedWriters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := c.KVv2("secret").Put(ctx, secretPath(prefix, i), secretData(i))
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs
}

func secretPath(prefix string, i int) string { return fmt.Sprintf("%s/s%04d", prefix, i) }

func secretData(i int) map[string]any {
	return map[string]any{
		"user": fmt.Sprintf("user%d", i), "pass": fmt.Sprintf("pass-%d-Zq8w1x", i),
		"host": "db.internal", "port": "5432", "db": "app",
	}
}

// request is one request that went through the counting proxy.
type request struct {
	At     time.Time
	Method string
	Class  string
	Path   string
}

// Request classes.
const (
	classKVRead    = "kv read"
	classPreflight = "mount preflight"
	classLookup    = "token lookup"
	classRenew     = "token renew"
	classLogin     = "login"
	classOther     = "other"
)

func classify(path string) string {
	switch {
	case strings.HasPrefix(path, "/v1/secret/data/"):
		return classKVRead
	case strings.HasPrefix(path, "/v1/sys/internal/ui/mounts/"):
		return classPreflight
	case strings.HasPrefix(path, "/v1/auth/token/lookup"):
		return classLookup
	case strings.HasPrefix(path, "/v1/auth/token/renew"):
		return classRenew
	case strings.HasSuffix(path, "/login"):
		return classLogin
	}
	return classOther
}

// countingProxy is a reverse proxy in front of the dev server that records
// every request and when each client connection was accepted: both tools
// talk to Vault through it.
type countingProxy struct {
	*httptest.Server
	mu    sync.Mutex
	reqs  []request
	conns []time.Time
}

func newCountingProxy(target string) (*countingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 512, 512
	rp.Transport = tr
	p := &countingProxy{}
	p.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := request{At: time.Now(), Method: r.Method, Class: classify(r.URL.Path), Path: r.URL.Path}
		p.mu.Lock()
		p.reqs = append(p.reqs, req)
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	p.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			p.mu.Lock()
			p.conns = append(p.conns, time.Now())
			p.mu.Unlock()
		}
	}
	p.Start()
	return p, nil
}

// take returns and forgets the requests recorded so far.
func (p *countingProxy) take() []request {
	reqs, _ := p.takeAll()
	return reqs
}

// takeAll returns and forgets the requests and the accept times of the
// client connections recorded so far.
func (p *countingProxy) takeAll() ([]request, []time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	reqs, conns := p.reqs, p.conns
	p.reqs, p.conns = nil, nil
	return reqs, conns
}

func between(reqs []request, from, to time.Time) []request {
	var out []request
	for _, r := range reqs {
		if !r.At.Before(from) && r.At.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

func countClasses(reqs []request) map[string]int {
	out := map[string]int{}
	for _, r := range reqs {
		out[r.Class]++
	}
	return out
}

// cycles groups each secret's KV reads into refresh cycles: reads of one
// path less than half a refresh interval apart belong to the same cycle.
// It returns the number of cycles summed over secrets and the mean time
// between a secret's cycles.
func cycles(reqs []request, refresh time.Duration) (total int, period time.Duration) {
	byPath := map[string][]time.Time{}
	for _, r := range reqs {
		if r.Class == classKVRead {
			byPath[r.Path] = append(byPath[r.Path], r.At)
		}
	}
	var gaps []time.Duration
	for _, ts := range byPath {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		last := time.Time{}
		for _, t := range ts {
			if last.IsZero() || t.Sub(last) >= refresh/2 {
				if !last.IsZero() {
					gaps = append(gaps, t.Sub(last))
				}
				total++
				last = t
			}
		}
	}
	var sum time.Duration
	for _, g := range gaps {
		sum += g
	}
	if len(gaps) > 0 {
		period = sum / time.Duration(len(gaps))
	}
	return total, period
}
