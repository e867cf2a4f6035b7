// Command bench compares secrets-sidecar with consul-template on the same
// Vault dev server: `once` against `consul-template -once` and a bare
// floor program for N = 10 to 10,000 secrets (wall time, CPU, peak RSS,
// RssAnon and RssFile), a sweep of daemons of each size side by side
// (memory per secret, the load each puts on Vault against a uniform random
// spread, isready at 10,000), and a daemon comparison at 100 secrets (RSS,
// CPU per refresh cycle, Vault requests per cycle, file writes per cycle
// when nothing changed). The tools talk to Vault through counting reverse
// proxies. Runs are interleaved, the order rotating every run, and every
// reported number is the median of the runs. It writes the generated
// section of docs/benchmarks.md and the plot docs/benchmarks.svg.
//
//	make bench    # builds both tools, runs this, updates docs/benchmarks.md and .svg
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
	concurrency                       []int // once --concurrency and floor -workers, one pair each
	runs, runs100, runsLarge          int
	daemonRuns                        int
	daemonSecrets                     int
	refresh, warm, rssAt, window      time.Duration
	sweepRefresh                      map[int]time.Duration // per sweep size; others use refresh
	sweepWindow                       time.Duration
	draws                             int
	doc, svg, workdir, tmpfs          string
	fleet                             fleetSettings
}

// sidecarDefaultConcurrency is `secrets-sidecar once`'s --concurrency
// default: the sidecar runs without the flag at this value.
const sidecarDefaultConcurrency = 8

// largeN is the size from which once runs runsLarge times.
const largeN = 10000

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
	sizes := fs.String("sizes", "10,100,1000,10000", "secret counts for the once comparison")
	conc := fs.String("concurrency", "8,16", "once: each value runs the sidecar with --concurrency V and the floor with -workers V (8 is the sidecar's default; the first value is the one compared with consul-template and plotted)")
	sweep := fs.String("sweep", "10,100,1000,10000", "daemon secret counts, one daemon each side by side: memory per secret, load on Vault (empty: skip)")
	sweepRefresh := fs.String("sweep-refresh", "10000=60s", "sweep: refresh interval per size, N=DURATION,... (other sizes: -refresh)")
	fs.DurationVar(&s.sweepWindow, "sweep-window", 120*time.Second, "sweep: length of the measured window, which starts one refresh interval after the slowest daemon has written every file")
	fs.IntVar(&s.draws, "draws", 2000, "sweep: Monte-Carlo draws of a uniform random spread for the worst-second baseline")
	fs.IntVar(&s.runs, "runs", 5, "once: measured runs per tool and size (order rotating every run)")
	fs.IntVar(&s.runs100, "runs-100", 21, "once: measured runs at N=100 (its spread is reported)")
	fs.IntVar(&s.runsLarge, "runs-large", 3, "once: measured runs at N >= 10000")
	fs.IntVar(&s.daemonRuns, "daemon-runs", 3, "measured daemon runs per tool (0 skips the daemon comparison)")
	fs.IntVar(&s.daemonSecrets, "daemon-secrets", 100, "secrets in the daemon comparison")
	fs.DurationVar(&s.refresh, "refresh", 10*time.Second, "daemon refresh interval")
	fs.DurationVar(&s.warm, "warm", 15*time.Second, "daemon: the steady-state window starts this long after process start")
	fs.DurationVar(&s.rssAt, "rss-at", 60*time.Second, "daemon: when RSS is sampled, after process start")
	fs.DurationVar(&s.window, "window", 60*time.Second, "daemon: length of the steady-state window")
	fs.StringVar(&s.doc, "doc", "", "markdown file whose generated section is replaced with the results (empty: stdout only)")
	fs.StringVar(&s.svg, "svg", "", "plot written by the run (default: -doc with .svg for .md; none without -doc)")
	fs.StringVar(&s.workdir, "workdir", os.TempDir(), "where the output directories are made (disk)")
	fs.StringVar(&s.tmpfs, "tmpfs", "/dev/shm", "a tmpfs directory: once also writes there (empty: disk only)")
	fs.BoolVar(&s.fleet.on, "fleet", false, "run only the fleet scenario (many sidecars against one Vault) and write its section")
	fs.IntVar(&s.fleet.procs, "fleet-procs", 100, "fleet: sidecar processes")
	fs.IntVar(&s.fleet.secrets, "fleet-secrets", 10, "fleet: secrets per sidecar")
	fs.IntVar(&s.fleet.runs, "fleet-runs", 5, "fleet: runs (medians are reported)")
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
	if s.concurrency, err = counts(*conc); err != nil {
		return s, fmt.Errorf("-concurrency: %w", err)
	}
	if len(s.concurrency) == 0 {
		return s, errors.New("-concurrency: at least one positive number")
	}
	if s.sweepRefresh, err = sizeDurations(*sweepRefresh); err != nil {
		return s, fmt.Errorf("-sweep-refresh: %w", err)
	}
	if s.runs < 1 || s.runs100 < 1 || s.runsLarge < 1 || s.fleet.runs < 1 {
		return s, errors.New("-runs, -runs-100, -runs-large and -fleet-runs must be at least 1")
	}
	if s.sweepWindow < 2*time.Second || s.draws < 1 {
		return s, errors.New("-sweep-window must be at least 2s and -draws at least 1")
	}
	if s.warm+s.window < s.rssAt {
		return s, errors.New("-rss-at must fall inside the daemon's run (warm + window)")
	}
	if s.svg == "" && s.doc != "" {
		s.svg = strings.TrimSuffix(s.doc, filepath.Ext(s.doc)) + ".svg"
	}
	return s, nil
}

