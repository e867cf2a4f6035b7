package breaker

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

type recorder struct {
	mu     sync.Mutex
	states []int
}

func (r *recorder) BreakerState(s State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, int(s))
}

func (r *recorder) seen() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.states...)
}

func call(t *testing.T, b *Breaker, o Outcome) error {
	t.Helper()
	done, err := b.Allow()
	if err != nil {
		return err
	}
	done(o, "")
	return nil
}

func waitState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("breaker is %s, want %s", b.State(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOpensAfterConsecutiveFailures(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	rec := &recorder{}
	b := NewBreaker(Settings{MaxFailures: 3, OpenTimeout: 500 * time.Millisecond, Interval: time.Minute}, zap.New(core), rec)

	// A success resets the count; an ignored call neither counts nor resets it.
	for _, o := range []Outcome{Failure, Failure, Success, Failure, Failure, Ignore} {
		if err := call(t, b, o); err != nil {
			t.Fatal(err)
		}
	}
	if b.State() != Closed {
		t.Fatalf("opened without %d consecutive failures", 3)
	}
	if err := call(t, b, Failure); err != nil {
		t.Fatal(err)
	}
	if b.State() != Open {
		t.Fatalf("state %s after 3 consecutive failures", b.State())
	}
	start := time.Now()
	err := call(t, b, Success)
	if !errors.Is(err, ErrOpen) || time.Since(start) > time.Second {
		t.Fatalf("open breaker: err = %v", err)
	}
	if !strings.Contains(err.Error(), "circuit breaker is open") {
		t.Fatalf("message %q", err)
	}

	waitState(t, b, HalfOpen)
	trial, err := b.Allow()
	if err != nil {
		t.Fatalf("half-open refused the trial: %v", err)
	}
	if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
		t.Fatalf("a second call during the trial: err = %v, want ErrOpen", err)
	}
	trial(Failure, "") // the trial fails: open again
	if b.State() != Open {
		t.Fatalf("failed trial left it %s", b.State())
	}
	waitState(t, b, HalfOpen)
	if err := call(t, b, Success); err != nil {
		t.Fatal(err)
	}
	if b.State() != Closed {
		t.Fatalf("good trial left it %s", b.State())
	}

	want := []int{0, 2, 1, 2, 1, 0}
	if got := rec.seen(); !slices.Equal(got, want) {
		t.Fatalf("observer saw %v, want %v", got, want)
	}
	changes := logs.FilterMessage("vault circuit breaker state changed").All()
	if len(changes) != 5 {
		t.Fatalf("%d state changes logged, want 5", len(changes))
	}
	first := changes[0]
	if first.Level != zap.WarnLevel || first.ContextMap()["from"] != "closed" || first.ContextMap()["to"] != "open" {
		t.Fatalf("first change logged as %v %v", first.Level, first.ContextMap())
	}
}

func TestIntervalResetsCounts(t *testing.T) {
	b := NewBreaker(Settings{MaxFailures: 2, OpenTimeout: time.Minute, Interval: 50 * time.Millisecond}, nil, nil)
	for range 5 {
		if err := call(t, b, Failure); err != nil {
			t.Fatal(err)
		}
		time.Sleep(80 * time.Millisecond) // the count resets before the next failure
	}
	if b.State() != Closed {
		t.Fatalf("spaced failures opened it")
	}
}

func TestDoneOnce(t *testing.T) {
	b := NewBreaker(Settings{MaxFailures: 2, OpenTimeout: time.Minute}, nil, nil)
	done, err := b.Allow()
	if err != nil {
		t.Fatal(err)
	}
	done(Failure, "")
	done(Failure, "") // a second report is ignored
	if b.State() != Closed {
		t.Fatal("one call counted twice")
	}
}

func TestUpdate(t *testing.T) {
	rec := &recorder{}
	s := Settings{MaxFailures: 1, OpenTimeout: time.Minute, Interval: time.Minute}
	b := NewBreaker(s, nil, rec)
	b.Update(s) // equal: nothing
	if err := call(t, b, Failure); err != nil || b.State() != Open {
		t.Fatalf("state %s, err %v", b.State(), err)
	}
	late, _ := b.Allow() // refused while open
	if late != nil {
		t.Fatal("open breaker allowed a call")
	}
	s2 := Settings{MaxFailures: 3, OpenTimeout: time.Minute, Interval: time.Minute}
	b.Update(s2)
	if b.State() != Closed || b.Settings() != s2 {
		t.Fatalf("after Update: %s %+v", b.State(), b.Settings())
	}
	for range 2 {
		_ = call(t, b, Failure)
	}
	if b.State() != Closed {
		t.Fatal("the new threshold is not in force")
	}
	if got := rec.seen(); !slices.Equal(got, []int{0, 2, 0}) {
		t.Fatalf("observer saw %v", got)
	}
}

func TestModule(t *testing.T) {
	env, err := config.ParseEnv([]string{"SIDECAR_BREAKER_MAX_FAILURES=2", "SIDECAR_BREAKER_OPEN_TIMEOUT=5s"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	var b *Breaker
	noProbe := func() Probe { return func(context.Context) error { return nil } }
	fxtest.New(t, Module,
		fx.Supply(env, zap.NewNop()),
		fx.Provide(func() StateObserver { return rec }, noProbe),
		fx.Populate(&b),
	).RequireStart().RequireStop()
	if got := b.Settings(); got != (Settings{MaxFailures: 2, OpenTimeout: 5 * time.Second, Interval: 60 * time.Second}) {
		t.Fatalf("settings %+v", got)
	}
	_ = call(t, b, Failure)
	_ = call(t, b, Failure)
	if b.State() != Open || !slices.Equal(rec.seen(), []int{0, 2}) {
		t.Fatalf("state %s, observer %v", b.State(), rec.seen())
	}

	// A graph that serves no metrics supplies metrics.Discard.
	fxtest.New(t, Module, fx.Supply(env, zap.NewNop()), fx.Provide(noProbe, func() StateObserver { return metrics.Discard{} }),
		fx.Invoke(func(*Breaker) {})).RequireStart().RequireStop()
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Closed: "closed", HalfOpen: "half-open", Open: "open", 7: "state(7)"} {
		if s.String() != want {
			t.Errorf("%d: %q", int(s), s.String())
		}
	}
}
