// Package reload applies a changed config while the sidecar runs: on SIGHUP
// and, when watching is on, when the config file or one of its template
// files changes. A new config is loaded and validated first; an invalid one
// is logged and the running config stays. A valid one goes to the
// components that joined the appliers' value groups: first the settings
// (the vault client, the change notifier), then the secrets (the daemon).
package reload

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// DefaultDebounce gathers the burst of events one save produces (editors
// write, rename and chmod; Kubernetes swaps a ConfigMap's ..data symlink).
const DefaultDebounce = 300 * time.Millisecond

// Applier takes a new, validated config. Apply must leave the component
// as it was when it returns an error.
type Applier interface {
	Apply(ctx context.Context, cfg *config.Config) error
}

// ApplierFunc is a function that is an Applier.
type ApplierFunc func(ctx context.Context, cfg *config.Config) error

// Apply calls f.
func (f ApplierFunc) Apply(ctx context.Context, cfg *config.Config) error { return f(ctx, cfg) }

// Appliers are the components a reload applies to, in two phases.
type Appliers struct {
	// Settings take the process-wide settings (vault:, notify:) first;
	// when one fails the reload fails before any secret changes.
	Settings []Applier
	// Secrets then take the secrets (the daemon's jobs).
	Secrets []Applier
}

// Recorder counts reloads by result (*metrics.Metrics).
type Recorder interface {
	ConfigReload(result metrics.Result)
}

// Reloader reloads the config on SIGHUP and, when watching is on, when the
// config file or one of its template files changes. Their directories are
// watched, so that editors' rename-writes and Kubernetes' ConfigMap updates
// (a swap of the ..data symlink) are seen, but only events for those files
// and for the ..data machinery count: the status file or anything else
// written beside the config does not reload it. A new config is validated
// first; an invalid one is logged and ignored and the old config keeps
// running, and the same invalid content is reported once, not on every
// event.
type Reloader struct {
	path     string
	loader   *config.Loader
	apply    Appliers
	rec      Recorder
	log      *zap.Logger
	watch    bool
	sighup   bool
	debounce time.Duration

	mu       sync.Mutex // serialises reloads
	current  *config.Config
	lastSum  [32]byte
	rejected *[32]byte // the inputs of the last config reported as invalid
	watcher  *fsnotify.Watcher
	signals  chan os.Signal

	watchMu  sync.Mutex      // guards the two sets below (read by the loop)
	watching map[string]bool // directories watched
	targets  map[string]bool // the config file and its template files
	cancel   context.CancelFunc
	done     chan struct{}
}

// Settings are New's plain values.
type Settings struct {
	Watch    bool          // SIDECAR_WATCH_CONFIG
	Debounce time.Duration // 0: DefaultDebounce
	// NoSIGHUP leaves SIGHUP alone (exec mode forwards it to the child);
	// reloads then follow the file watcher only.
	NoSIGHUP bool
}

// New reloads cfg's file with loader and hands valid configs to apply;
// rec counts the reloads.
func New(cfg *config.Config, loader *config.Loader, apply Appliers, rec Recorder, log *zap.Logger, s Settings) *Reloader {
	r := &Reloader{
		path: cfg.File, loader: loader, apply: apply, rec: rec, log: log,
		watch: s.Watch, sighup: !s.NoSIGHUP, debounce: s.Debounce,
		watching: map[string]bool{}, targets: map[string]bool{},
	}
	if r.debounce <= 0 {
		r.debounce = DefaultDebounce
	}
	r.current, r.lastSum = cfg, sourceSum(cfg)
	return r
}

// Start installs the SIGHUP handler and the file watcher. It never blocks.
func (r *Reloader) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan struct{})
	r.signals = make(chan os.Signal, 1)
	if r.sighup {
		signal.Notify(r.signals, syscall.SIGHUP)
	}

	var events chan fsnotify.Event
	var errs chan error
	if r.watch {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			signal.Stop(r.signals)
			cancel()
			return err
		}
		r.watcher = w
		events, errs = w.Events, w.Errors
		r.mu.Lock()
		r.watchFiles(r.current.TemplateFiles())
		r.mu.Unlock()
	}
	go r.loop(ctx, events, errs)
	r.log.Info("config reload armed", zap.String("config", r.path), zap.Bool("watch", r.watch), zap.Bool("sighup", r.sighup))
	return nil
}

// Stop removes the handler and the watcher and waits for the loop.
func (r *Reloader) Stop(ctx context.Context) error {
	if r.cancel == nil {
		return nil
	}
	signal.Stop(r.signals)
	r.cancel()
	if r.watcher != nil {
		_ = r.watcher.Close()
	}
	select {
	case <-r.done:
	case <-ctx.Done():
	}
	return nil
}

func (r *Reloader) loop(ctx context.Context, events chan fsnotify.Event, errs chan error) {
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.signals:
			r.log.Info("SIGHUP: reloading config", zap.String("config", r.path))
			r.Reload(ctx, true)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if r.relevant(ev) {
				timer.Reset(r.debounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			r.log.Warn("config watcher error", zap.Error(err))
		case <-timer.C:
			r.Reload(ctx, false)
		}
	}
}

