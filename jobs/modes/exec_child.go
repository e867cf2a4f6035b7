package modes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/jobs"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/notify"
	"github.com/secrets-sidecar/secrets-sidecar/modules/supervisor"
)

// What exec mode does to the child when a secret file changes
// (--on-change).
const (
	OnChangeSignal  = "signal"
	OnChangeRestart = "restart"
	OnChangeNone    = "none"
)

// childEnv keeps the latest data of the secrets whose fields are the
// child's environment (--env) and tells the notifier when the variables
// they give change, so the child is restarted with them. It implements
// DataObserver.
type childEnv struct {
	base  []string // the sidecar's environment without credentials
	names map[string]bool

	mu     sync.Mutex
	data   map[string]map[string]any
	vars   map[string][]string // per secret: its variables, to see a change
	notify jobs.ChangeNotifier // set once the child runs: changes are news then
}

func newChildEnv(base, names []string) *childEnv {
	e := &childEnv{base: base, names: map[string]bool{},
		data: map[string]map[string]any{}, vars: map[string][]string{}}
	for _, name := range names {
		e.names[name] = true
	}
	return e
}

// Observed implements DataObserver.
func (e *childEnv) Observed(secret string, data map[string]any) {
	if !e.names[secret] {
		return
	}
	vars, err := childEnviron(nil, map[string]map[string]any{secret: data})
	e.mu.Lock()
	changed := err != nil || !slices.Equal(vars, e.vars[secret])
	e.data[secret], e.vars[secret] = data, vars
	n := e.notify
	e.mu.Unlock()
	if changed && n != nil {
		// No file and no actions: this only opens a window, at whose end
		// the supervisor hook sees the new environment.
		n.Changed(notify.Change{Secret: secret})
	}
}

// arm makes later changes news for n (the child has started).
func (e *childEnv) arm(n jobs.ChangeNotifier) {
	e.mu.Lock()
	e.notify = n
	e.mu.Unlock()
}

// environ is the child's complete environment from the latest data.
func (e *childEnv) environ() ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for name := range e.names {
		if _, ok := e.data[name]; !ok {
			return nil, fmt.Errorf("--env %s: the secret has not been read", name)
		}
	}
	return childEnviron(e.base, e.data)
}

// childHook is the supervisor's part of every change window (a
// notify.Hook): a new environment restarts the child; a file change
// signals or restarts it, as --on-change says.
type childHook struct {
	env    *childEnv
	mode   string
	signal syscall.Signal
	log    *zap.Logger
	fatal  func(error) // the child could not be restarted: exec mode ends

	mu      sync.Mutex
	sup     *supervisor.Supervisor
	current []string // the running child's environment
}

// Name implements the hook's metrics kind.
func (h *childHook) Name() string { return "supervisor" }

func (h *childHook) attach(sup *supervisor.Supervisor, env []string) {
	h.mu.Lock()
	h.sup, h.current = sup, env
	h.mu.Unlock()
}

// Notify implements notify.Hook.
func (h *childHook) Notify(ctx context.Context, b notify.Batch) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sup == nil {
		return nil // the child has not started: it starts from these files
	}
	env, err := h.env.environ()
	if err != nil {
		// The running child keeps its environment; the operator fixes the secret.
		return fmt.Errorf("child environment not updated: %w", err)
	}
	switch {
	case !slices.Equal(env, h.current):
		h.log.Info("environment secrets changed; restarting the child", zap.Strings("secrets", b.Secrets))
		return h.restart(ctx, env)
	case len(b.Files) == 0:
		return nil
	case h.mode == OnChangeSignal:
		h.log.Info("secret files changed; signalling the child", zap.String("signal", unix.SignalName(h.signal)), zap.Strings("files", b.Files))
		if err := h.sup.Signal(h.signal); err != nil && !errors.Is(err, supervisor.ErrNoChild) {
			return err
		}
		return nil
	case h.mode == OnChangeRestart:
		h.log.Info("secret files changed; restarting the child", zap.Strings("files", b.Files))
		return h.restart(ctx, nil)
	}
	return nil
}

func (h *childHook) restart(ctx context.Context, env []string) error {
	err := h.sup.Restart(ctx, env)
	switch {
	case err == nil:
		if env != nil {
			h.current = env
		}
		return nil
	case errors.Is(err, supervisor.ErrNoChild):
		return nil // it exited by itself; exec mode is ending with its code
	}
	h.fatal(err)
	return err
}
