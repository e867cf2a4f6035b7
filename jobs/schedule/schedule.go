// Package schedule is when a secret is read: every timing its refresh
// interval implies (the jittered period, the spread of first runs, the
// too-soon guard, the retry backoff's cap), and the retry loop that the
// daemon and `once` share. Time comes from an injected clock, so tests
// drive it instead of sleeping.
package schedule

import (
	"math/rand/v2"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

const (
	// Jitter is the +-fraction of randomness on each refresh interval, so
	// a fleet of sidecars does not hit Vault in lockstep.
	Jitter = 0.10
	// RetryBase is the first retry delay of a failing secret; retries
	// back off exponentially (full jitter) up to the cap.
	RetryBase = time.Second
	// OnceRetryMax caps the retry delay of `once`: an init container
	// should notice a recovered Vault quickly, whatever the interval.
	OnceRetryMax = 8 * time.Second
)

// Schedule is one secret's timing, derived from its refresh interval.
type Schedule struct {
	// Interval is the secret's refresh interval.
	Interval time.Duration
}

// Every returns the schedule of a secret refreshed every interval.
func Every(interval time.Duration) Schedule { return Schedule{Interval: interval} }

// Period is the fixed part of the time between two runs (counted from the
// end of the previous one): the interval less the jitter. Each run ends
// with a random Tail, so a refresh comes within +-Jitter of the interval.
func (s Schedule) Period() time.Duration {
	return time.Duration(float64(s.Interval) * (1 - Jitter))
}

// width is the jitter window's width: 2*Jitter of the interval.
func (s Schedule) width() time.Duration {
	return time.Duration(float64(s.Interval)*(1+Jitter)) - s.Period()
}

// FirstRun is the delay of a first run that must not come at once (exec
// mode has just synced everything): somewhere in the jitter window around
// one interval.
func (s Schedule) FirstRun() time.Duration {
	return s.Period() + rand.N(s.width()+1) //nolint:gosec // jitter, not security
}

// Tail is the random wait at the end of a run. A regular run waits up to
// the jitter window's width; the first run, and a run that outlasted
// failures (a Vault outage ends for every secret at once), wait up to a
// whole interval, so that secrets and sidecars that started together
// spread their refreshes over the interval.
func (s Schedule) Tail(spread bool) time.Duration {
	w := s.width()
	if spread {
		w = s.Interval
	}
	if w <= 0 {
		return 0
	}
	return rand.N(w) //nolint:gosec // jitter, not security
}

// TooSoon says whether a run since after the last success is too early to
// be a refresh. One read per secret per interval: gocron has been seen to
// start a job a second time moments after a run.
func (s Schedule) TooSoon(since time.Duration) bool {
	return since < s.Interval/2
}

// Backoff is the daemon's retry backoff: from RetryBase up to one interval.
func (s Schedule) Backoff() vault.Backoff {
	return vault.Backoff{Base: RetryBase, Max: s.Interval}
}

// OnceBackoff is `once`'s retry backoff: from RetryBase up to the interval
// or OnceRetryMax, whichever is shorter.
func (s Schedule) OnceBackoff() vault.Backoff {
	return vault.Backoff{Base: RetryBase, Max: min(s.Interval, OnceRetryMax)}
}