// runsFor is how many measured once runs size n gets.
func (s settings) runsFor(n int) int {
	switch {
	case n >= largeN:
		return s.runsLarge
	case n == 100:
		return s.runs100
	}
	return s.runs
}

// refreshFor is the sweep daemon's refresh interval at size n.
func (s settings) refreshFor(n int) time.Duration {
	if d, ok := s.sweepRefresh[n]; ok {
		return d
	}
	return s.refresh
}

// sizeDurations parses "N=DURATION,...".
func sizeDurations(list string) (map[int]time.Duration, error) {
	out := map[int]time.Duration{}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		n, err1 := strconv.Atoi(strings.TrimSpace(k))
		d, err2 := time.ParseDuration(strings.TrimSpace(v))
		if !ok || err1 != nil || err2 != nil || n <= 0 || d <= 0 {
			return nil, fmt.Errorf("%q is not N=DURATION", f)
		}
		out[n] = d
	}
	return out, nil
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
	log.Printf("seeding %d secrets (%d writers)", maxN, seedWriters)
	seedStart := time.Now()
	if err := seed(ctx, vault, prefix, maxN); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	seedTook := time.Since(seedStart)
	log.Printf("seeded %d secrets in %s", maxN, seedTook.Round(time.Millisecond))
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

	// once: consul-template, then the sidecar and the floor at each
	// concurrency (the sidecar's default 8 without the flag).
	onceTools := []tool{consulTemplateTool(s.consulTemplate)}
	for _, c := range s.concurrency {
		flag := c
		if c == sidecarDefaultConcurrency {
			flag = 0
		}
		onceTools = append(onceTools, sidecarTool(s.sidecar, flag), floorTool(floorBin, c))
	}
	sc, ct := sidecarTool(s.sidecar, 0), onceTools[0]
	tools := []tool{sc, ct}
	h := &harness{s: s, proxy: proxy, vaultAddr: vault.Addr, token: vault.Token, prefix: prefix, work: work}

	res := results{settings: s, tools: tools, onceTools: onceTools, facts: machineFacts(work, media), seeded: maxN, seedTook: seedTook}
	// Warm-up (not measured): page cache, Vault's caches, the binaries.
	if len(s.sizes) > 0 {
		for _, t := range onceTools {
			if _, err := h.once(ctx, t, min(100, maxN), media[0].dir, true); err != nil {
				return fmt.Errorf("warm-up %s: %w", t.label, err)
			}
		}
	}
	for _, n := range s.sizes {
		runs := s.runsFor(n)
		for _, md := range media {
			row := onceRow{n: n, medium: md.name, runs: make([][]onceMeasure, len(onceTools))}
			for r := 0; r < runs; r++ {
				for k := range onceTools {
					i := (k + r) % len(onceTools) // rotates the order every run
					m, err := h.once(ctx, onceTools[i], n, md.dir, r == 0)
					if err != nil {
						return fmt.Errorf("once %s N=%d %s run %d: %w", onceTools[i].label, n, md.name, r+1, err)
					}
					row.runs[i] = append(row.runs[i], m)
					log.Printf("once N=%d %-5s run %d/%d %-16s %7.3fs cpu %.2fs peak rss %.1f anon %.1f file %.1f MiB, %d requests, %d connections",
						n, md.name, r+1, runs, onceTools[i].label, m.wall.Seconds(), m.cpu.Seconds(), mib(m.maxRSS), mib(m.peakAnon), mib(m.peakFile), m.requests, m.conns)
				}
			}
			res.once = append(res.once, row)
		}
	}
	for i, t := range tools {
		if len(s.sweep) == 0 {
			break
		}
		ms, err := h.sweep(ctx, t, s.sweep)
		if err != nil {
			return fmt.Errorf("sweep %s: %w", t.name, err)
		}
		res.sweep[i] = ms
		for _, m := range ms {
			log.Printf("sweep %-16s N=%d refresh %s ready %.1fs rss %.1f MiB (anon %.1f, file %.1f), cpu %.2f/s, %s",
				t.name, m.n, m.refresh, m.ready.Seconds(), mib(m.mem.rss), mib(m.mem.anon), mib(m.mem.file), m.cpu, m.load)
			if m.isready.checked {
				log.Printf("sweep %-16s N=%d isready exit %d %.2fs after the last file; status file %d bytes, config %d bytes",
					t.name, m.n, m.isready.code, m.isready.after.Seconds(), m.statusBytes, m.configBytes)
			}
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
	if s.doc != "" {
		res.fleet = readFleet(s.doc)
	}
	res.took = time.Since(started)
	res.goVersion = runtime.Version()
	if s.svg != "" {
		if err := os.WriteFile(s.svg, []byte(res.plot()), 0o644); err != nil {
			return err
		}
		log.Printf("wrote %s", s.svg)
	}
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
	s         settings
	proxy     *countingProxy
	vaultAddr string // the dev server itself, for proxies of their own
	token     string
	prefix    string
	work      string
	seq       int
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
	wall, cpu          time.Duration
	maxRSS             int64 // peak VmHWM
	peakAnon, peakFile int64 // peak RssAnon and RssFile
	requests           int
	conns              int // client connections the proxy accepted
	classes            map[string]int
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
	h.proxy.takeAll()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return m, err
	}
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	// Peak RSS is VmHWM polled from /proc while the process runs: rusage's
	// maxrss is useless here, because Go starts children with vfork and the
	// kernel charges the parent's (this program's) high-water mark to the
	// child at exec. VmHWM belongs to the child's own address space.
	// RssAnon (heap, stacks) and RssFile (the mapped binary) are polled
	// the same way; their peaks need not fall on the same poll.
	exited := make(chan struct{})
	peak := make(chan memStat, 1)
	go func() {
		var p memStat
		for {
			if pm, err := procMem(cmd.Process.Pid); err == nil {
				p.hwm, p.anon, p.file = max(p.hwm, pm.hwm), max(p.anon, pm.anon), max(p.file, pm.file)
			}
			select {
			case <-exited:
				peak <- p
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	err = cmd.Wait()
	m.wall = time.Since(start)
	close(exited)
	p := <-peak
	m.maxRSS, m.peakAnon, m.peakFile = p.hwm, p.anon, p.file
	stop()
	if err != nil {
		return m, fmt.Errorf("%w; last output:\n%s", err, logs)
	}
	reqs, conns := h.proxy.takeAll()
	m.requests, m.conns, m.classes = len(reqs), len(conns), countClasses(reqs)
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
