// Package breaker is the circuit breaker that guards every call the sidecar
// makes to Vault (sony/gobreaker v2). It is deliberately small, modelled on
// Temporal's common/circuitbreaker: callers ask Allow before a call and
// report its Outcome after it, so the caller (the vault module) decides
// which errors mean "Vault is unhealthy" and which are its own mistakes.
// The underlying gobreaker is swapped atomically when the settings change.
//
// While the breaker is open, a Prober running the caller's health probe
// checks about once a second, outside the breaker, whether the service answers again, and closes the breaker the
// moment it does. Recovered tells waiting callers. OpenTimeout is then only
// the fallback for a probe that keeps failing: the longest time before one
// trial call is let through anyway.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// State is the breaker's state, as published to the StateObserver: the
// metrics' label type, whose numbers are the breaker_state gauge's values.
type State = metrics.BreakerState

// The breaker's states.
const (
	Closed   = metrics.BreakerClosed
	HalfOpen = metrics.BreakerHalfOpen
	Open     = metrics.BreakerOpen
)

// ErrOpen is returned, without calling anything, while the breaker is open
// (and in half-open while the trial call is in flight). The error Allow
// returns wraps it and names the last failure's cause.
var ErrOpen = errors.New("circuit breaker is open")

// Outcome is what a call reports to the breaker.
type Outcome int

const (
	// Success is any answer that shows the service is healthy, including
	// the caller's own mistakes (400, 403, 404).
	Success Outcome = iota
	// Failure is a transport error, a timeout, a 5xx or a 429.
	Failure
	// Ignore is neither: the caller gave up (its context was canceled).
	Ignore
)

// StateObserver is told every state change. The metrics module implements
// it (metrics.Discard where nothing is served); NewBreaker takes nil.
type StateObserver interface {
	BreakerState(state State)
}

// Settings are the breaker's thresholds.
type Settings struct {
	// MaxFailures is the number of consecutive failures that opens it.
	MaxFailures uint32
	// OpenTimeout is the longest it stays open before one trial call is
	// let through; the health probe usually closes it long before.
	OpenTimeout time.Duration
	// Interval resets the failure count while closed (0 = never).
	Interval time.Duration
}

// SettingsFromEnv reads SIDECAR_BREAKER_MAX_FAILURES, _OPEN_TIMEOUT and
// _INTERVAL.
func SettingsFromEnv(e config.Env) Settings {
	return Settings{MaxFailures: e.BreakerMaxFailures, OpenTimeout: e.BreakerOpenTimeout, Interval: e.BreakerInterval}
}

// Breaker is a two-step circuit breaker, safe for concurrent use.
type Breaker struct {
	log      *zap.Logger
	observer StateObserver

	mu       sync.Mutex // serializes Update and the probe's close
	settings Settings
	cb       atomic.Pointer[gobreaker.TwoStepCircuitBreaker[struct{}]]
	cause    atomic.Pointer[string] // the last failure's cause

	recMu     sync.Mutex
	recovered chan struct{} // closed at the next transition to closed

	flaps flaps
}

// errFailure and errIgnored carry an Outcome into gobreaker's done callback.
var (
	errFailure = errors.New("failure")
	errIgnored = errors.New("ignored")
)

// NewBreaker returns a closed breaker. log and observer may be nil.
func NewBreaker(s Settings, log *zap.Logger, observer StateObserver) *Breaker {
	if log == nil {
		log = zap.NewNop()
	}
	b := &Breaker{log: log, observer: observer, settings: s, recovered: make(chan struct{})}
	b.flaps.init()
	b.cb.Store(b.newCB(s))
	b.notify(Closed)
	return b
}

func (b *Breaker) newCB(s Settings) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	maxFailures := s.MaxFailures
	if maxFailures == 0 {
		maxFailures = 1
	}
	var cb *gobreaker.TwoStepCircuitBreaker[struct{}]
	cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "vault",
		MaxRequests: 1,
		Interval:    s.Interval,
		Timeout:     s.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= maxFailures },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if b.cb.Load() == cb { // a replaced breaker's late calls change nothing visible
				b.changed(State(from), State(to))
			}
		},
		IsSuccessful: func(err error) bool { return err == nil },
		IsExcluded:   func(err error) bool { return errors.Is(err, errIgnored) },
	})
	return cb
}

