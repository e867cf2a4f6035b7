package schedule

import (
	"context"
	"errors"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// RecoverySignal tells retries waiting out a backoff that Vault answers
// again (*breaker.Breaker): Recovered's channel is closed at the next
// recovery. It is taken before each attempt, so a recovery during the
// attempt still counts.
type RecoverySignal interface {
	Recovered() <-chan struct{}
}

// NoRecovery is a RecoverySignal that never fires: backoffs run to the end.
type NoRecovery struct{}

// Recovered returns nil, a channel that never fires.
func (NoRecovery) Recovered() <-chan struct{} { return nil }

const (
	// unavailableRetryMax caps the retry delay while Vault is unreachable
	// or failing: before the breaker opens, failures come quickly (and
	// open it); once it is open, an attempt costs nothing and the
	// breaker's recovery wakes it. Either way a Vault that comes back is
	// noticed within seconds, whatever the refresh interval.
	unavailableRetryMax = 2 * time.Second
	// credentialPoll is how often a retry held back by a rejected login
	// looks for new credentials (a few small file reads, no Vault call).
	credentialPoll = 500 * time.Millisecond
)

// Retrier runs an attempt until it succeeds, with backoff.
type Retrier struct {
	clock    clockwork.Clock
	recovery RecoverySignal
}

// NewRetrier returns a Retrier timed by clock (nil: the real clock) whose
// backoffs end early when recovery fires (nil: they never do).
func NewRetrier(clock clockwork.Clock, recovery RecoverySignal) Retrier {
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	if recovery == nil {
		recovery = NoRecovery{}
	}
	return Retrier{clock: clock, recovery: recovery}
}

// Do calls attempt until it returns nil or an error final accepts, or ctx
// ends; it returns how many attempts ran and the last error (ctx's error
// when none ran). Between attempts it waits:
//   - after a login Vault rejected: until the same credentials may be
//     tried again, or until a credential file changes;
//   - while Vault is unreachable or failing (vault.IsUnavailable): the
//     backoff delay, at most unavailableRetryMax, cut short when Vault
//     recovers;
//   - after anything else (a missing secret, a denied read): the backoff
//     delay.
func (r Retrier) Do(ctx context.Context, b vault.Backoff, attempt func(context.Context) error, final func(error) bool) (attempts int, err error) {
	for {
		if e := ctx.Err(); e != nil {
			if err == nil {
				err = e
			}
			return attempts, err
		}
		recovered := r.recovery.Recovered()
		err = attempt(ctx)
		attempts++
		if err == nil || final(err) {
			return attempts, err
		}
		if r.wait(ctx, b, attempts-1, err, recovered) != nil {
			return attempts, err
		}
	}
}

// wait waits before retry number n of an attempt that failed with err, or
// returns ctx.Err() as soon as ctx ends.
func (r Retrier) wait(ctx context.Context, b vault.Backoff, n int, err error, recovered <-chan struct{}) error {
	if e := ctx.Err(); e != nil {
		return e
	}
	var rej *vault.LoginRejectedError
	if errors.As(err, &rej) {
		return r.waitCredentials(ctx, rej)
	}
	if vault.IsUnavailable(err) && (b.Max <= 0 || b.Max > unavailableRetryMax) {
		b.Max = unavailableRetryMax
	}
	d := b.Delay(n)
	if d <= 0 {
		return nil
	}
	t := r.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.Chan():
		return nil
	case <-recovered:
		return nil
	}
}

func (r Retrier) waitCredentials(ctx context.Context, rej *vault.LoginRejectedError) error {
	until := r.clock.NewTimer(r.clock.Until(rej.RetryAt))
	defer until.Stop()
	tick := r.clock.NewTicker(credentialPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-until.Chan():
			return nil
		case <-tick.Chan():
			if rej.CredentialsChanged() {
				return nil
			}
		}
	}
}
