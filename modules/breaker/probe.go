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

// flaps is the breaker's memory of how it opened and closed, which paces
// the Prober.
type flaps struct {
	every time.Duration
	wake  chan struct{} // a transition to open

	mu       sync.Mutex
	closedAt time.Time // when the probe last closed the breaker
	flaps    int
}

func (p *flaps) init() {
	p.every = probeInterval
	p.wake = make(chan struct{}, 1)
}

// opened is called at every transition to open.
func (p *flaps) opened() {
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

func (p *flaps) closed() {
	p.mu.Lock()
	p.closedAt = time.Now()
	p.mu.Unlock()
}

// delay is the wait before the next probe: the interval, doubled per flap
// up to limit, with jitter.
func (p *flaps) delay(limit time.Duration) time.Duration {
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

// Prober runs a health probe while its breaker is open, and closes the
// breaker the moment the probe passes. Without one a breaker waits out its
// OpenTimeout.
type Prober struct {
	b     *Breaker
	probe Probe

	mu   sync.Mutex
	stop context.CancelFunc
	done chan struct{}
}

// NewProber returns a Prober of b running probe; Start starts it.
func NewProber(b *Breaker, probe Probe) *Prober { return &Prober{b: b, probe: probe} }

// Start starts the probe's goroutine. It idles until the breaker opens and
// never blocks.
func (p *Prober) Start(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p.stop, p.done = cancel, done
	go func() {
		defer close(done)
		p.b.probeLoop(ctx, p.probe)
	}()
	return nil
}

// Stop stops the probe and waits for it, at most until ctx ends.
func (p *Prober) Stop(ctx context.Context) error {
	p.mu.Lock()
	stop, done := p.stop, p.done
	p.stop, p.done = nil, nil
	p.mu.Unlock()
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
			case <-b.flaps.wake:
				continue
			}
		}
		t := time.NewTimer(b.flaps.delay(b.Settings().OpenTimeout))
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
