package metrics_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// Syncs update the per-secret series while scrapes read them (go test
// -race): every scrape is consistent and the last one counts every event.
func TestPerSecretConcurrentScrapes(t *testing.T) {
	m, reg := newMetrics(t)
	const secrets, events = 50, 40
	var wg sync.WaitGroup
	for i := range secrets {
		name := fmt.Sprintf("s%02d", i)
		m.Init(name, "secret/"+name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range events {
				m.FetchDone(name, "secret/"+name, metrics.ResultSuccess, time.Millisecond)
				m.Error(name, "secret/"+name, metrics.StageRender)
				m.LastSuccess(name, time.Unix(1, 0))
				m.FileWritten(name)
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	<-done
	n, err := testutil.GatherAndCount(reg, "secrets_sidecar_fetch_total", "secrets_sidecar_errors_total")
	if err != nil {
		t.Fatal(err)
	}
	if want := secrets * (2 + len(metrics.Stages)); n != want {
		t.Errorf("%d series, want %d", n, want)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "secrets_sidecar_file_writes_total" {
			continue
		}
		for _, mt := range mf.Metric {
			if v := mt.GetCounter().GetValue(); v != events {
				t.Errorf("file_writes_total %v, want %d", v, events)
			}
		}
	}
}

// BenchmarkScrape10000: what a scrape of 10,000 secrets costs (their
// series are built at the scrape).
func BenchmarkScrape10000(b *testing.B) {
	m, reg, err := metrics.New(info)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		name := fmt.Sprintf("s%05d", i)
		m.Init(name, "secret/bench/"+name)
		m.FetchDone(name, "secret/bench/"+name, metrics.ResultSuccess, time.Millisecond)
		m.LastSuccess(name, time.Now())
		m.RefreshInterval(name, time.Minute)
		m.VersionCreated(name, time.Now())
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
