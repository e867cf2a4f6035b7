package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// RecoverySignal tells retries waiting out a backoff that Vault answers
// again (*breaker.Breaker): Recovered's channel is closed at the next
// recovery. Take it before an attempt, so a recovery during the attempt
// still counts. It is optional.
type RecoverySignal interface {
	Recovered() <-chan struct{}
}

// unavailableRetryMax caps the retry delay while Vault is unreachable or
// failing: before the breaker opens, failures come quickly (and open it);
// once it is open, an attempt costs nothing and the breaker's recovery
// wakes it. Either way a Vault that comes back is noticed within seconds,
// whatever the refresh interval.
const unavailableRetryMax = 2 * time.Second

// credentialPoll is how often a retry held back by a rejected login looks
// for new credentials (a few small file reads, no Vault call).
const credentialPoll = 500 * time.Millisecond

func recoveredChan(r RecoverySignal) <-chan struct{} {
	if r == nil {
		return nil // never fires
	}
	return r.Recovered()
}

// waitRetry waits before retry number attempt of a sync that failed with
// err, or returns ctx.Err() as soon as ctx ends:
//   - a login Vault rejected: until the same credentials may be tried
//     again, or until a credential file changes;
//   - Vault unreachable or failing (vault.IsUnavailable): the backoff
//     delay, at most unavailableRetryMax, cut short when Vault recovers;
//   - anything else (a missing secret, a denied read): the backoff delay.
func waitRetry(ctx context.Context, b vault.Backoff, attempt int, err error, recovered <-chan struct{}) error {
	if e := ctx.Err(); e != nil {
		return e
	}
	var rej *vault.LoginRejectedError
	if errors.As(err, &rej) {
		return waitCredentials(ctx, rej)
	}
	if vault.IsUnavailable(err) && (b.Max <= 0 || b.Max > unavailableRetryMax) {
		b.Max = unavailableRetryMax
	}
	return b.WaitOrWake(ctx, attempt, recovered)
}

func waitCredentials(ctx context.Context, rej *vault.LoginRejectedError) error {
	until := time.NewTimer(time.Until(rej.RetryAt))
	defer until.Stop()
	tick := time.NewTicker(credentialPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-until.C:
			return nil
		case <-tick.C:
			if rej.CredentialsChanged() {
				return nil
			}
		}
	}
}
