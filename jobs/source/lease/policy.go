package lease

import (
	"math/rand/v2"
	"time"
)

// The renewal policy's timings, each a pure function of what is known, so
// that the table in the README and these stay one thing.

// jitter is the +- share of randomness on every planned renewal or
// replacement, so leases minted together do not come due together.
const jitter = 0.1

// minRenewAfter keeps a renewal from following a mint or a renewal at
// once, however short the TTL.
const minRenewAfter = time.Second

// handoverMargin is what a replacement keeps between its new credential
// and the old one's end on top of the change actions' debounce and splay:
// the application hears of the new credential while the old still works.
const handoverMargin = 5 * time.Second

// spread returns d moved by a random +-jitter share.
func spread(d time.Duration) time.Duration {
	w := time.Duration(float64(d) * jitter)
	if w <= 0 {
		return d
	}
	return d - w + rand.N(2*w+1) //nolint:gosec // jitter, not security
}

// renewAt is when a renewable lease granted ttl at from is renewed: the
// fraction of its TTL, jittered, never within minRenewAfter of from. The
// first renewal after a mint or an adoption (first) comes anywhere up to
// that point instead, uniformly: leases minted together (a fleet's start,
// a restart) would otherwise renew within +-jitter of one moment, and go
// on doing so for many periods; spread over the whole period at once,
// their renewals load Vault as evenly as their steady rate. It costs at
// most one early renewal per lease.
func renewAt(from time.Time, ttl time.Duration, fraction float64, first bool) time.Time {
	d := time.Duration(float64(ttl) * fraction)
	switch {
	case first && d > minRenewAfter:
		d = minRenewAfter + rand.N(d-minRenewAfter+1) //nolint:gosec // jitter, not security
	default:
		d = spread(d)
	}
	return from.Add(max(d, minRenewAfter))
}

// replaceAt is when a lease that cannot live past end (its max TTL, not
// renewable, its token's end) is replaced: the fraction of its whole life
// from issued to end, jittered, and never later than handover before end
// (debounce + splay + handoverMargin), nor before now.
func replaceAt(now, issued, end time.Time, fraction float64, handover time.Duration) time.Time {
	at := issued.Add(spread(time.Duration(float64(end.Sub(issued)) * fraction)))
	if latest := end.Add(-handover); at.After(latest) {
		at = latest
	}
	if at.Before(now) {
		at = now
	}
	return at
}

// backoff is the wait after the n-th consecutive failed renewal (n >= 1):
// doubling from a second, never more than half of what is left until
// deadline (so it tries again before the end), and at least a second.
func backoff(n int, now, deadline time.Time) time.Duration {
	d := time.Second << min(n-1, 10)
	if left := deadline.Sub(now) / 2; d > left {
		d = left
	}
	return max(d, time.Second)
}