func (b *Breaker) changed(from, to State) {
	fields := []zap.Field{zap.Stringer("from", from), zap.Stringer("to", to)}
	if c := b.lastCause(); c != "" && to != Closed {
		fields = append(fields, zap.String("last_failure", c))
	}
	b.log.Warn("vault circuit breaker state changed", fields...)
	b.notify(to)
	switch to {
	case Closed:
		b.recMu.Lock()
		close(b.recovered)
		b.recovered = make(chan struct{})
		b.recMu.Unlock()
	case Open:
		b.flaps.opened()
	}
}

// Recovered returns a channel that is closed at the breaker's next
// transition to closed (a trial call that succeeded, the health probe, new
// settings); every transition hands out a fresh one. Take it before a call
// and wait on it after a failure: a recovery during the call still counts.
func (b *Breaker) Recovered() <-chan struct{} {
	b.recMu.Lock()
	defer b.recMu.Unlock()
	return b.recovered
}

func (b *Breaker) lastCause() string {
	if c := b.cause.Load(); c != nil {
		return *c
	}
	return ""
}

// openError is ErrOpen with the cause of the failure that opened it.
func (b *Breaker) openError(halfOpen bool) error {
	var detail []string
	if halfOpen {
		detail = append(detail, "half-open, waiting for the trial call")
	}
	if c := b.lastCause(); c != "" {
		detail = append(detail, "last failure: "+c)
	}
	if len(detail) == 0 {
		return ErrOpen
	}
	return fmt.Errorf("%w (%s)", ErrOpen, strings.Join(detail, "; "))
}

func (b *Breaker) notify(s State) {
	if b.observer != nil {
		b.observer.BreakerState(s)
	}
}

// Allow asks to make one call. When the breaker refuses, it returns an
// error wrapping ErrOpen at once, naming the last failure's cause;
// otherwise the caller must call done exactly once with the call's outcome
// and, for a Failure, its cause: a short text without secrets, such as
// "dial tcp 127.0.0.1:8200: connect: connection refused".
func (b *Breaker) Allow() (done func(o Outcome, cause string), err error) {
	cb := b.cb.Load()
	report, err := cb.Allow()
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		return nil, b.openError(false)
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		return nil, b.openError(true)
	case err != nil:
		return nil, err
	}
	var once sync.Once
	return func(o Outcome, cause string) {
		once.Do(func() {
			switch o {
			case Success:
				report(nil)
			case Failure:
				if cause != "" {
					b.cause.Store(&cause)
				}
				report(errFailure)
			default:
				report(errIgnored)
			}
		})
	}, nil
}

// State is the current state. Reading it also moves an open breaker whose
// timeout has passed to half-open.
func (b *Breaker) State() State { return State(b.cb.Load().State()) }

// Settings returns the current settings.
func (b *Breaker) Settings() Settings {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.settings
}

// Update swaps in a fresh, closed breaker with new settings; equal settings
// change nothing. Calls in flight report to the breaker they started on.
func (b *Breaker) Update(s Settings) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s == b.settings {
		return
	}
	b.settings = s
	b.log.Info("vault circuit breaker settings changed",
		zap.Uint32("max_failures", s.MaxFailures), zap.Duration("open_timeout", s.OpenTimeout),
		zap.Duration("interval", s.Interval))
	b.reset()
}

// reset swaps in a fresh, closed gobreaker. The caller holds b.mu. The old
// one's late state changes are not shown (newCB's callback checks).
func (b *Breaker) reset() {
	old := b.cb.Swap(b.newCB(b.settings))
	if from := State(old.State()); from != Closed {
		b.changed(from, Closed)
	}
}

// closeByProbe closes an open or half-open breaker because the health
// probe saw the service answer.
func (b *Breaker) closeByProbe(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ctx.Err() != nil || b.State() == Closed {
		return
	}
	b.log.Info("vault answers its health check again; closing the circuit breaker")
	b.flaps.closed()
	b.reset()
}
