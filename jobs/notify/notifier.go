package notify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// stopGrace bounds how long Stop waits, after its ctx ended, for the
// aborted action to return (an exec's killed group to be reaped).
const stopGrace = 2 * time.Second

// Settings are NewNotifier's plain values; zero fields get the defaults.
type Settings struct {
	// Notify is the config's notify: block.
	Notify config.Notify
	// Clock times windows, splay and backoff (nil: the real clock).
	// Timeouts of exec and http always use the real clock.
	Clock clockwork.Clock
	// Environ is the environment exec actions start from (nil: os.Environ).
	Environ func() []string
	// ProcRoot is where processes are looked up by name (default /proc).
	ProcRoot string
	// Backoff is the wait before the second attempt, doubled for each
	// further one (default 1s).
	Backoff time.Duration
}

// Options are the Notifier's collaborators; nil fields get harmless
// defaults (New without fx). In fx, each is taken from the graph, Hooks
// from the "notify_hooks" group.
type Options struct {
	fx.In

	Log      *zap.Logger
	Recorder Recorder
	Status   StatusSink
	Tracer   trace.TracerProvider
	// Credentials are scrubbed from exec output that is logged.
	Credentials CredentialSource
	Hooks       []Hook `group:"notify_hooks"`
}

// Notifier collects changes into windows and runs their actions. Its
// methods are safe for concurrent use.
type Notifier struct {
	log      *zap.Logger
	rec      Recorder
	status   StatusSink
	tracer   trace.Tracer
	clock    clockwork.Clock
	hooks    []Hook
	environ  func() []string
	procRoot string
	backoff  time.Duration
	self     int
	client   *httpClient
	creds    CredentialSource

	heldMu sync.Mutex
	held   map[string][]logging.Redacted // Hold

	mu       sync.Mutex
	settings config.Notify
	pending  *window
	started  bool
	stopping bool
	closed   bool

	wake    chan struct{} // cap 1: a change arrived
	updated chan struct{} // cap 1: settings changed
	quit    chan struct{} // closed by Stop
	done    chan struct{} // closed when the loop returned
	ctx     context.Context
	cancel  context.CancelFunc
}

