package notify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// hook records the batches it gets; fail makes its first calls fail.
type hook struct {
	batches chan notify.Batch
	fail    atomic.Int32
	block   chan struct{} // when set, Notify waits for it (or ctx)
	running atomic.Int32
	overlap atomic.Bool
}

func newHook() *hook { return &hook{batches: make(chan notify.Batch, 16)} }

func (h *hook) Notify(ctx context.Context, b notify.Batch) error {
	if h.running.Add(1) > 1 {
		h.overlap.Store(true)
	}
	defer h.running.Add(-1)
	h.batches <- b
	if h.block != nil {
		select {
		case <-h.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if h.fail.Add(-1) >= 0 {
		return errors.New("supervisor: child not running")
	}
	return nil
}

func (h *hook) next(t *testing.T) notify.Batch {
	t.Helper()
	select {
	case b := <-h.batches:
		return b
	case <-time.After(10 * time.Second):
		t.Fatal("no batch")
	}
	return notify.Batch{}
}

func (h *hook) none(t *testing.T) {
	t.Helper()
	select {
	case b := <-h.batches:
		t.Fatalf("unexpected batch %+v", b)
	case <-time.After(50 * time.Millisecond):
	}
}

// named is a hook reporting under its own kind.
type named struct{ *hook }

func (named) Name() string { return "supervisor" }

func settings(debounce time.Duration) config.Notify {
	return config.Notify{Debounce: config.NewDuration(debounce), Attempts: config.DefaultAttempts}
}

// startFake runs a Notifier on a fake clock.
func startFake(t *testing.T, s notify.Settings, o notify.Options) (*notify.Notifier, *clockwork.FakeClock) {
	t.Helper()
	clock := clockwork.NewFakeClock()
	s.Clock = clock
	n := notify.NewNotifier(s, o)
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Stop(ctx)
	})
	return n, clock
}

// advance moves the clock once the loop waits on it.
func advance(t *testing.T, c *clockwork.FakeClock, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("the loop does not wait on the clock: %v", err)
	}
	c.Advance(d)
}

func TestWindowIsFixedNotSliding(t *testing.T) {
	h := newHook()
	n, clock := startFake(t, notify.Settings{Notify: settings(2 * time.Second)}, notify.Options{Hooks: []notify.Hook{h}})
	n.Changed(change("s0"))
	opened := clock.Now()
	// A change every 500ms: a sliding window would never close.
	for i := 1; i < 4; i++ {
		advance(t, clock, 500*time.Millisecond)
		n.Changed(change("s" + string(rune('0'+i))))
		h.none(t)
	}
	advance(t, clock, 499*time.Millisecond)
	h.none(t)
	advance(t, clock, time.Millisecond)
	b := h.next(t)
	if got := clock.Since(opened); got != 2*time.Second {
		t.Fatalf("window closed after %s, want 2s", got)
	}
	if !slices.Equal(b.Secrets, []string{"s0", "s1", "s2", "s3"}) || len(b.Files) != 4 || b.Created {
		t.Fatalf("batch %+v", b)
	}
	// The trickle goes on: the next window opens with the next change.
	n.Changed(change("s4"))
	advance(t, clock, 2*time.Second)
	if b := h.next(t); !slices.Equal(b.Secrets, []string{"s4"}) {
		t.Fatalf("second batch %+v", b)
	}
	h.none(t)
}

func TestChangesWhileRunningOpenTheNextWindow(t *testing.T) {
	h := newHook()
	h.block = make(chan struct{})
	n, clock := startFake(t, notify.Settings{Notify: settings(time.Second)}, notify.Options{Hooks: []notify.Hook{h}})
	n.Changed(change("a"))
	advance(t, clock, time.Second)
	h.next(t) // running, blocked
	n.Changed(change("b"))
	clock.Advance(3 * time.Second) // b's window is over while a's batch still runs
	h.none(t)
	h.block <- struct{}{}
	if b := h.next(t); !slices.Equal(b.Secrets, []string{"b"}) {
		t.Fatalf("second batch %+v", b)
	}
	h.block <- struct{}{}
	if h.overlap.Load() {
		t.Fatal("two batches ran at once")
	}
}

func TestCreatedBatchAndDuplicateDestinations(t *testing.T) {
	h := newHook()
	n, clock := startFake(t, notify.Settings{Notify: settings(time.Second)}, notify.Options{Hooks: []notify.Hook{h}})
	c := change("a")
	c.Created = true
	n.Changed(c)
	n.Changed(c)
	advance(t, clock, time.Second)
	if b := h.next(t); !b.Created || len(b.Files) != 1 {
		t.Fatalf("batch %+v", b)
	}
	n.Changed(c)
	n.Changed(change("b"))
	advance(t, clock, time.Second)
	if b := h.next(t); b.Created || len(b.Files) != 2 {
		t.Fatalf("batch of a created and a changed file: %+v", b)
	}
}

