package jobs

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// OnceRetryMax caps the retry delay of `once`: an init container should
// notice a recovered Vault quickly, whatever the refresh interval.
const OnceRetryMax = 8 * time.Second

// Once syncs every secret a single time for init containers: all secrets
// concurrently with a bounded number of workers, each retried with backoff
// until it is written or the timeout passes.
type Once struct {
	cfg      *config.Config
	syncer   *Syncer
	log      *zap.Logger
	timeout  time.Duration
	workers  int
	recovery RecoverySignal
}

// Failure is a secret `once` could not write.
type Failure struct {
	Secret string
	Err    error
}

// NewOnce returns a runner for cfg.
func NewOnce(cfg *config.Config, syncer *Syncer, log *zap.Logger, timeout time.Duration, workers int) *Once {
	if workers <= 0 {
		workers = 1
	}
	return &Once{cfg: cfg, syncer: syncer, log: log, timeout: timeout, workers: workers}
}

// SetRecovery makes retries waiting out a backoff start again as soon as
// Vault recovers (the breaker closes). Call it before Run.
func (o *Once) SetRecovery(r RecoverySignal) { o.recovery = r }

// Run syncs every secret and returns the ones that were not written, in
// config order. It never runs past the timeout (or ctx): a secret still
// failing then is reported with its last error.
func (o *Once) Run(ctx context.Context) []Failure {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	start := time.Now()

	errs := make([]error, len(o.cfg.Secrets))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(o.workers, len(o.cfg.Secrets)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = o.one(ctx, o.cfg.Secrets[i])
			}
		}()
	}
	for i := range o.cfg.Secrets {
		next <- i
	}
	close(next)
	wg.Wait()

	var failed []Failure
	for i, err := range errs {
		if err != nil {
			failed = append(failed, Failure{Secret: o.cfg.Secrets[i].Name, Err: err})
		}
	}
	written := len(o.cfg.Secrets) - len(failed)
	for _, f := range failed {
		o.log.Error("secret not written", zap.String("secret_name", f.Secret), zap.Error(f.Err))
	}
	log := o.log.Info
	if len(failed) > 0 {
		log = o.log.Error
	}
	log("once finished", zap.Int("written", written), zap.Int("failed", len(failed)),
		zap.Int("secrets", len(o.cfg.Secrets)), zap.Duration("took", time.Since(start)))
	return failed
}

// one syncs a secret, retrying until it succeeds or ctx ends. An error
// that cannot succeed (IsPermanent) fails at once; a login Vault rejected
// waits for new credentials (or the retry time), without more logins.
func (o *Once) one(ctx context.Context, sec config.Secret) error {
	job, err := o.syncer.NewJob(sec)
	if err != nil {
		return err
	}
	backoff := vault.Backoff{Base: RetryBase, Max: min(sec.RefreshInterval.Duration, OnceRetryMax)}
	var last error
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			if last == nil {
				last = err
			}
			return last
		}
		recovered := recoveredChan(o.recovery)
		last = o.syncer.Sync(ctx, job)
		if last == nil || IsPermanent(last) {
			return last
		}
		if waitRetry(ctx, backoff, attempt, last, recovered) != nil {
			return last
		}
	}
}
