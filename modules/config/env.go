package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// DefaultConfigPath is where the config file is read from when neither
// --config nor SIDECAR_CONFIG says otherwise.
const DefaultConfigPath = "/etc/secrets-sidecar/config.yaml"

// DefaultHTTPAddr serves /health, /ready and /metrics when SIDECAR_HTTP_ADDR
// is not set at all (set but empty disables the server).
const DefaultHTTPAddr = ":8080"

// Env holds the SIDECAR_* process settings (SPEC: "Process settings").
type Env struct {
	ConfigPath         string        `env:"SIDECAR_CONFIG" envDefault:"/etc/secrets-sidecar/config.yaml"`
	LogLevel           string        `env:"SIDECAR_LOG_LEVEL" envDefault:"info"`
	LogFormat          string        `env:"SIDECAR_LOG_FORMAT" envDefault:"json"`
	HTTPAddr           string        `env:"SIDECAR_HTTP_ADDR"`
	StatusFile         string        `env:"SIDECAR_STATUS_FILE" envDefault:"/tmp/secrets-sidecar/status.json"`
	WatchConfig        bool          `env:"SIDECAR_WATCH_CONFIG" envDefault:"true"`
	EnableTracing      bool          `env:"SIDECAR_ENABLE_TRACING" envDefault:"false"`
	BreakerMaxFailures uint32        `env:"SIDECAR_BREAKER_MAX_FAILURES" envDefault:"5"`
	BreakerOpenTimeout time.Duration `env:"SIDECAR_BREAKER_OPEN_TIMEOUT" envDefault:"30s"`
	BreakerInterval    time.Duration `env:"SIDECAR_BREAKER_INTERVAL" envDefault:"60s"`
	ShutdownTimeout    time.Duration `env:"SIDECAR_SHUTDOWN_TIMEOUT" envDefault:"15s"`
}

// EnvError lists every invalid SIDECAR_* variable, one per line.
type EnvError []string

func (e EnvError) Error() string { return strings.Join(e, "\n") }

// LoadEnv reads the settings from the process environment.
func LoadEnv() (Env, error) { return ParseEnv(os.Environ()) }

// ParseEnv reads the settings from KEY=value pairs (os.Environ's form).
func ParseEnv(environ []string) (Env, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var e Env
	if err := env.ParseWithOptions(&e, env.Options{Environment: vars}); err != nil {
		return Env{}, envError(err, vars)
	}
	if _, set := vars["SIDECAR_HTTP_ADDR"]; !set {
		e.HTTPAddr = DefaultHTTPAddr
	}
	if errs := e.validate(); len(errs) > 0 {
		return Env{}, errs
	}
	return e, nil
}

func (e *Env) validate() EnvError {
	var errs EnvError
	add := func(key, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	switch e.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("SIDECAR_LOG_LEVEL", "%q is not a level (debug, info, warn, error)", e.LogLevel)
	}
	switch e.LogFormat {
	case "json", "console":
	default:
		add("SIDECAR_LOG_FORMAT", "%q is not a format (json, console)", e.LogFormat)
	}
	if e.HTTPAddr != "" {
		if _, port, err := net.SplitHostPort(e.HTTPAddr); err != nil || port == "" {
			add("SIDECAR_HTTP_ADDR", "%q is not host:port (e.g. :8080 or 127.0.0.1:8080; empty disables)", e.HTTPAddr)
		}
	}
	if e.StatusFile == "" {
		add("SIDECAR_STATUS_FILE", "must not be empty")
	}
	if e.BreakerMaxFailures == 0 {
		add("SIDECAR_BREAKER_MAX_FAILURES", "must be at least 1")
	}
	for _, d := range []struct {
		key string
		val time.Duration
	}{
		{"SIDECAR_BREAKER_OPEN_TIMEOUT", e.BreakerOpenTimeout},
		{"SIDECAR_BREAKER_INTERVAL", e.BreakerInterval},
		{"SIDECAR_SHUTDOWN_TIMEOUT", e.ShutdownTimeout},
	} {
		if d.val <= 0 {
			add(d.key, "%s must be positive", d.val)
		}
	}
	return errs
}

// envError rewrites the env library's errors ("parse error on field
// ShutdownTimeout of type time.Duration") to name the variable and value.
func envError(err error, vars map[string]string) error {
	var agg env.AggregateError
	errs := []error{err}
	if errors.As(err, &agg) {
		errs = agg.Errors
	}
	var out EnvError
	for _, e := range errs {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			out = append(out, e.Error())
			continue
		}
		key := envKey(pe.Name)
		out = append(out, fmt.Sprintf("%s: %q is not %s", key, vars[key], kindWord(pe.Type)))
	}
	sort.Strings(out)
	return out
}

func envKey(field string) string {
	f, ok := reflect.TypeOf(Env{}).FieldByName(field)
	if !ok {
		return field
	}
	key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
	return key
}

func kindWord(t reflect.Type) string {
	if t == reflect.TypeOf(time.Duration(0)) {
		return "a duration (e.g. 500ms, 30s, 5m)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Uint32, reflect.Uint, reflect.Uint64, reflect.Int:
		return "a whole number"
	}
	return "a valid " + t.String()
}
