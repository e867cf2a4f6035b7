package vault

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is exponential backoff with full jitter: attempt n waits a
// uniformly random time in [0, Ceiling(n)), where Ceiling(n) is
// min(Max, Base*2^n). A zero Max means Max = Base (no growth). Rand, when
// set, is the random source (tests seed it); it is not safe for concurrent
// use, so give each goroutine its own. Nil uses the process's shared one.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
	Rand *rand.Rand
}

// Ceiling is the exclusive upper bound of attempt's delay.
func (b Backoff) Ceiling(attempt int) time.Duration {
	if b.Base <= 0 {
		return 0
	}
	limit := b.Max
	if limit <= 0 {
		limit = b.Base
	}
	if attempt < 0 {
		attempt = 0
	}
	// Base*2^attempt without overflow: stop doubling at the limit.
	d := b.Base
	for i := 0; i < attempt && d < limit; i++ {
		if d > limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}

// Delay is how long to wait before retry number attempt (0, 1, 2, ...):
// never negative, never above Max.
func (b Backoff) Delay(attempt int) time.Duration {
	ceiling := b.Ceiling(attempt)
	if ceiling <= 0 {
		return 0
	}
	var f float64
	if b.Rand != nil {
		f = b.Rand.Float64()
	} else {
		f = rand.Float64()
	}
	return time.Duration(f * float64(ceiling))
}

// Wait sleeps Delay(attempt), or returns ctx.Err() as soon as ctx ends.
func (b Backoff) Wait(ctx context.Context, attempt int) error {
	return b.WaitOrWake(ctx, attempt, nil)
}

// WaitOrWake is Wait that also ends, without error, when wake fires (or is
// closed); a nil wake never fires.
func (b Backoff) WaitOrWake(ctx context.Context, attempt int, wake <-chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := b.Delay(attempt)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	case <-wake:
		return nil
	}
}
