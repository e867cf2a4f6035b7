package modes

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/files"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/schedule"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// Once syncs every secret a single time for init containers: all secrets
// concurrently with a bounded number of workers, each retried with backoff
// until it is written or the timeout passes.
type Once struct {
	cfg     *config.Config
	syncer  *jobs.Syncer
	log     *zap.Logger
	timeout time.Duration
	workers int
	retry   schedule.Retrier
	dryRun  bool
	plans   []jobs.Plan
}

// Failure is a secret `once` could not write.
type Failure struct {
	Secret string
	Err    error
}

// NewOnce returns a runner for cfg. Retries waiting out a backoff start
// again as soon as recovery fires (Vault answers again; nil: never). With
// s.DryRun, Run reads and renders every secret and compares it with its
// destination without writing anything (Syncer.Plan); Plans then says what
// a sync would do.
func NewOnce(cfg *config.Config, syncer *jobs.Syncer, log *zap.Logger, s OnceSettings, recovery schedule.RecoverySignal) *Once {
	return &Once{cfg: cfg, syncer: syncer, log: log, timeout: s.Timeout, workers: max(s.Workers, 1), dryRun: s.DryRun,
		retry: schedule.NewRetrier(nil, recovery)}
}

// Plans is what a dry run found, one per secret in config order, a
// failed secret as PlanError with its last error. Valid after Run.
func (o *Once) Plans() []jobs.Plan { return o.plans }

// Run syncs every secret: nil when every file was written (a dry run:
// checked), else an *ExitError with code 1 wrapping a *SyncFailed that
// lists the secrets not written, in config order, each with its last
// error. It never runs past the timeout; a cancelled ctx (a signal) ends
// it early as failed.
func (o *Once) Run(ctx context.Context) error {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start := time.Now()

	errs := make([]error, len(o.cfg.Secrets))
	// Plans are the dry run's output (one stdout line each); a sync has
	// none, so that it prints nothing there.
	o.plans = nil
	if o.dryRun {
		o.plans = make([]jobs.Plan, len(o.cfg.Secrets))
	}
	// One directory fsync per directory once every file is renamed into
	// place, instead of one per file: exit 0 still means every file is
	// durable, and a crash before then leaves old files or none, never
	// partial ones (files.Batch).
	syncer, batch := o.syncer, (*files.Batch)(nil)
	if !o.dryRun {
		batch = files.NewBatch()
		syncer = syncer.WithBatch(batch)
	}
	o.each(ctx, func(ctx context.Context, i int) {
		var plan *jobs.Plan
		if o.dryRun {
			plan = &o.plans[i]
		}
		errs[i] = o.one(ctx, syncer, o.cfg.Secrets[i], plan)
	})
	if batch != nil {
		if err := batch.Sync(); err != nil {
			// Rare (an I/O error): which renames it concerns is unclear,
			// so none of the written files counts as durable.
			for i := range errs {
				if errs[i] == nil {
					errs[i] = &jobs.SyncError{Secret: o.cfg.Secrets[i].Name, Stage: metrics.StageWrite, Err: err}
				}
			}
		}
	}

	var failed []Failure
	for i, err := range errs {
		if err != nil {
			sec := o.cfg.Secrets[i]
			failed = append(failed, Failure{Secret: sec.Name, Err: err})
			if o.dryRun {
				o.plans[i] = jobs.Plan{Secret: sec.Name, Destination: strings.Join(sec.Destinations(), " "), Action: jobs.PlanError, Err: err}
			}
		}
	}
	done, notDone, finished := "written", "secret not written", "once finished"
	if o.dryRun {
		done, notDone, finished = "checked", "secret not checked", "dry run finished"
	}
	for _, f := range failed {
		o.log.Error(notDone, zap.String("secret_name", f.Secret), zap.Error(f.Err))
	}
	log := o.log.Info
	if len(failed) > 0 {
		log = o.log.Error
	}
	log(finished, zap.Int(done, len(o.cfg.Secrets)-len(failed)), zap.Int("failed", len(failed)),
		zap.Int("secrets", len(o.cfg.Secrets)), zap.Duration("took", time.Since(start)))
	if len(failed) > 0 || parent.Err() != nil {
		return &ExitError{Code: 1, Err: &SyncFailed{Failed: failed, Interrupted: parent.Err() != nil}}
	}
	return nil
}

// each calls f for the index of every secret, at most o.workers at a
// time, and returns when all calls have.
func (o *Once) each(ctx context.Context, f func(ctx context.Context, i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(o.workers, len(o.cfg.Secrets)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(ctx, i)
			}
		}()
	}
	for i := range o.cfg.Secrets {
		next <- i
	}
	close(next)
	wg.Wait()
}

// one syncs a secret (in a dry run: plans it into plan, else nil), retrying until it
// succeeds or ctx ends. An error that cannot succeed (IsPermanent, a
// destination a dry run cannot read) fails at once; a login Vault
// rejected waits for new credentials (or the retry time), without more
// logins.
func (o *Once) one(ctx context.Context, syncer *jobs.Syncer, sec config.Secret, plan *jobs.Plan) error {
	job, err := syncer.NewJob(sec)
	if err != nil {
		return err
	}
	_, err = o.retry.Do(ctx, schedule.Every(sec.RefreshInterval.Duration).OnceBackoff(),
		func(ctx context.Context) (err error) {
			if o.dryRun {
				*plan, err = syncer.Plan(ctx, job)
				return err
			}
			return syncer.Sync(ctx, job)
		},
		jobs.IsPermanent)
	return err
}
