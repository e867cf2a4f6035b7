package metrics

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// The per-secret series are kept as plain numbers and turned into
// Prometheus metrics only at a scrape. A child of a labelled vector keeps
// its label pairs, a created timestamp and a map entry: about 500 bytes
// each, and a secret has about ten of them (fetch results, error stages,
// writes, gauges), the largest share of the daemon's memory per secret. A
// secret here costs a few hundred bytes; a scrape builds its series and
// drops them. What /metrics shows is the same.

// perSecret is the collector of the series labelled by secret_name (and
// vault_path): fetch_total, errors_total, file_writes_total,
// last_success_timestamp_seconds, secret_refresh_interval_seconds,
// secret_version_created_timestamp_seconds and
// certificate_expiry_timestamp_seconds. Its methods are safe for
// concurrent use.
type perSecret struct {
	fetches, errors, writes, lastSuccess, refresh, version, cert *prometheus.Desc

	mu      sync.Mutex
	paths   map[secretPath]*pathSeries
	secrets map[string]*secretSeries
}

type secretPath struct{ secret, path string }

// pathSeries are the counters labelled with a secret and a Vault path; a
// series exists once created (by Init or its first event).
type pathSeries struct {
	fetch    [2]float64 // success, error
	fetchSet [2]bool
	stages   []stageCount
}

type stageCount struct {
	stage Stage
	n     float64
}

// secretSeries are the series labelled with a secret only.
type secretSeries struct {
	writes      float64
	hasWrites   bool
	lastSuccess gauge
	refresh     gauge
	version     gauge
	cert        gauge
}

type gauge struct {
	v   float64
	set bool
}

func newPerSecret() *perSecret {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
	}
	return &perSecret{
		fetches: desc("fetch_total", "Secret fetches from Vault by result (success or error).", "secret_name", "vault_path", "result"),
		errors:  desc("errors_total", "Sync failures by stage (auth, fetch, render, write).", "secret_name", "vault_path", "stage"),
		writes: desc("file_writes_total", "Destination files written because their content, mode or owner changed.",
			"secret_name"),
		lastSuccess: desc("last_success_timestamp_seconds",
			"Unix time of the last successful sync of a secret (file written or confirmed up to date).", "secret_name"),
		refresh: desc("secret_refresh_interval_seconds", "The configured refresh interval of a secret.", "secret_name"),
		version: desc("secret_version_created_timestamp_seconds",
			"Unix time the KV v2 version last read of a secret was created in Vault; absent for KV v1.", "secret_name"),
		cert: desc("certificate_expiry_timestamp_seconds",
			"Earliest NotAfter (Unix time) of the PEM CERTIFICATE blocks in a secret's written file; absent when it holds none.", "secret_name"),
		paths:   map[secretPath]*pathSeries{},
		secrets: map[string]*secretSeries{},
	}
}

// path returns the counters of secret at vaultPath, made when missing.
// The caller holds p.mu.
func (p *perSecret) path(secret, vaultPath string) *pathSeries {
	k := secretPath{secret, vaultPath}
	s := p.paths[k]
	if s == nil {
		s = &pathSeries{}
		p.paths[k] = s
	}
	return s
}

// secret returns the series of secret, made when missing. The caller
// holds p.mu.
func (p *perSecret) secret(name string) *secretSeries {
	s := p.secrets[name]
	if s == nil {
		s = &secretSeries{}
		p.secrets[name] = s
	}
	return s
}

func (s *pathSeries) stage(st Stage) *stageCount {
	for i := range s.stages {
		if s.stages[i].stage == st {
			return &s.stages[i]
		}
	}
	s.stages = append(s.stages, stageCount{stage: st})
	return &s.stages[len(s.stages)-1]
}

func resultIndex(r Result) int {
	if Result(result(r)) == ResultSuccess {
		return 0
	}
	return 1
}

func (p *perSecret) init(secret, vaultPath string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.path(secret, vaultPath)
	s.fetchSet = [2]bool{true, true}
	for _, st := range Stages {
		s.stage(st)
	}
	p.secret(secret).hasWrites = true
}

func (p *perSecret) fetched(secret, vaultPath string, res Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.path(secret, vaultPath)
	i := resultIndex(res)
	s.fetch[i]++
	s.fetchSet[i] = true
}

func (p *perSecret) failed(secret, vaultPath string, st Stage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.path(secret, vaultPath).stage(st).n++
}

func (p *perSecret) written(secret string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.secret(secret)
	s.writes++
	s.hasWrites = true
}

// setGauge sets (set) or drops one of secret's gauges, chosen by pick.
func (p *perSecret) setGauge(secret string, pick func(*secretSeries) *gauge, v float64, set bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.secrets[secret]
	if s == nil && !set {
		return
	}
	if s == nil {
		s = p.secret(secret)
	}
	*pick(s) = gauge{v: v, set: set}
}

// forget drops every series of secret at vaultPath, and every series of
// secret alone.
func (p *perSecret) forget(secret, vaultPath string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.paths, secretPath{secret, vaultPath})
	delete(p.secrets, secret)
}

// Describe implements prometheus.Collector.
func (p *perSecret) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{p.fetches, p.errors, p.writes, p.lastSuccess, p.refresh, p.version, p.cert} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the series are built from a
// copy taken under the lock, so a scrape never holds up a sync.
func (p *perSecret) Collect(ch chan<- prometheus.Metric) {
	type pathCopy struct {
		k secretPath
		s pathSeries
	}
	type secretCopy struct {
		name string
		s    secretSeries
	}
	p.mu.Lock()
	paths := make([]pathCopy, 0, len(p.paths))
	for k, s := range p.paths {
		c := *s
		c.stages = slices.Clone(s.stages)
		paths = append(paths, pathCopy{k, c})
	}
	secrets := make([]secretCopy, 0, len(p.secrets))
	for n, s := range p.secrets {
		secrets = append(secrets, secretCopy{n, *s})
	}
	p.mu.Unlock()

	results := [2]string{string(ResultSuccess), string(ResultError)}
	for _, c := range paths {
		for i, set := range c.s.fetchSet {
			if set {
				ch <- prometheus.MustNewConstMetric(p.fetches, prometheus.CounterValue, c.s.fetch[i], c.k.secret, c.k.path, results[i])
			}
		}
		for _, st := range c.s.stages {
			ch <- prometheus.MustNewConstMetric(p.errors, prometheus.CounterValue, st.n, c.k.secret, c.k.path, string(st.stage))
		}
	}
	for _, c := range secrets {
		if c.s.hasWrites {
			ch <- prometheus.MustNewConstMetric(p.writes, prometheus.CounterValue, c.s.writes, c.name)
		}
		for _, g := range []struct {
			d *prometheus.Desc
			g gauge
		}{{p.lastSuccess, c.s.lastSuccess}, {p.refresh, c.s.refresh}, {p.version, c.s.version}, {p.cert, c.s.cert}} {
			if g.g.set {
				ch <- prometheus.MustNewConstMetric(g.d, prometheus.GaugeValue, g.g.v, c.name)
			}
		}
	}
}
