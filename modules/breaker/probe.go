package breaker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Probe checks, without going through the breaker, whether the guarded
// service answers again (for Vault: sys/health, where a sealed or
// uninitialised server does not count). Its error becomes the breaker's
// last failure, so it must hold no secrets.
type Probe func(ctx context.Context) error

const (
	// probeInterval is the time between probes while the breaker is open,
	// with +-25% jitter.
	probeInterval = time.Second
	// probeTimeout bounds one probe.
	probeTimeout = 2 * time.Second
	// flapWindow: a breaker that opens again this soon after the probe
	// closed it is flapping (the service answers its health check but
	// fails real calls); each flap doubles the probe interval, up to the
	// open timeout, so real calls are not hammered.
	flapWindow = 30 * time.Second
)

// prober runs the probe while the breaker is open.
type prober struct {
	probe Probe
	every time.Duration
	wake  chan struct{} // a transition to open
	stop  context.CancelFunc
	done  chan struct{}

	mu       sync.Mutex
	closedAt time.Time // when the probe last closed the breaker
	flaps    int
}

func (p *prober) init() {
	p.every = probeInterval
	p.wake = make(chan struct{}, 1)
}

// opened is called at every transition to open.
func (p *prober) opened() {
	p.mu.Lock()
	if !p.closedAt.IsZero() && time.Since(p.closedAt) < flapWindow {
		p.flaps++
	} else {
		p.flaps = 0
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *prober) closed() {
	p.mu.Lock()
	p.closedAt = time.Now()
	p.mu.Unlock()
}

// delay is the wait before the next probe: the interval, doubled per flap
// up to limit, with jitter.
func (p *prober) delay(limit time.Duration) time.Duration {
	p.mu.Lock()
	flaps := p.flaps
	p.mu.Unlock()
	d := p.every
	for i := 0; i < flaps && (limit <= 0 || d < limit); i++ {
		d *= 2
	}
	if limit > 0 && d > limit {
		d = limit
	}
	return time.Duration(float64(d) * (0.75 + 0.5*rand.Float64())) //nolint:gosec // jitter, not security
}

// SetProbe sets the health probe that Start runs while the breaker is
// open. The vault module supplies it; without one the breaker waits out
// its OpenTimeout.
func (b *Breaker) SetProbe(p Probe) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prober.probe = p
}

// Start starts the probe's goroutine (when there is a probe). It idles
// until the breaker opens and never blocks Start.
func (b *Breaker) Start(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.prober.probe == nil || b.prober.stop != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.prober.stop, b.prober.done = cancel, done
	probe := b.prober.probe
	go func() {
		defer close(done)
		b.probeLoop(ctx, probe)
	}()
	return nil
}

// Stop stops the probe and waits for it, at most until ctx ends.
func (b *Breaker) Stop(ctx context.Context) error {
	b.mu.Lock()
	stop, done := b.prober.stop, b.prober.done
	b.prober.stop, b.prober.done = nil, nil
	b.mu.Unlock()
	if stop == nil {
		return nil
	}
	stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("breaker: stop: health probe still running: %w", ctx.Err())
	}
}

// probeLoop probes while the breaker is not closed, and sleeps otherwise.
func (b *Breaker) probeLoop(ctx context.Context, probe Probe) {
	for {
		if b.State() == Closed {
			select {
			case <-ctx.Done():
				return
			case <-b.prober.wake:
				continue
			}
		}
		t := time.NewTimer(b.prober.delay(b.Settings().OpenTimeout))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if b.State() == Closed { // a trial call or new settings closed it
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			cause := err.Error()
			b.cause.Store(&cause)
			b.log.Debug("vault health probe: not yet", zap.Error(err))
			continue
		}
		b.closeByProbe(ctx)
	}
}
