// Command bench compares secrets-sidecar with consul-template on the same
// Vault dev server: `once` against `consul-template -once` for N secrets,
// and both as daemons (RSS, CPU per refresh cycle, Vault requests per
// cycle, file writes per cycle when nothing changed). Both tools talk to
// Vault through one counting reverse proxy. Runs are A/B interleaved and
// every reported number is the median of the runs.
//
//	make bench    # builds both tools, runs this, updates docs/benchmarks.md
//	go run ./scripts/bench -sidecar bin/secrets-sidecar -consul-template PATH [-doc docs/benchmarks.md]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type settings struct {
	sidecar, consulTemplate, devvault string
	sizes, sweep                      []int
	runs, daemonRuns                  int
	daemonSecrets                     int
	refresh, warm, rssAt, window      time.Duration
	doc, workdir, tmpfs               string
	fleet                             fleetSettings
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("bench: ")
	s, err := parseFlags(os.Args[1:])
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = benchmark(ctx, s, os.Stdout)
	stop()
	if err != nil {
		log.Fatal(err)
	}
}

func parseFlags(args []string) (settings, error) {
	var s settings
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&s.sidecar, "sidecar", "bin/secrets-sidecar", "secrets-sidecar binary")
	fs.StringVar(&s.consulTemplate, "consul-template", "", "consul-template binary (required)")
	fs.StringVar(&s.devvault, "devvault", os.Getenv("SIDECAR_DEVVAULT_BIN"), "Vault dev server binary (default $SIDECAR_DEVVAULT_BIN, else scripts/devvault.sh)")
	sizes := fs.String("sizes", "10,100,1000", "secret counts for the once comparison")
	sweep := fs.String("sweep", "1,100,1000", "daemon secret counts whose RSS gives the memory per secret (empty: skip)")
	fs.IntVar(&s.runs, "runs", 5, "measured runs per tool and size (A/B interleaved)")
	fs.IntVar(&s.daemonRuns, "daemon-runs", 5, "measured daemon runs per tool (0 skips the daemon comparison)")
	fs.IntVar(&s.daemonSecrets, "daemon-secrets", 100, "secrets in the daemon comparison")
	fs.DurationVar(&s.refresh, "refresh", 10*time.Second, "daemon refresh interval")
	fs.DurationVar(&s.warm, "warm", 15*time.Second, "daemon: the steady-state window starts this long after process start")
	fs.DurationVar(&s.rssAt, "rss-at", 60*time.Second, "daemon: when RSS is sampled, after process start")
	fs.DurationVar(&s.window, "window", 60*time.Second, "daemon: length of the steady-state window")
	fs.StringVar(&s.doc, "doc", "", "markdown file whose generated section is replaced with the results (empty: stdout only)")
	fs.StringVar(&s.workdir, "workdir", os.TempDir(), "where the output directories are made (disk)")
	fs.StringVar(&s.tmpfs, "tmpfs", "/dev/shm", "a tmpfs directory: once also writes there (empty: disk only)")
	fs.BoolVar(&s.fleet.on, "fleet", false, "run only the fleet scenario (many sidecars against one Vault) and write its section")
	fs.IntVar(&s.fleet.procs, "fleet-procs", 100, "fleet: sidecar processes")
	fs.IntVar(&s.fleet.secrets, "fleet-secrets", 10, "fleet: secrets per sidecar")
	fs.DurationVar(&s.fleet.window, "fleet-window", 60*time.Second, "fleet: steady-state window, from two refresh intervals after the start")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	list, err := counts(*sweep)
	if err != nil {
		return s, fmt.Errorf("-sweep: %w", err)
	}
	s.sweep = list
	if s.consulTemplate == "" && !s.fleet.on {
		return s, errors.New("-consul-template is required (make bench installs it)")
	}
	if s.sizes, err = counts(*sizes); err != nil {
		return s, fmt.Errorf("-sizes: %w", err)
	}
	if s.runs < 1 {
		return s, errors.New("-runs must be at least 1")
	}
	if s.warm+s.window < s.rssAt {
		return s, errors.New("-rss-at must fall inside the daemon's run (warm + window)")
	}
	return s, nil
}