func TestUpdateMovesTheWindowAndRetries(t *testing.T) {
	h := newHook()
	r := newRuns()
	n, clock := startFake(t, notify.Settings{Notify: settings(2 * time.Second)},
		notify.Options{Hooks: []notify.Hook{named{h}}, Recorder: r, Status: status{r}})
	n.Changed(change("a"))
	if err := clock.BlockUntilContext(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	n.Update(config.Notify{Debounce: config.NewDuration(10 * time.Second), Attempts: 1})
	advance(t, clock, 2*time.Second)
	h.none(t)
	advance(t, clock, 8*time.Second)
	h.next(t)
	r.wait(t, 1)
	if got := r.all()[0]; got.kind != "supervisor" || got.result != metrics.ResultSuccess {
		t.Fatalf("hook run: %+v", got)
	}

	// Attempts 1: a failing hook is tried once.
	h.fail.Store(5)
	n.Changed(change("a"))
	advance(t, clock, 10*time.Second)
	h.next(t)
	r.wait(t, 2)
	h.none(t)
	if rep := r.reports("a")[1]; rep.Attempts != 1 || rep.Result != metrics.ResultError || rep.Kind != "supervisor" {
		t.Fatalf("report %+v", rep)
	}

	// Three attempts again, backing off.
	n.Update(config.Notify{Debounce: config.NewDuration(time.Second), Attempts: 3})
	h.fail.Store(2)
	n.Changed(change("a"))
	advance(t, clock, time.Second)
	h.next(t)
	advance(t, clock, 2*time.Second) // first backoff: 1s ±50%
	h.next(t)
	advance(t, clock, 4*time.Second) // second: 2s ±50%
	h.next(t)
	r.wait(t, 3)
	if rep := r.reports("a")[2]; rep.Attempts != 3 || rep.Result != metrics.ResultSuccess {
		t.Fatalf("report %+v", rep)
	}
}

func TestStopRunsPendingChanges(t *testing.T) {
	h := newHook()
	clock := clockwork.NewFakeClock()
	n := notify.NewNotifier(notify.Settings{Notify: settings(time.Hour), Clock: clock}, notify.Options{Hooks: []notify.Hook{h}})
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.Changed(change("a"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Stop ran the pending batch at once, without waiting for the window.
	if b := h.next(t); !slices.Equal(b.Secrets, []string{"a"}) {
		t.Fatalf("batch %+v", b)
	}
	n.Changed(change("late"))
	h.none(t)
	if err := n.Start(context.Background()); err == nil {
		t.Fatal("started again after stop")
	}
}

func TestStopAnnouncesChangesMadeWhileItDrains(t *testing.T) {
	h := newHook()
	h.block = make(chan struct{})
	n := notify.NewNotifier(notify.Settings{Notify: settings(time.Hour), Clock: clockwork.NewFakeClock()}, notify.Options{Hooks: []notify.Hook{h}})
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.Changed(change("a"))
	stopped := make(chan error, 1)
	go func() { stopped <- n.Stop(context.Background()) }()
	if b := h.next(t); !slices.Equal(b.Secrets, []string{"a"}) {
		t.Fatalf("first batch %+v", b)
	}
	n.Changed(change("b")) // a write the daemon finished while stopping
	h.block <- struct{}{}
	if b := h.next(t); !slices.Equal(b.Secrets, []string{"b"}) {
		t.Fatalf("second batch %+v", b)
	}
	h.block <- struct{}{}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	n.Changed(change("c"))
	h.none(t)
}

func TestStopIsBoundedByItsContext(t *testing.T) {
	h := newHook()
	h.block = make(chan struct{}) // never released: only ctx ends it
	r := newRuns()
	log, logs := logtest.New(t)
	n := notify.NewNotifier(notify.Settings{Notify: settings(time.Hour), Clock: clockwork.NewFakeClock()},
		notify.Options{Hooks: []notify.Hook{h}, Log: log, Recorder: r, Status: status{r}})
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.Changed(change("a"))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := n.Stop(ctx)
	took := time.Since(began)
	t.Logf("stop returned after %s (ctx 200ms): %v", took, err)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stop: %v", err)
	}
	if took > 10*time.Second { // ctx 200ms + the 2s grace, with room for a loaded machine
		t.Fatalf("stop took %s", took)
	}
	if rep := r.reports("a"); len(rep) != 1 || rep[0].Result != metrics.ResultError {
		t.Fatalf("the cut-short run was not reported: %+v", rep)
	}
	if !strings.Contains(logs.String(), "change action failed") {
		t.Fatalf("no failure line:\n%s", logs)
	}
}

func TestStopWithoutStart(t *testing.T) {
	n := notify.NewNotifier(notify.Settings{}, notify.Options{})
	n.Changed(change("a", execAction(0, "true")))
	if err := n.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Changed never waits for an action, even one that hangs.
func TestChangedNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	hang := execAction(time.Minute, "sh", "-c", `touch "$1"; exec sleep 60`, "sh", started)
	r := newRuns()
	n := notify.NewNotifier(notify.Settings{Notify: fast(3)}, notify.Options{Recorder: r, Status: status{r}})
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.Changed(change("a", hang))
	waitFor(t, 10*time.Second, "the action to hang", func() bool { _, err := os.Stat(started); return err == nil })
	began := time.Now()
	var slowest time.Duration
	for i := range 10000 {
		t0 := time.Now()
		n.Changed(change("s"+string(rune('a'+i%26)), hang))
		slowest = max(slowest, time.Since(t0))
	}
	took := time.Since(began)
	t.Logf("10000 Changed calls while an action hangs: %s in all, slowest %s", took, slowest)
	if slowest > time.Second {
		t.Fatalf("Changed blocked for %s", slowest)
	}
	// Stop with little time: the hanging command is killed, not waited for.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := n.Stop(ctx); err == nil {
		t.Fatal("stop reported no cut-short actions")
	}
}

func TestOneSpanPerRunLinkedToTheSyncs(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	syncSpan := func() trace.SpanContext {
		_, s := tp.Tracer("test").Start(context.Background(), "sync")
		s.End()
		return s.SpanContext()
	}
	r := newRuns()
	n := start(t, notify.Settings{Notify: fast(1)}, notify.Options{Tracer: tp, Recorder: r, Status: status{r}})
	secret := "span-secret-value-0009"
	action := execAction(0, "sh", "-c", `echo "$1"`, "sh", secret)
	links := []trace.SpanContext{syncSpan(), syncSpan()}
	for i, s := range []string{"db", "api"} {
		c := change(s, action, execAction(0, "false"))
		c.Link, c.Redact = links[i], []logging.Redacted{logging.Redacted(secret)}
		n.Changed(c)
	}
	r.wait(t, 2)
	var spans []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == "notify.action" {
			spans = append(spans, s)
		}
	}
	if len(spans) != 2 {
		t.Fatalf("%d action spans for 2 distinct actions, want 2", len(spans))
	}
	for _, s := range spans {
		attrs := map[attribute.Key]attribute.Value{}
		for _, a := range s.Attributes() {
			attrs[a.Key] = a.Value
			if strings.Contains(a.Value.String(), secret) {
				t.Errorf("span attribute %s holds the secret", a.Key)
			}
		}
		if attrs["action.kind"].AsString() != "exec" || attrs["action.attempts"].AsInt64() != 1 {
			t.Errorf("span attributes %v", attrs)
		}
		if got := len(s.Links()); got != 2 {
			t.Errorf("span has %d links, want the 2 sync spans", got)
		}
		for _, l := range s.Links() {
			if !slices.ContainsFunc(links, l.SpanContext.Equal) {
				t.Errorf("link to an unknown span %v", l.SpanContext)
			}
		}
	}
	var ok, failed int
	for _, s := range spans {
		for _, a := range s.Attributes() {
			if a.Key == "action.result" {
				switch a.Value.AsString() {
				case "success":
					ok++
				case "error":
					failed++
				}
			}
		}
	}
	if ok != 1 || failed != 1 {
		t.Fatalf("span results: %d success, %d error; want 1 and 1", ok, failed)
	}
}

func TestModule(t *testing.T) {
	h := newHook()
	var n *notify.Notifier
	app := fxtest.New(t,
		fx.NopLogger,
		fx.Supply(&config.Config{Notify: settings(10 * time.Millisecond)}, zap.NewNop()),
		fx.Provide(fx.Annotate(func() notify.Hook { return h }, fx.ResultTags(`group:"notify_hooks"`))),
		fx.Provide(
			func() notify.Recorder { return metrics.Discard{} },
			func() notify.StatusSink { return discardStatus{} },
			func() notify.CredentialSource { return noCredentials{} },
			func() trace.TracerProvider { return noop.NewTracerProvider() },
		),
		notify.Module,
		fx.Populate(&n),
	)
	app.RequireStart()
	n.Changed(change("a"))
	if b := h.next(t); !slices.Equal(b.Secrets, []string{"a"}) {
		t.Fatalf("batch %+v", b)
	}
	app.RequireStop()
}

// discardStatus keeps no action reports.
type discardStatus struct{}

func (discardStatus) ActionDone(string, notify.Report) {}

// noCredentials holds no credentials to scrub.
type noCredentials struct{}

func (noCredentials) Credentials() []logging.Redacted { return nil }
