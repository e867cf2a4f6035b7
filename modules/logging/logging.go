// Package logging builds the process's zap logger: JSON by default, level
// and format from SIDECAR_LOG_LEVEL and SIDECAR_LOG_FORMAT, every entry
// tagged with service and version, and a core that redacts fields whose
// names mean "secret" (see Redacted for values).
package logging

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"go.uber.org/dig"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/secrets-sidecar/secrets-sidecar/modules/buildinfo"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// ServiceName is the service field on every log entry.
const ServiceName = "secrets-sidecar"

// Module provides the *zap.Logger and syncs it on stop.
var Module = fx.Module("logging", fx.Provide(New))

// Output redirects log output (tests use it to inspect every line); the
// default is stderr.
type Output struct{ W io.Writer }

// Params are New's inputs.
type Params struct {
	fx.In

	Lifecycle fx.Lifecycle
	Env       config.Env
	Build     buildinfo.Info
	Output    Output `optional:"true"`
}

// New builds the logger from the environment settings and syncs it when
// the app stops.
func New(p Params) (*zap.Logger, error) {
	var w io.Writer = os.Stderr
	if p.Output.W != nil {
		w = p.Output.W
	}
	l, err := NewLogger(Options{Level: p.Env.LogLevel, Format: p.Env.LogFormat, Version: p.Build.Version}, w)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.StopHook(func() {
		_ = l.Sync() // stderr cannot always be synced (a pipe or a TTY); nothing to do about it
	}))
	return l, nil
}

// Options configure NewLogger.
type Options struct {
	Level   string // debug, info, warn, error ("" = info)
	Format  string // json or console ("" = json)
	Version string
}

// NewLogger builds a logger writing to w; usable without fx.
func NewLogger(o Options, w io.Writer) (*zap.Logger, error) {
	level := zapcore.InfoLevel
	if o.Level != "" {
		if err := level.UnmarshalText([]byte(o.Level)); err != nil {
			return nil, fmt.Errorf("log level %q: %w", o.Level, err)
		}
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder
	var enc zapcore.Encoder
	switch o.Format {
	case "", "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("log format %q: want json or console", o.Format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), zap.NewAtomicLevelAt(level))
	version := o.Version
	if version == "" {
		version = "dev"
	}
	return zap.New(redactCore{core},
		zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w))),
		zap.AddCaller(),
		zap.AddStacktrace(zapcore.DPanicLevel),
	).With(zap.String("service", ServiceName), zap.String("version", version)), nil
}

// FxEventLogger sends fx's own events to zap at debug level, so they are
// quiet at info; fx's errors still log at error.
func FxEventLogger(l *zap.Logger) fxevent.Logger {
	named := l.Named("fx")
	zl := &fxevent.ZapLogger{Logger: named}
	zl.UseLogLevel(zapcore.DebugLevel)
	return fxLogger{ZapLogger: zl, log: named, last: &lastError{}}
}

// fxLogger is fxevent.ZapLogger with lean error events: the root cause as a
// plain "error" string instead of dig's multi-line chain and a stack trace,
// logged once. A failed constructor is reported again by every invoke that
// needed it, and a config problem or environment error is printed by the
// command as plain lines: those repeats go to debug.
type fxLogger struct {
	*fxevent.ZapLogger
	log  *zap.Logger
	last *lastError
}

// lastError is the root cause last logged at error level.
type lastError struct {
	mu  sync.Mutex
	msg string
}

// repeat records msg and reports whether it was the last one logged.
func (e *lastError) repeat(msg string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := e.msg == msg
	e.msg = msg
	return seen
}

// LogEvent implements fxevent.Logger.
func (l fxLogger) LogEvent(event fxevent.Event) {
	var (
		msg    string
		err    error
		fields []zap.Field
	)
	switch e := event.(type) {
	case *fxevent.Provided:
		msg, err = "provide failed", e.Err
		fields = append(fields, zap.String("constructor", e.ConstructorName))
	case *fxevent.Run:
		msg, err = e.Kind+" failed", e.Err
		fields = append(fields, zap.String("name", e.Name))
	case *fxevent.Supplied:
		msg, err = "supply failed", e.Err
	case *fxevent.Decorated:
		msg, err = "decorate failed", e.Err
	case *fxevent.Invoked:
		msg, err = "invoke failed", e.Err
		fields = append(fields, zap.String("function", e.FunctionName))
	case *fxevent.OnStartExecuted:
		msg, err = "start hook failed", e.Err
		fields = append(fields, zap.String("callee", e.FunctionName))
	case *fxevent.OnStopExecuted:
		msg, err = "stop hook failed", e.Err
		fields = append(fields, zap.String("callee", e.FunctionName))
	case *fxevent.Started:
		msg, err = "start failed", e.Err
	case *fxevent.Stopped:
		msg, err = "stop failed", e.Err
	case *fxevent.RolledBack:
		msg, err = "rollback failed", e.Err
	case *fxevent.LoggerInitialized:
		msg, err = "custom logger failed", e.Err
	}
	if err == nil {
		l.ZapLogger.LogEvent(event)
		return
	}
	root := dig.RootCause(err)
	log := l.log.Error
	var probs config.Problems
	var envErr config.EnvError
	if l.last.repeat(root.Error()) || errors.As(err, &probs) || errors.As(err, &envErr) {
		log = l.log.Debug
	}
	log(msg, append(fields, zap.String("error", root.Error()))...)
}
