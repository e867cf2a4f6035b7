package vault

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBackoffCeiling(t *testing.T) {
	b := Backoff{Base: time.Second, Max: 30 * time.Second}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i, w := range want {
		if got := b.Ceiling(i); got != w*time.Second {
			t.Errorf("Ceiling(%d) = %s, want %s", i, got, w*time.Second)
		}
	}
	for _, attempt := range []int{-5, 62, 63, 64, 1000, math.MaxInt} {
		if got := b.Ceiling(attempt); got < 0 || got > b.Max {
			t.Errorf("Ceiling(%d) = %s out of [0, Max]", attempt, got)
		}
	}
	huge := Backoff{Base: time.Hour, Max: math.MaxInt64}
	if got := huge.Ceiling(100); got != math.MaxInt64 {
		t.Errorf("no overflow: Ceiling = %d", got)
	}
	if got := (Backoff{Base: time.Second}).Ceiling(5); got != time.Second {
		t.Errorf("zero Max: Ceiling = %s, want Base", got)
	}
	if got := (Backoff{Max: time.Second}).Delay(3); got != 0 {
		t.Errorf("zero Base: Delay = %s, want 0", got)
	}
}

// TestBackoffJitter: over many samples (deterministic seed), delays stay
// in [0, ceiling), spread uniformly (full jitter: mean ~ ceiling/2, both
// halves and all deciles populated) and are rarely equal.
func TestBackoffJitter(t *testing.T) {
	const samples = 20000
	b := Backoff{Base: 100 * time.Millisecond, Max: 5 * time.Second, Rand: rand.New(rand.NewPCG(1, 2))}
	for attempt := range 10 {
		ceiling := b.Ceiling(attempt)
		var sum float64
		var deciles [10]int
		distinct := map[time.Duration]bool{}
		for range samples {
			d := b.Delay(attempt)
			if d < 0 || d >= ceiling || d > b.Max {
				t.Fatalf("attempt %d: delay %s outside [0, %s)", attempt, d, ceiling)
			}
			sum += float64(d)
			deciles[int(10*float64(d)/float64(ceiling))]++
			distinct[d] = true
		}
		mean := sum / samples / float64(ceiling)
		if math.Abs(mean-0.5) > 0.02 {
			t.Errorf("attempt %d: mean %.3f of the ceiling, want ~0.5", attempt, mean)
		}
		for i, n := range deciles {
			if n < samples/10*8/10 || n > samples/10*12/10 {
				t.Errorf("attempt %d: decile %d has %d samples, want ~%d", attempt, i, n, samples/10)
			}
		}
		if len(distinct) < samples*99/100 {
			t.Errorf("attempt %d: only %d distinct delays in %d: not jittered", attempt, len(distinct), samples)
		}
	}
	// The default source jitters too.
	def := Backoff{Base: time.Second, Max: time.Minute}
	seen := map[time.Duration]bool{}
	for range 4 {
		seen[def.Delay(3)] = true
	}
	if len(seen) == 1 {
		t.Error("the default source returned the same delay four times")
	}
}

func TestBackoffWait(t *testing.T) {
	b := Backoff{Base: time.Hour, Max: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Wait(ctx, 3) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait ignored the canceled context")
	}
	short := Backoff{Base: time.Millisecond, Max: 2 * time.Millisecond}
	if err := short.Wait(context.Background(), 0); err != nil {
		t.Fatalf("short Wait = %v", err)
	}
}