// counts parses a comma-separated list of positive numbers.
func counts(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func benchmark(ctx context.Context, s settings, stdout io.Writer) error {
	started := time.Now()
	if s.devvault == "" {
		out, err := exec.CommandContext(ctx, "scripts/devvault.sh").Output()
		if err != nil {
			return fmt.Errorf("scripts/devvault.sh (run from the repository root or pass -devvault): %w", err)
		}
		s.devvault = strings.TrimSpace(string(out))
	}
	vault, err := startDevVault(s.devvault)
	if err != nil {
		return err
	}
	defer vault.stop()
	proxy, err := newCountingProxy(vault.Addr)
	if err != nil {
		return err
	}
	defer proxy.Close()

	maxN := s.daemonSecrets
	for _, n := range append(s.sizes, s.sweep...) {
		maxN = max(maxN, n)
	}
	if s.fleet.on {
		maxN = s.fleet.procs * s.fleet.secrets
	}
	const prefix = "bench"
	log.Printf("seeding %d secrets", maxN)
	if err := seed(ctx, vault, prefix, maxN); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	work, err := os.MkdirTemp(s.workdir, "secrets-sidecar-bench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	media := []medium{{"disk", work}}
	if s.tmpfs != "" {
		dir, err := os.MkdirTemp(s.tmpfs, "secrets-sidecar-bench-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		media = append(media, medium{"tmpfs", dir})
	}
	if s.fleet.on {
		return runFleet(ctx, s, vault, proxy, prefix, work, stdout)
	}
	floorBin := filepath.Join(work, "floor")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", floorBin, "./scripts/bench/floor").CombinedOutput(); err != nil {
		return fmt.Errorf("build the floor program (run from the repository root): %w\n%s", err, out)
	}

	tools := []tool{sidecarTool(s.sidecar), consulTemplateTool(s.consulTemplate), floorTool(floorBin)}
	h := &harness{s: s, proxy: proxy, token: vault.Token, prefix: prefix, work: work}

	res := results{settings: s, tools: tools[:2], facts: machineFacts(work, media)}
	// Warm-up (not measured): page cache, Vault's caches, the binaries.
	for _, t := range tools {
		if _, err := h.once(ctx, t, min(100, maxN), media[0].dir, true); err != nil {
			return fmt.Errorf("warm-up %s: %w", t.name, err)
		}
	}
	for _, n := range s.sizes {
		for _, md := range media {
			row := onceRow{n: n, medium: md.name}
			for r := 0; r < s.runs; r++ {
				for k := range tools {
					i := (k + r) % len(tools) // rotates the order every run
					m, err := h.once(ctx, tools[i], n, md.dir, r == 0)
					if err != nil {
						return fmt.Errorf("once %s N=%d %s run %d: %w", tools[i].name, n, md.name, r+1, err)
					}
					row.runs[i] = append(row.runs[i], m)
					log.Printf("once N=%d %-5s run %d %-16s %7.3fs cpu %.2fs maxrss %.1f MiB, %d requests",
						n, md.name, r+1, tools[i].name, m.wall.Seconds(), m.cpu.Seconds(), mib(m.maxRSS), m.requests)
				}
			}
			res.once = append(res.once, row)
		}
	}
	tools = tools[:2]
	for i, t := range tools {
		if len(s.sweep) == 0 {
			break
		}
		ms, err := h.sweep(ctx, t, s.sweep)
		if err != nil {
			return fmt.Errorf("sweep %s: %w", t.name, err)
		}
		res.sweep[i] = ms
		for j, m := range ms {
			log.Printf("sweep %-16s N=%d rss %.1f MiB (anon %.1f, file %.1f)", t.name, s.sweep[j], mib(m.rss), mib(m.anon), mib(m.file))
		}
	}
	for r := 0; r < s.daemonRuns; r++ {
		for k := range tools {
			i := (k + r) % len(tools)
			m, err := h.daemon(ctx, tools[i], s.daemonSecrets)
			if err != nil {
				return fmt.Errorf("daemon %s run %d: %w", tools[i].name, r+1, err)
			}
			res.daemon[i] = append(res.daemon[i], m)
			log.Printf("daemon run %d %-16s rss %.1f MiB (anon %.1f, file %.1f), cpu/cycle %.3fs, reads/secret/cycle %.2f, requests/cycle %.1f, writes/cycle %.2f, period %s",
				r+1, tools[i].name, mib(m.mem.rss), mib(m.mem.anon), mib(m.mem.file), m.cpuPerCycle, m.readsPerSecretCycle, m.requestsPerCycle, m.writesPerCycle, m.period.Round(time.Millisecond))
		}
	}
	res.took = time.Since(started)
	res.goVersion = runtime.Version()
	report := res.markdown()
	fmt.Fprint(stdout, report)
	if s.doc != "" {
		if err := updateDoc(s.doc, report); err != nil {
			return err
		}
		log.Printf("wrote %s", s.doc)
	}
	return nil
}

// harness runs the tools against the proxy.
type harness struct {
	s      settings
	proxy  *countingProxy
	token  string
	prefix string
	work   string
	seq    int
}

// medium is where once writes: a directory on disk or on tmpfs.
type medium struct{ name, dir string }

func (h *harness) newRun(n int, daemon bool) (run, error) { return h.newRunIn(h.work, n, daemon) }

func (h *harness) newRunIn(root string, n int, daemon bool) (run, error) {
	h.seq++
	dir := filepath.Join(root, fmt.Sprintf("run%03d", h.seq))
	// Config, status file and output each have their own directory, as
	// with the sidecar's defaults (/etc/secrets-sidecar, /tmp/secrets-sidecar,
	// the shared volume).
	r := run{out: filepath.Join(dir, "out"), conf: filepath.Join(dir, "conf"), state: filepath.Join(dir, "state"),
		vault: h.proxy.URL, token: h.token, prefix: h.prefix, n: n, refresh: h.s.refresh, daemon: daemon}
	for _, d := range []string{r.out, r.conf, r.state} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return r, err
		}
	}
	return r, nil
}

