package modes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/google/uuid"
	"github.com/jonboulle/clockwork"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/schedule"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/status"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// maxConcurrentSyncs bounds the secrets read and written at the same time.
// Start-up would otherwise read every secret at once: one connection, its
// buffers and goroutines per secret, a heap that stays large long after,
// and a burst on Vault. A retry's backoff does not hold a slot.
const maxConcurrentSyncs = 16

// Daemon keeps every configured secret's file in sync: one gocron job per
// secret, started at once and repeated at the secret's refresh interval
// (from the end of the previous run, with jitter; a run never overlaps
// itself). After its first run, and after a run that needed retries, a
// job waits a random part of one interval, so the refreshes of many
// secrets and many sidecars spread over the interval instead of hitting
// Vault together. A failing secret retries
// with backoff inside its run, so other secrets are unaffected.
type Daemon struct {
	syncer          *jobs.Syncer
	status          jobs.StatusSink
	rec             jobs.Recorder
	log             *zap.Logger
	shutdownTimeout time.Duration
	delayFirst      bool
	clock           clockwork.Clock
	retry           schedule.Retrier

	mu      sync.Mutex // guards everything below and serialises Apply
	sched   gocron.Scheduler
	cfg     *config.Config
	entries map[string]*entry

	// opCtx carries in-flight Vault reads and file writes; it is cancelled
	// only when a graceful shutdown runs out of time.
	opCtx    context.Context
	opCancel context.CancelFunc

	runMu    sync.Mutex // orders running.Add before Stop's Wait
	stopping bool
	running  sync.WaitGroup

	slots chan struct{} // maxConcurrentSyncs

	wake     *source.Wake
	quit     chan struct{} // closed by Stop: ends the wake loop
	quitOnce sync.Once
}

type entry struct {
	job *jobs.Job
	id  uuid.UUID
	rs  *runState
}

// runState is one job's run bookkeeping: whether a run is in flight (gocron
// reschedules from completion, this is the guard should it ever not),
// whether the first run, which spreads the phase, is done, and when the
// last run succeeded (on the daemon's clock).
type runState struct {
	busy        atomic.Bool
	phased      atomic.Bool
	woken       atomic.Bool   // the source has new data: sync now, too soon or not
	kick        chan struct{} // wakes a run waiting its tail (buffered 1)
	lastSuccess atomic.Int64  // unix nanoseconds; 0: none yet
}

// DaemonSettings are NewDaemon's plain values; zero fields get the
// defaults.
type DaemonSettings struct {
	// ShutdownTimeout bounds Stop's wait for running syncs (default 15s).
	ShutdownTimeout time.Duration
	// DelayFirstRun schedules each secret's first run one (jittered)
	// refresh interval after Start instead of at once: exec mode has just
	// synced everything before it starts the daemon.
	DelayFirstRun bool
	// Clock drives the schedule, the retry backoffs and the waits (nil:
	// the real clock).
	Clock clockwork.Clock
}

// DaemonOptions are the Daemon's collaborators; nil fields get harmless
// defaults (NewDaemon without fx). In fx, each is taken from the graph.
type DaemonOptions struct {
	fx.In

	Status   jobs.StatusSink
	Recorder jobs.Recorder
	// Recovery cuts retry backoffs short when Vault recovers.
	Recovery schedule.RecoverySignal
	// Wake names secrets whose source has new data for them now (a lease
	// replaced): their jobs run at once (nil: none).
	Wake *source.Wake
}

// NewDaemon returns a Daemon for cfg; Start schedules the jobs.
func NewDaemon(cfg *config.Config, syncer *jobs.Syncer, log *zap.Logger, s DaemonSettings, o DaemonOptions) (*Daemon, error) {
	d := &Daemon{
		syncer: syncer, status: o.Status, rec: o.Recorder, log: log,
		shutdownTimeout: s.ShutdownTimeout, cfg: cfg, entries: map[string]*entry{},
		delayFirst: s.DelayFirstRun, clock: s.Clock, slots: make(chan struct{}, maxConcurrentSyncs),
		wake: o.Wake, quit: make(chan struct{}),
	}
	if d.clock == nil {
		d.clock = clockwork.NewRealClock()
	}
	d.retry = schedule.NewRetrier(d.clock, o.Recovery)
	if d.status == nil {
		d.status = status.Discard{}
	}
	if d.rec == nil {
		d.rec = metrics.Discard{}
	}
	if d.shutdownTimeout <= 0 {
		d.shutdownTimeout = 15 * time.Second
	}
	opts := []gocron.SchedulerOption{
		gocron.WithLogger(gocronLogger{log.Named("gocron").Sugar()}),
		gocron.WithStopTimeout(d.shutdownTimeout),
		gocron.WithClock(d.clock),
	}
	sched, err := gocron.NewScheduler(opts...)
	if err != nil {
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	d.sched = sched
	d.opCtx, d.opCancel = context.WithCancel(context.Background())
	return d, nil
}

// Start schedules every secret and starts the scheduler. It does not wait
// for any sync: Vault may be down, and the daemon starts anyway.
func (d *Daemon) Start(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.status.Configure(secretInfos(d.cfg))
	for _, sec := range d.cfg.Secrets {
		if err := d.add(sec); err != nil {
			return err
		}
	}
	d.sched.Start()
	if d.wake != nil {
		go d.wakeLoop()
	}
	d.log.Info("sync started", zap.Int("secrets", len(d.cfg.Secrets)), zap.String("config", d.cfg.File))
	return nil
}

// Stop stops scheduling, lets in-flight syncs finish within the shutdown
// timeout (then cancels them), and returns.
func (d *Daemon) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.shutdownTimeout)
	defer cancel()
	d.quitOnce.Do(func() { close(d.quit) })
	start := time.Now()
	d.runMu.Lock()
	d.stopping = true
	d.runMu.Unlock()
	// Cancels every job's context: retry waits end at once, scheduling
	// stops; running syncs keep opCtx and finish their current attempt.
	err := d.sched.ShutdownWithContext(ctx)
	done := make(chan struct{})
	go func() { d.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	d.opCancel()
	select {
	case <-done:
	case <-time.After(time.Second): // a cancelled read or write returns promptly
	}
	if err != nil || ctx.Err() != nil {
		d.log.Warn("shutdown timeout reached; in-flight syncs were cancelled",
			zap.Duration("timeout", d.shutdownTimeout))
		return nil // the files are still consistent: writes are atomic
	}
	d.log.Info("sync stopped", zap.Duration("took", time.Since(start)))
	return nil
}

// add schedules one secret. The caller holds d.mu.
func (d *Daemon) add(sec config.Secret) error {
	job, err := d.syncer.NewJob(sec)
	if err != nil {
		return err
	}
	if sec.HasFiles() {
		files.CleanSets(sec.SetDir(), sec.Name)
	} else {
		files.CleanTemp(sec.Destination)
	}
	sched := schedule.Every(sec.RefreshInterval.Duration)
	start := gocron.WithStartImmediately()
	rs := &runState{kick: make(chan struct{}, 1)}
	if d.delayFirst {
		start = gocron.WithStartDateTime(d.clock.Now().Add(sched.FirstRun()))
		rs.phased.Store(true)
	}
	// No singleton mode: gocron keeps a goroutine and a 1,000-slot channel
	// per singleton job (about 25 KiB a secret). With the interval counted
	// from completion gocron schedules the next run only after this one
	// returned; runState.busy guards the rest. The jitter is the run's own
	// tail (see run), not gocron.DurationRandomJob: that keeps a
	// math/rand source of about 5 KiB per job.
	gj, err := d.sched.NewJob(
		gocron.DurationJob(sched.Period()),
		gocron.NewTask(func(ctx context.Context) { d.run(ctx, job, rs) }),
		gocron.WithName(sec.Name),
		gocron.WithIntervalFromCompletion(), // a long retry streak does not bunch the next refreshes
		gocron.WithStartAt(start),
		gocron.WithEventListeners(gocron.AfterJobRunsWithPanic(func(_ uuid.UUID, name string, recovered any) {
			d.log.Error("secret job panicked", zap.String("secret_name", name), zap.Any("panic", recovered))
		})),
	)
	if err != nil {
		return fmt.Errorf("schedule secret %s: %w", sec.Name, err)
	}
	d.entries[sec.Name] = &entry{job: job, id: gj.ID(), rs: rs}
	return nil
}

// run is one scheduled run: sync, and on failure retry with backoff until
// a sync succeeds or the job is stopped (jobCtx is cancelled on shutdown
// and when a reload removes or replaces the job). A backoff ends early when
// Vault recovers; a rejected login waits for new credentials; an error that
// cannot succeed (IsPermanent) ends the run, and the next refresh tries
// again. The run ends with the schedule's random tail; the next run is
// counted from the end of this one.
func (d *Daemon) run(jobCtx context.Context, job *jobs.Job, rs *runState) {
	if !rs.busy.CompareAndSwap(false, true) {
		return
	}
	defer rs.busy.Store(false)
	d.runMu.Lock()
	if d.stopping {
		d.runMu.Unlock()
		return
	}
	d.running.Add(1)
	d.runMu.Unlock()
	defer d.running.Done()
	sched := schedule.Every(job.Secret.RefreshInterval.Duration)
	woken := rs.woken.Swap(false)
	if last := rs.lastSuccess.Load(); last != 0 && !woken {
		if since := d.clock.Since(time.Unix(0, last)); sched.TooSoon(since) {
			d.log.Debug("skipping a run that came too soon after the last sync",
				zap.String("secret_name", job.Secret.Name), zap.Duration("since_last_success", since))
			return
		}
	}
	attempts, err := d.retry.Do(jobCtx, sched.Backoff(),
		func(ctx context.Context) error { return d.syncSlot(ctx, job) },
		func(err error) bool {
			if jobs.IsPermanent(err) {
				d.log.Debug("not retrying an error that needs a config change; the next refresh tries again",
					zap.String("secret_name", job.Secret.Name))
				return true
			}
			return errors.Is(err, context.Canceled) && jobCtx.Err() != nil
		})
	if err == nil {
		rs.lastSuccess.Store(d.clock.Now().UnixNano())
	}
	spread := !rs.phased.Swap(true) || attempts > 1
	if !d.wait(jobCtx, sched.Tail(spread), rs.kick) && !rs.woken.Load() {
		return
	}
	// Woken while this run was in flight or waiting its tail: its data may
	// predate the source's new data.
	rs.woken.Store(false)
	if err := d.syncSlot(jobCtx, job); err == nil {
		rs.lastSuccess.Store(d.clock.Now().UnixNano())
	}
}

// wait waits dur on the daemon's clock, until jobCtx ends, or until kick
// (then it reports true).
func (d *Daemon) wait(jobCtx context.Context, dur time.Duration, kick <-chan struct{}) bool {
	if dur <= 0 {
		return false
	}
	t := d.clock.NewTimer(dur)
	defer t.Stop()
	select {
	case <-jobCtx.Done():
	case <-t.Chan():
	case <-kick:
		return jobCtx.Err() == nil
	}
	return false
}

// syncSlot syncs job once while holding one of the maxConcurrentSyncs slots.
func (d *Daemon) syncSlot(jobCtx context.Context, job *jobs.Job) error {
	select {
	case d.slots <- struct{}{}:
	case <-jobCtx.Done():
		return jobCtx.Err()
	}
	defer func() { <-d.slots }()
	return d.syncer.Sync(d.opCtx, job)
}

// Apply switches to a new config's secrets: new secrets are added, removed
// ones unscheduled and changed ones replaced; unchanged jobs keep their
// schedule and state.
func (d *Daemon) Apply(_ context.Context, cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	next := map[string]config.Secret{}
	for _, s := range cfg.Secrets {
		next[s.Name] = s
	}
	var added, removed, changed, errs []string
	var failed []error
	for name, e := range d.entries {
		s, ok := next[name]
		if ok && s.Same(e.job.Secret) {
			continue
		}
		if err := d.sched.RemoveJob(e.id); err != nil && !errors.Is(err, gocron.ErrJobNotFound) {
			failed = append(failed, fmt.Errorf("unschedule %s: %w", name, err))
		}
		delete(d.entries, name)
		if ok {
			changed = append(changed, name)
		} else {
			removed = append(removed, name)
			d.rec.Forget(name, e.job.Secret.VaultPath())
			d.syncer.Forget(name) // its values are no longer the sidecar's to scrub
		}
	}
	d.cfg = cfg
	if len(changed) > 0 {
		// A changed secret is not ready until its new job has written it:
		// drop its state first, then configure the full set.
		kept := &config.Config{}
		for _, s := range cfg.Secrets {
			if !contains(changed, s.Name) {
				kept.Secrets = append(kept.Secrets, s)
			}
		}
		d.status.Configure(secretInfos(kept))
	}
	d.status.Configure(secretInfos(cfg))
	for _, s := range cfg.Secrets {
		if _, kept := d.entries[s.Name]; kept {
			continue
		}
		if err := d.add(s); err != nil {
			failed = append(failed, err)
			errs = append(errs, s.Name)
			continue
		}
		if !contains(changed, s.Name) {
			added = append(added, s.Name)
		}
	}
	d.log.Info("config applied", zap.String("config", cfg.File), zap.Strings("added", added),
		zap.Strings("removed", removed), zap.Strings("changed", changed), zap.Int("unchanged", len(cfg.Secrets)-len(added)-len(changed)-len(errs)))
	return errors.Join(failed...)
}

// Jobs returns the scheduled jobs by secret name (for tests and status).
func (d *Daemon) Jobs() map[string]*jobs.Job {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]*jobs.Job, len(d.entries))
	for name, e := range d.entries {
		out[name] = e.job
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func secretInfos(cfg *config.Config) []status.SecretInfo {
	out := make([]status.SecretInfo, len(cfg.Secrets))
	for i, s := range cfg.Secrets {
		out[i] = status.SecretInfo{Name: s.Name, VaultPath: s.VaultPath(), RefreshInterval: s.RefreshInterval.Duration, Source: "kv"}
		if s.IsLeased() {
			out[i].Source, out[i].MinRemaining = "lease", cfg.Leases.MinRemaining.Duration
		}
	}
	return out
}