// NewNotifier returns a Notifier, usable without fx; nothing runs before
// Start.
func NewNotifier(s Settings, o Options) *Notifier {
	n := &Notifier{
		log: o.Log, rec: o.Recorder, status: o.Status, clock: s.Clock, hooks: o.Hooks,
		environ: s.Environ, procRoot: s.ProcRoot, backoff: s.Backoff, self: os.Getpid(),
		settings: s.Notify, client: newHTTPClient(), creds: o.Credentials,
		wake: make(chan struct{}, 1), updated: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	if n.log == nil {
		n.log = zap.NewNop()
	}
	if n.rec == nil {
		n.rec = nopRecorder{}
	}
	if n.status == nil {
		n.status = nopStatus{}
	}
	tp := o.Tracer
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	n.tracer = tp.Tracer("github.com/secrets-sidecar/secrets-sidecar/jobs/notify")
	if n.clock == nil {
		n.clock = clockwork.NewRealClock()
	}
	if n.environ == nil {
		n.environ = os.Environ
	}
	if n.procRoot == "" {
		n.procRoot = "/proc"
	}
	if n.backoff <= 0 {
		n.backoff = DefaultBackoff
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n
}

// Changed records a change for the current window (opening one if none is
// open). It never waits for an action. A change without actions is
// ignored unless hooks are registered; changes after Stop returned are
// ignored.
func (n *Notifier) Changed(c Change) {
	if len(c.Actions) == 0 && len(n.hooks) == 0 {
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.log.Debug("change after stop: no action runs", zap.String("secret_name", c.Secret))
		return
	}
	if n.pending == nil {
		n.pending = newWindow(n.clock.Now())
	}
	n.pending.add(c)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Update replaces the settings (config hot reload). An open window's end
// moves to its first change plus the new debounce; attempts and splay
// apply from the next batch.
func (n *Notifier) Update(s config.Notify) {
	n.mu.Lock()
	n.settings = s
	n.mu.Unlock()
	select {
	case n.updated <- struct{}{}:
	default:
	}
}

// Start starts the window loop. It never blocks.
func (n *Notifier) Start(context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.started || n.stopping {
		return errors.New("notify: already started")
	}
	n.started = true
	go n.loop()
	return nil
}

// Stop runs the pending changes' actions at once and waits for them,
// bounded by ctx (see the package doc). It returns an error when ctx ended
// before they all ran.
func (n *Notifier) Stop(ctx context.Context) error {
	n.mu.Lock()
	if n.stopping {
		n.mu.Unlock()
		return nil
	}
	n.stopping = true
	started := n.started
	if !started {
		n.closed = true
		n.pending = nil
	}
	n.mu.Unlock()
	if !started {
		return nil
	}
	close(n.quit)
	select {
	case <-n.done:
		n.cancel()
		return nil
	case <-ctx.Done():
	}
	n.cancel()
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-n.done:
	case <-t.C:
		n.log.Warn("change action still running after stop; abandoning it")
	}
	return fmt.Errorf("notify: stop: %w: pending change actions were cut short", ctx.Err())
}

type settings struct {
	debounce, splay time.Duration
	attempts        int
}

func (n *Notifier) current() settings {
	n.mu.Lock()
	s := n.settings
	n.mu.Unlock()
	out := settings{debounce: s.Debounce.Duration, splay: s.Splay.Duration, attempts: s.Attempts}
	if out.splay < 0 {
		out.splay = 0
	}
	out.attempts = max(out.attempts, 1)
	return out
}

// loop is the one goroutine that closes windows and runs their batches.
func (n *Notifier) loop() {
	defer close(n.done)
	for {
		if !n.hasPending() {
			select {
			case <-n.wake:
				continue
			case <-n.quit:
				n.drain()
				return
			}
		}
		if !n.waitWindow() {
			n.drain()
			return
		}
		b, s := n.cut(), n.current()
		if s.splay > 0 && !n.sleepQuit(rand.N(s.splay+1)) {
			n.run(b, s)
			n.drain()
			return
		}
		n.run(b, s)
	}
}

func (n *Notifier) hasPending() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pending != nil
}

// waitWindow waits for the open window to end; false when Stop came first.
func (n *Notifier) waitWindow() bool {
	for {
		n.mu.Lock()
		opened := n.pending.opened
		n.mu.Unlock()
		left := n.clock.Until(opened.Add(n.current().debounce))
		if left <= 0 {
			return true
		}
		// The end is computed again after the timer, so a debounce that
		// an Update lengthened meanwhile is honoured.
		t := n.clock.NewTimer(left)
		select {
		case <-t.Chan():
		case <-n.updated:
			t.Stop()
		case <-n.quit:
			t.Stop()
			return false
		}
	}
}

// sleepQuit waits d; false when Stop came first.
func (n *Notifier) sleepQuit(d time.Duration) bool {
	t := n.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-n.quit:
		return false
	}
}

// cut takes the open window's changes.
func (n *Notifier) cut() *window {
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.pending
	n.pending = nil
	return w
}

// drain runs what is pending, and what arrives meanwhile, until nothing is
// left or Stop's ctx ended; then it closes the Notifier to changes, in the
// same step as it found nothing left, so no change slips between.
func (n *Notifier) drain() {
	for {
		n.mu.Lock()
		w := n.pending
		n.pending = nil
		if w == nil || n.ctx.Err() != nil {
			n.closed = true
		}
		n.mu.Unlock()
		switch {
		case w == nil:
			return
		case n.ctx.Err() != nil:
			n.log.Warn("stopped before change actions ran", zap.Strings("secrets", w.secretNames()))
			return
		}
		n.run(w, n.current())
	}
}
