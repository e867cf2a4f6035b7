// Package status tracks readiness: which configured secrets have been
// written since start (or since a reload added them), their last success
// and last error. It serves /ready through Snapshot and keeps the status
// file that `secrets-sidecar isready` reads as the Docker HEALTHCHECK.
//
// The status file is JSON (see Snapshot), written atomically on every state
// change (bursts coalesce into one write) and by a heartbeat at least every
// shortest refresh interval (at most every minute), so its updated_at stays
// within isready's default max age while the daemon lives. Stop writes it a
// last time with ready=false and stopped=true. It never holds a secret
// value or anything derived from one.
package status

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// Heartbeat bounds: the status file is rewritten every shortest refresh
// interval, but at least every MaxHeartbeat and at most every MinHeartbeat.
const (
	MaxHeartbeat = time.Minute
	MinHeartbeat = time.Second
)

// maxErrorLen bounds a stored error text (the file and /ready stay small).
const maxErrorLen = 1024

// SecretInfo is what the tracker needs to know about a configured secret.
type SecretInfo struct {
	Name            string
	VaultPath       string
	RefreshInterval time.Duration
	// Source is "kv" or "lease".
	Source string
	// MinRemaining (leased secrets, leases.min_remaining): a lease with
	// less left than this makes the secret expiring and the sidecar not
	// ready. 0: off.
	MinRemaining time.Duration
}

// ReadyObserver is told every change of overall readiness (the metrics'
// ready gauge implements it). It is called with the tracker's lock held, so
// it must be quick and must not call back into the tracker.
type ReadyObserver interface {
	Ready(ready bool)
}

// Tracker holds the readiness state. Its methods are safe for concurrent
// use.
type Tracker struct {
	path  string
	log   *zap.Logger
	obs   ReadyObserver
	clock clockwork.Clock

	mu         sync.Mutex
	order      []string
	secrets    map[string]*SecretState
	configured bool
	ready      bool // every configured secret written (ignores stopped)
	// unready counts the configured secrets not yet written, so that an
	// update does not loop over every secret (10,000 at start-up).
	unready    int
	started    bool
	stopped    bool
	quit, done chan struct{}

	changed chan struct{} // cap 1: a write is due
	resized chan struct{} // cap 1: the heartbeat interval may have changed

	fileMu  sync.Mutex // serializes file writes; guards failing
	failing bool       // the last write failed (log once per failure streak)
}

// NewTracker returns a tracker writing the status file at path. observer
// (may be nil) follows readiness; clock nil means the real clock; log nil
// means no logging. Nothing is written before Start, Flush or Stop.
func NewTracker(path string, log *zap.Logger, observer ReadyObserver, clock clockwork.Clock) *Tracker {
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	return &Tracker{
		path:    path,
		log:     log,
		obs:     observer,
		clock:   clock,
		secrets: map[string]*SecretState{},
		changed: make(chan struct{}, 1),
		resized: make(chan struct{}, 1),
	}
}

// Path is the status file's path.
func (t *Tracker) Path() string { return t.path }

// Configure sets the configured secrets, at start and on every config
// reload. A secret still configured under the same name and Vault path
// keeps its state; a removed one is dropped; a new one (or one whose Vault
// path changed) starts as not yet written, so readiness waits for it.
func (t *Tracker) Configure(secrets []SecretInfo) {
	t.mu.Lock()
	next := make(map[string]*SecretState, len(secrets))
	order := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if _, dup := next[s.Name]; !dup {
			order = append(order, s.Name)
		}
		st := SecretState{Name: s.Name, VaultPath: s.VaultPath}
		if old, ok := t.secrets[s.Name]; ok && old.VaultPath == s.VaultPath {
			st = *old
		}
		st.RefreshInterval, st.Source, st.minRemaining = s.RefreshInterval, s.Source, s.MinRemaining
		next[s.Name] = &st
	}
	t.order, t.secrets, t.configured = order, next, true
	t.unready = 0
	for _, st := range next {
		if !st.Ready {
			t.unready++
		}
	}
	t.updateLocked()
	t.mu.Unlock()
	signal(t.resized)
	signal(t.changed)
}

// Succeeded records that a secret's file was written or found up to date
// at the given time; version is the KV v2 version (0 when unknown). It
// clears the secret's last error. Unknown names (a job finishing after a
// reload removed its secret) are ignored.
//
// A success that changes nothing but the time (the secret was ready, had no
// error and keeps its version) is left for the heartbeat to write: with
// many secrets, writing the file after every refresh cost a third of the
// daemon's steady-state CPU.
func (t *Tracker) Succeeded(name string, at time.Time, version int) {
	t.update(name, func(st *SecretState) bool {
		news := !st.Ready || st.LastError != "" || st.Version != version
		st.Ready, st.LastSuccess, st.Version = true, at, version
		st.LastError, st.LastErrorAt = "", time.Time{}
		return news
	})
}

// LeaseExpiry records when the lease behind a leased secret's file
// expires (after each successful sync of it).
func (t *Tracker) LeaseExpiry(name string, at time.Time) {
	t.update(name, func(st *SecretState) bool {
		news := !st.LeaseExpiry.Equal(at)
		st.LeaseExpiry = at
		return news
	})
}

// Next records what the secret's source does next on its own and when
// (after each successful sync; "" when it waits for the next refresh).
func (t *Tracker) Next(name, action string, at time.Time) {
	t.update(name, func(st *SecretState) bool {
		news := st.NextAction != action || !st.NextAt.Equal(at)
		st.NextAction, st.NextAt = action, at
		return news
	})
}

// Certificate records the serial and NotAfter of the first certificate
// in the secret's file (serial "": it holds none).
func (t *Tracker) Certificate(name, serial string, notAfter time.Time) {
	t.update(name, func(st *SecretState) bool {
		news := st.CertSerial != serial || !st.CertNotAfter.Equal(notAfter)
		st.CertSerial, st.CertNotAfter = serial, notAfter
		return news
	})
}

// Changed records that the secret's file got new content at at.
func (t *Tracker) Changed(name string, at time.Time) {
	t.update(name, func(st *SecretState) bool {
		st.LastChange = at
		return true
	})
}

// Failed records a failed sync. errText must already be free of secret
// values (it is stored and shown as given, cut to 1 KiB). The last success
// and the secret's readiness are kept: its file is still in place.
func (t *Tracker) Failed(name string, at time.Time, errText string) {
	if len(errText) > maxErrorLen {
		errText = logging.OneLine(errText, maxErrorLen)
	}
	t.update(name, func(st *SecretState) bool {
		news := st.LastError != errText // a retry failing the same way only moves the time
		st.LastError, st.LastErrorAt = errText, at
		return news
	})
}

// ActionDone records the outcome of a change action run that secret asked
// for (it implements notify.StatusSink). The error text must already be
// free of secret values (notify scrubs it); it is cut to 1 KiB. It never
// changes readiness; a failure or a recovery is news, a repeated success
// waits for the heartbeat.
func (t *Tracker) ActionDone(secret string, r notify.Report) {
	errText := r.Error
	if len(errText) > maxErrorLen {
		errText = logging.OneLine(errText, maxErrorLen)
	}
	a := &ActionState{Kind: r.Kind, Target: r.Target, Result: string(r.Result), Error: errText, At: r.At, Attempts: r.Attempts}
	t.update(secret, func(st *SecretState) bool {
		prev := st.LastAction
		st.LastAction = a
		return prev == nil || prev.Result != a.Result || prev.Error != a.Error || a.Result != string(metrics.ResultSuccess)
	})
}

// update applies f to a secret's state; f reports whether the change is
// news (readiness, an error, a version), which is written at once; other
// changes wait for the heartbeat.
func (t *Tracker) update(name string, f func(*SecretState) bool) {
	t.mu.Lock()
	st, ok := t.secrets[name]
	if !ok {
		t.mu.Unlock()
		t.log.Debug("status: result for a secret no longer configured ignored", zap.String("secret_name", name))
		return
	}
	was := st.Ready
	news := f(st)
	switch {
	case was && !st.Ready:
		t.unready++
	case !was && st.Ready:
		t.unready--
	}
	t.updateLocked()
	t.mu.Unlock()
	if news {
		signal(t.changed)
	}
}

// updateLocked recomputes readiness and tells the observer of a change.
func (t *Tracker) updateLocked() {
	ready := t.configured && t.unready == 0
	if ready != t.ready && !t.stopped && t.obs != nil {
		t.obs.Ready(ready)
	}
	t.ready = ready
}

// Ready reports whether every configured secret has been written at least
// once since start (or since a reload added it). False before Configure
// and after Stop.
func (t *Tracker) Ready() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ready && !t.stopped
}

// Snapshot returns the current state, taken now.
func (t *Tracker) Snapshot() Snapshot {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.snapshotLocked()
}