type onceMeasure struct {
	wall, cpu time.Duration
	maxRSS    int64
	requests  int
	classes   map[string]int
}

// once runs t in init-container mode over n secrets and checks every file.
func (h *harness) once(ctx context.Context, t tool, n int, root string, check bool) (onceMeasure, error) {
	var m onceMeasure
	r, err := h.newRunIn(root, n, false)
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
	h.proxy.take()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return m, err
	}
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	// Peak RSS is VmHWM polled from /proc while the process runs: rusage's
	// maxrss is useless here, because Go starts children with vfork and the
	// kernel charges the parent's (this program's) high-water mark to the
	// child at exec. VmHWM belongs to the child's own address space.
	exited := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var hwm int64
		for {
			if pm, err := procMem(cmd.Process.Pid); err == nil {
				hwm = max(hwm, pm.hwm)
			}
			select {
			case <-exited:
				peak <- hwm
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	err = cmd.Wait()
	m.wall = time.Since(start)
	close(exited)
	m.maxRSS = <-peak
	stop()
	if err != nil {
		return m, fmt.Errorf("%w; last output:\n%s", err, logs)
	}
	reqs := h.proxy.take()
	m.requests, m.classes = len(reqs), countClasses(reqs)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return m, checkFiles(r, check)
}

// checkFiles verifies that all n files exist (a tool's temporary files
// do not count); with full, also their content (both tools must write the
// same bytes).
func checkFiles(r run, full bool) error {
	entries, err := os.ReadDir(r.out)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Name()] = true
	}
	for i := 0; i < r.n; i++ {
		if name := filepath.Base(outFile(r.out, i)); !have[name] {
			return fmt.Errorf("%s not written yet (%d files in the output directory)", name, len(entries))
		}
	}
	if !full {
		return nil
	}
	for i := 0; i < r.n; i++ {
		got, err := os.ReadFile(outFile(r.out, i))
		if err != nil {
			return err
		}
		if want := expected(i); string(got) != want {
			return fmt.Errorf("%s: %d bytes, not the expected %d", outFile(r.out, i), len(got), len(want))
		}
	}
	return nil
}

func expected(i int) string {
	data := secretData(i)
	var b strings.Builder
	for _, f := range fields {
		fmt.Fprintf(&b, "%s=%s\n", f.env, data[f.key])
	}
	return b.String()
}

// tail keeps the last 4 KiB a process printed, for error messages.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tail) String() string { return string(t.b) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }
