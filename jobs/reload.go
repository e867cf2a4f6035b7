package jobs

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// DefaultDebounce gathers the burst of events one save produces (editors
// write, rename and chmod; Kubernetes swaps a ConfigMap's ..data symlink).
const DefaultDebounce = 300 * time.Millisecond

// Applier takes a new, validated config (*Daemon).
type Applier interface {
	Apply(ctx context.Context, cfg *config.Config) error
}

// ReloadRecorder counts reloads by result (*metrics.Metrics).
type ReloadRecorder interface {
	ConfigReload(result string)
}

// Reloader reloads the config on SIGHUP and, when watching is on, on any
// change in the directories of the config file and its template files.
// Directories rather than files are watched, so ConfigMap symlink swaps and
// editors' rename-writes are seen. A new config is validated first; an
// invalid one is logged and ignored and the old config keeps running.
type Reloader struct {
	path     string
	loader   *config.Loader
	apply    Applier
	rec      ReloadRecorder
	log      *zap.Logger
	watch    bool
	sighup   bool
	debounce time.Duration

	mu       sync.Mutex // serialises reloads
	current  *config.Config
	lastSum  [32]byte
	watcher  *fsnotify.Watcher
	watching map[string]bool
	signals  chan os.Signal
	cancel   context.CancelFunc
	done     chan struct{}
}

// ReloaderOptions configure NewReloader.
type ReloaderOptions struct {
	Watch    bool          // SIDECAR_WATCH_CONFIG
	Debounce time.Duration // 0: DefaultDebounce
	Recorder ReloadRecorder
	// NoSIGHUP leaves SIGHUP alone (exec mode forwards it to the child);
	// reloads then follow the file watcher only.
	NoSIGHUP bool
}

// NewReloader reloads cfg's file with loader and hands valid configs to apply.
func NewReloader(cfg *config.Config, loader *config.Loader, apply Applier, log *zap.Logger, o ReloaderOptions) *Reloader {
	r := &Reloader{
		path: cfg.File, loader: loader, apply: apply, rec: o.Recorder, log: log,
		watch: o.Watch, sighup: !o.NoSIGHUP, debounce: o.Debounce, watching: map[string]bool{},
	}
	if r.debounce <= 0 {
		r.debounce = DefaultDebounce
	}
	if r.rec == nil {
		r.rec = nopReloads{}
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
		r.watchDirs(r.current)
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

// relevant ignores events the sidecar itself causes nowhere near config.
func (r *Reloader) relevant(ev fsnotify.Event) bool {
	return ev.Op != fsnotify.Chmod || filepath.Clean(ev.Name) == filepath.Clean(r.path)
}

// Reload reads the config again and applies it when it is valid. Without
// force, a config whose file and templates have not changed is skipped.
// It reports whether a new config was applied.
func (r *Reloader) Reload(ctx context.Context, force bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, err := r.loader.Load(r.path)
	if err != nil {
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
		r.rec.ConfigReload("error")
		return false
	}
	sum := sourceSum(cfg)
	if !force && sum == r.lastSum {
		return false
	}
	if err := r.apply.Apply(ctx, cfg); err != nil {
		r.log.Error("config reload could not be applied in full", zap.String("config", r.path), zap.Error(err))
		r.rec.ConfigReload("error")
		return false
	}
	r.current, r.lastSum = cfg, sum
	r.rec.ConfigReload("success")
	r.watchDirs(cfg)
	return true
}

// watchDirs watches the directories of the config and its template files.
// The caller holds r.mu.
func (r *Reloader) watchDirs(cfg *config.Config) {
	if r.watcher == nil {
		return
	}
	dirs := []string{filepath.Dir(r.path)}
	if cfg != nil {
		for _, s := range cfg.Secrets {
			if s.TemplateFile != "" {
				p := s.TemplateFile
				if !filepath.IsAbs(p) {
					p = filepath.Join(cfg.Dir(), p)
				}
				dirs = append(dirs, filepath.Dir(p))
			}
		}
	}
	for _, d := range dirs {
		d = filepath.Clean(d)
		if r.watching[d] {
			continue
		}
		if err := r.watcher.Add(d); err != nil {
			r.log.Warn("cannot watch directory for config changes", zap.String("dir", d), zap.Error(err))
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
	}
	raw, _ := os.ReadFile(cfg.File)
	_, _ = h.Write(raw)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

type nopReloads struct{}

func (nopReloads) ConfigReload(string) {}