// ReadyReport is what /ready serves (it implements httpserver.Readiness):
// whether every secret is ready, and the snapshot that says why, taken
// together.
func (t *Tracker) ReadyReport() (ready bool, report any) {
	s := t.Snapshot()
	return s.Ready, s
}

func (t *Tracker) snapshotLocked() Snapshot {
	s := Snapshot{
		Ready:     t.ready && !t.stopped,
		Stopped:   t.stopped,
		UpdatedAt: t.clock.Now(),
		Secrets:   make([]SecretState, 0, len(t.order)),
	}
	for _, name := range t.order {
		st := *t.secrets[name]
		st.Expiring = st.minRemaining > 0 && !st.LeaseExpiry.IsZero() && st.LeaseExpiry.Sub(s.UpdatedAt) < st.minRemaining
		if st.Expiring {
			s.Ready = false
		}
		s.Secrets = append(s.Secrets, st)
		s.MaxRefreshInterval = max(s.MaxRefreshInterval, st.RefreshInterval)
	}
	return s
}

// heartbeat is how often the loop rewrites the file with no change.
func (t *Tracker) heartbeat() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := MaxHeartbeat
	for _, st := range t.secrets {
		if st.RefreshInterval > 0 {
			d = min(d, st.RefreshInterval)
		}
	}
	return max(d, MinHeartbeat)
}

// Start writes the status file (not ready yet, replacing whatever an
// earlier run left) and starts the writer: one write per burst of state
// changes, plus the heartbeat. It does not block.
func (t *Tracker) Start(context.Context) error {
	heartbeat := t.heartbeat()
	t.mu.Lock()
	if t.started || t.stopped {
		t.mu.Unlock()
		return errors.New("status tracker: already started or stopped")
	}
	t.started = true
	t.quit, t.done = make(chan struct{}), make(chan struct{})
	t.mu.Unlock()
	ticker := t.clock.NewTicker(heartbeat)
	drain(t.changed)
	t.writeAndLog()
	go t.loop(ticker)
	return nil
}

func (t *Tracker) loop(ticker clockwork.Ticker) {
	defer close(t.done)
	defer ticker.Stop()
	for {
		select {
		case <-t.quit:
			return
		case <-t.resized:
			ticker.Reset(t.heartbeat())
		case <-t.changed:
			t.writeAndLog()
		case <-ticker.Chan():
			t.writeAndLog()
		}
	}
}

// Stop ends the writer and writes the status file a last time with
// ready=false and stopped=true: the daemon is going away. Later state
// changes are kept in memory but never written. Bounded by ctx.
func (t *Tracker) Stop(ctx context.Context) error {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return nil
	}
	t.stopped = true
	if t.ready && t.obs != nil {
		t.obs.Ready(false)
	}
	started, quit, done := t.started, t.quit, t.done
	t.mu.Unlock()
	if started {
		close(quit)
	}
	final := make(chan error, 1)
	go func() {
		if started {
			<-done
		}
		final <- t.write()
	}()
	select {
	case err := <-final:
		if err != nil {
			t.log.Warn("final status file not written", zap.String("path", t.path), zap.Error(err))
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("status file %s: final write: %w", t.path, ctx.Err())
	}
}

// Flush writes the status file now and returns the write's error; for
// callers that do not Start the tracker (and for tests).
func (t *Tracker) Flush() error {
	return t.write()
}

// write takes a snapshot and writes it; snapshots are taken and written in
// one critical section, so the file never goes back to an older state.
func (t *Tracker) write() error {
	t.fileMu.Lock()
	defer t.fileMu.Unlock()
	return writeFile(t.path, t.Snapshot())
}

// writeAndLog writes the file and logs the first failure of a streak (at
// warn) and the recovery (at info); failures are never fatal.
func (t *Tracker) writeAndLog() {
	err := t.write()
	t.fileMu.Lock()
	defer t.fileMu.Unlock()
	switch {
	case err != nil && !t.failing:
		t.failing = true
		t.log.Warn("status file not written; isready will report not ready", zap.String("path", t.path), zap.Error(err))
	case err != nil:
		t.log.Debug("status file still not written", zap.String("path", t.path), zap.Error(err))
	case t.failing:
		t.failing = false
		t.log.Info("status file written again", zap.String("path", t.path))
	}
}

// signal makes a write (or heartbeat reset) due without blocking; a signal
// already pending absorbs this one, which is what coalesces bursts.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func drain(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}
