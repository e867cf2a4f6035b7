package breaker

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeProbe fails with err until healthy is set; it counts its calls.
type fakeProbe struct {
	healthy atomic.Bool
	calls   atomic.Int64
}

func (p *fakeProbe) probe(ctx context.Context) error {
	p.calls.Add(1)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if p.healthy.Load() {
		return nil
	}
	return errors.New("dial tcp 127.0.0.1:8200: connect: connection refused")
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func startWithProbe(t *testing.T, b *Breaker, p *fakeProbe, every time.Duration) {
	t.Helper()
	b.flaps.every = every
	pr := NewProber(b, p.probe)
	if err := pr.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pr.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
}

func TestProbeClosesTheBreakerAndWakesWaiters(t *testing.T) {
	rec := &recorder{}
	b := NewBreaker(Settings{MaxFailures: 2, OpenTimeout: time.Hour, Interval: time.Minute}, nil, rec)
	p := &fakeProbe{}
	startWithProbe(t, b, p, 20*time.Millisecond)

	time.Sleep(100 * time.Millisecond)
	if n := p.calls.Load(); n != 0 {
		t.Fatalf("probed %d times while closed", n)
	}
	waiting := b.Recovered() // taken before the calls, as jobs do
	for range 2 {
		done, err := b.Allow()
		if err != nil {
			t.Fatal(err)
		}
		done(Failure, "dial tcp 127.0.0.1:8200: connect: connection refused")
	}
	_, err := b.Allow()
	if !errors.Is(err, ErrOpen) || err.Error() != "circuit breaker is open (last failure: dial tcp 127.0.0.1:8200: connect: connection refused)" {
		t.Fatalf("open breaker's error: %v", err)
	}
	waitFor(t, func() bool { return p.calls.Load() >= 3 }, "probes while open")
	if closed(waiting) || b.State() != Open {
		t.Fatal("a failing probe closed the breaker")
	}

	p.healthy.Store(true)
	healthyAt := time.Now()
	select {
	case <-waiting:
	case <-time.After(5 * time.Second):
		t.Fatal("Recovered did not fire after the probe succeeded")
	}
	t.Logf("probe success -> waiters woken: %s", time.Since(healthyAt))
	if b.State() != Closed {
		t.Fatalf("state %s after a good probe", b.State())
	}
	if next := b.Recovered(); closed(next) {
		t.Fatal("the next Recovered channel is already closed")
	}
	if done, err := b.Allow(); err != nil {
		t.Fatalf("closed breaker refused: %v", err)
	} else {
		done(Success, "")
	}
	n := p.calls.Load()
	time.Sleep(150 * time.Millisecond)
	if p.calls.Load() != n {
		t.Fatal("still probing after the breaker closed")
	}
	if got := rec.seen(); len(got) != 3 || got[1] != 2 || got[2] != 0 {
		t.Fatalf("observer saw %v, want closed, open, closed", got)
	}
}

// TestProbeSeesTrialAndUpdate: whatever closes the breaker (a trial call,
// new settings) fires Recovered and stops the probe.
func TestRecoveredFiresOnEveryClose(t *testing.T) {
	b := NewBreaker(Settings{MaxFailures: 1, OpenTimeout: 50 * time.Millisecond, Interval: time.Minute}, nil, nil)
	p := &fakeProbe{}
	startWithProbe(t, b, p, time.Hour) // the probe never gets a turn
	ch := b.Recovered()
	_ = call(t, b, Failure)
	waitState(t, b, HalfOpen)
	if err := call(t, b, Success); err != nil {
		t.Fatal(err)
	}
	if !closed(ch) {
		t.Fatal("a good trial call did not fire Recovered")
	}
	ch = b.Recovered()
	_ = call(t, b, Failure)
	b.Update(Settings{MaxFailures: 3, OpenTimeout: time.Minute, Interval: time.Minute})
	if !closed(ch) {
		t.Fatal("new settings closed the breaker without firing Recovered")
	}
}

// TestProbeCauseAndFallback: a probe that keeps failing records its cause,
// and OpenTimeout still lets a trial call through.
func TestProbeFailuresKeepTheFallback(t *testing.T) {
	b := NewBreaker(Settings{MaxFailures: 1, OpenTimeout: 300 * time.Millisecond, Interval: time.Minute}, nil, nil)
	p := &fakeProbe{}
	startWithProbe(t, b, p, 20*time.Millisecond)
	done, _ := b.Allow()
	done(Failure, "HTTP 503: Vault is sealed")
	waitFor(t, func() bool { return p.calls.Load() >= 2 }, "probes")
	if _, err := b.Allow(); err == nil || !strings.Contains(err.Error(), "last failure: dial tcp 127.0.0.1:8200") {
		t.Fatalf("the probe's failure is not the cause: %v", err)
	}
	waitState(t, b, HalfOpen)
	if _, err := b.Allow(); err != nil {
		t.Fatalf("no trial call after OpenTimeout: %v", err)
	}
}

func TestProbeBacksOffWhenFlapping(t *testing.T) {
	var p flaps
	p.init()
	p.every = 100 * time.Millisecond
	if d := p.delay(time.Minute); d < 75*time.Millisecond || d > 125*time.Millisecond {
		t.Fatalf("first delay %s", d)
	}
	for range 3 { // closed by the probe, opened again at once: flapping
		p.closed()
		p.opened()
	}
	if d := p.delay(time.Minute); d < 600*time.Millisecond || d > time.Second {
		t.Fatalf("delay after 3 flaps %s, want about 800ms", d)
	}
	if d := p.delay(300 * time.Millisecond); d > 375*time.Millisecond {
		t.Fatalf("delay %s above the open timeout", d)
	}
}

// TestStartStopTwice: a second Start and Stop change nothing.
func TestStartStopTwice(t *testing.T) {
	b := NewBreaker(Settings{MaxFailures: 1, OpenTimeout: time.Minute}, nil, nil)
	p := NewProber(b, (&fakeProbe{}).probe)
	for range 2 {
		if err := p.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if err := p.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestModuleRunsTheProbe: the fx hooks start and stop the probe.
func TestModuleRunsTheProbe(t *testing.T) {
	env, err := config.ParseEnv([]string{"SIDECAR_BREAKER_MAX_FAILURES=1", "SIDECAR_BREAKER_OPEN_TIMEOUT=1h"})
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeProbe{}
	p.healthy.Store(true)
	var b *Breaker
	app := fxtest.New(t, Module, fx.Supply(env, zap.NewNop()), fx.Populate(&b),
		fx.Provide(func() Probe { return p.probe }, func() StateObserver { return metrics.Discard{} }))
	app.RequireStart()
	ch := b.Recovered()
	_ = call(t, b, Failure)
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("the module's probe did not close the breaker")
	}
	app.RequireStop()
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
