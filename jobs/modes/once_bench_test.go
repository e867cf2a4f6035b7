package modes_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/modes"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source/kv"
	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// BenchmarkOnce1000 runs `once` over 1,000 KV v2 secrets of 5 fields each
// against the real dev server, into a fresh directory every iteration, and
// reports files written per run and the process's peak RSS.
//
//	go test -run '^$' -bench BenchmarkOnce1000 -benchtime 3x ./jobs/
func BenchmarkOnce1000(b *testing.B) {
	const n = 1000
	srv := vaulttest.Shared(b)
	w := newWorld(b, srv, breaker.Settings{})
	p := uniq(b)
	seed(b, srv, p, n)
	var cfgText strings.Builder
	cfgText.WriteString("defaults: {refresh_interval: 5m}\nsecrets:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&cfgText, "  - {name: s%04d, path: %s/s%04d, destination: OUT/s%04d.env, template: \"USER={{ .user }}\\nPASS={{ .pass }}\\nHOST={{ .host }}\\nPORT={{ .port }}\\nDB={{ .db }}\\n\"}\n", i, p, i, i)
	}
	// Production logging (info, JSON) to nowhere: the test logger keeps
	// every debug line in memory, which would dominate time and RSS.
	log, err := logging.NewLogger(logging.Options{Level: "info"}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	syncer := jobs.NewSyncer(kv.New(w.client), log, jobs.SyncerOptions{Recorder: w.metrics})
	b.ResetTimer()
	var written int
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		out := filepath.Join(w.dir, fmt.Sprintf("run%d", i))
		cfg := loadConfig(b, w.dir, strings.ReplaceAll(cfgText.String(), "OUT", out))
		once := modes.NewOnce(cfg, syncer, log, modes.OnceSettings{Timeout: 2 * time.Minute, Workers: 16}, nil)
		b.StartTimer()
		if err := once.Run(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		entries, err := os.ReadDir(out)
		if err != nil {
			b.Fatal(err)
		}
		written = len(entries)
		b.StartTimer()
	}
	b.ReportMetric(float64(written), "files/op")
	b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
}

// seed writes n secrets of 5 fields with 8 concurrent writers.
func seed(tb testing.TB, srv *vaulttest.Server, p string, n int) {
	tb.Helper()
	c := srv.Client(tb)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := c.KVv2("secret").Put(tb.Context(), fmt.Sprintf("%s/s%04d", p, i), map[string]any{
					"user": fmt.Sprintf("user%d", i), "pass": fmt.Sprintf("pass-%d-xyz", i), "host": "db.internal",
					"port": "5432", "db": "app",
				})
				if err != nil {
					tb.Error(err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// peakRSSMiB is VmHWM from /proc/self/status.
func peakRSSMiB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}