// relevant keeps the events that can change the config: any event on the
// config file or a template file, and the creation, renaming or removal of
// a ".."-prefixed entry (Kubernetes' ..data symlink and ..<timestamp>
// directories) in a watched directory.
func (r *Reloader) relevant(ev fsnotify.Event) bool {
	name := filepath.Clean(ev.Name)
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	if r.targets[name] {
		return true
	}
	return ev.Op != fsnotify.Chmod && strings.HasPrefix(filepath.Base(name), "..") && r.watching[filepath.Dir(name)]
}

// Reload reads the config again and applies it when it is valid. Without
// force, a config whose file and templates have not changed is skipped, and
// an invalid config is reported (error log, error count) only when its
// content differs from the last one reported. It reports whether a new
// config was applied.
func (r *Reloader) Reload(ctx context.Context, force bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, in, err := r.loader.LoadInputs(r.path)
	if err != nil {
		// Watch the template files the new text names, so that creating
		// or fixing one of them is seen while the config is invalid.
		r.watchFiles(append(r.current.TemplateFiles(), in.TemplateFiles...))
		sum := inputSum(in)
		if !force && r.rejected != nil && *r.rejected == sum {
			r.log.Debug("config still invalid, unchanged since reported", zap.String("config", r.path))
			return false
		}
		r.rejected = &sum
		var probs config.Problems
		if errors.As(err, &probs) {
			lines := make([]string, len(probs))
			for i, p := range probs {
				lines[i] = p.String()
			}
			r.log.Error("config reload rejected; the previous config keeps running",
				zap.String("config", r.path), zap.Strings("problems", lines))
		} else {
			r.log.Error("config reload failed; the previous config keeps running", zap.String("config", r.path), zap.Error(err))
		}
		r.rec.ConfigReload(metrics.ResultError)
		return false
	}
	r.rejected = nil
	sum := sourceSum(cfg)
	if !force && sum == r.lastSum {
		r.watchFiles(r.current.TemplateFiles())
		return false
	}
	if err := r.applySettings(ctx, cfg); err != nil {
		r.log.Error("config reload rejected: its settings cannot be applied; the previous config keeps running",
			zap.String("config", r.path), zap.Error(err))
		r.rec.ConfigReload(metrics.ResultError)
		return false
	}
	var errs []error
	for _, a := range r.apply.Secrets {
		errs = append(errs, a.Apply(ctx, cfg))
	}
	if err := errors.Join(errs...); err != nil {
		r.log.Error("config reload could not be applied in full", zap.String("config", r.path), zap.Error(err))
		r.rec.ConfigReload(metrics.ResultError)
		return false
	}
	r.current, r.lastSum = cfg, sum
	r.rec.ConfigReload(metrics.ResultSuccess)
	r.watchFiles(cfg.TemplateFiles())
	return true
}

// watchFiles makes the config file and files the reload targets and
// watches their directories (adding is idempotent, and re-adding a
// directory that a ConfigMap swap replaced watches the new one); a
// directory no target needs any more is dropped. The caller holds r.mu.
func (r *Reloader) watchFiles(files []string) {
	targets := map[string]bool{filepath.Clean(r.path): true}
	for _, f := range files {
		targets[f] = true
	}
	dirs := map[string]bool{}
	for f := range targets {
		dirs[filepath.Dir(f)] = true
	}
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	r.targets = targets
	if r.watcher == nil {
		return
	}
	for d := range r.watching {
		if !dirs[d] {
			_ = r.watcher.Remove(d)
			delete(r.watching, d)
		}
	}
	for d := range dirs {
		if err := r.watcher.Add(d); err != nil {
			if !r.watching[d] {
				r.log.Warn("cannot watch directory for config changes", zap.String("dir", d), zap.Error(err))
			}
			continue
		}
		r.watching[d] = true
	}
}

// sourceSum identifies a loaded config by what it was loaded from: the
// resolved secrets (templates included) and vault settings.
func sourceSum(cfg *config.Config) [32]byte {
	h := sha256.New()
	for _, s := range cfg.Secrets {
		_, _ = h.Write([]byte(s.Name + "\x00" + s.Destination + "\x00" + s.TemplateText + "\x00"))
		for _, f := range s.Files {
			_, _ = h.Write([]byte(f.Destination + "\x00" + f.TemplateText + "\x00"))
		}
	}
	_, _ = h.Write(cfg.Digest[:])
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// inputSum identifies an invalid config by its text and the content of the
// template files it names (a missing one counts as missing).
func inputSum(in config.Inputs) [32]byte {
	h := sha256.New()
	_, _ = h.Write(in.Text)
	sorted := slices.Clone(in.TemplateFiles)
	slices.Sort(sorted)
	for _, f := range slices.Compact(sorted) {
		data, err := config.ReadFile(f, config.MaxTemplateFile)
		state := "\x00ok\x00"
		if err != nil {
			state = "\x00missing\x00"
		}
		_, _ = h.Write([]byte("\x00" + f + state))
		_, _ = h.Write(data)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// applySettings applies cfg's settings; on a failure it puts back the
// running config's settings in those already applied, so that a reload
// changes all of them or none.
func (r *Reloader) applySettings(ctx context.Context, cfg *config.Config) error {
	for i, a := range r.apply.Settings {
		if err := a.Apply(ctx, cfg); err != nil {
			for _, done := range r.apply.Settings[:i] {
				if rerr := done.Apply(ctx, r.current); rerr != nil {
					r.log.Error("the previous settings could not be put back", zap.Error(rerr))
				}
			}
			return err
		}
	}
	return nil
}
