package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/hashicorp/go-secure-stdlib/parseutil"
)

// DefaultConfigPath is where the config file is read from when neither
// --config nor SIDECAR_CONFIG says otherwise.
const DefaultConfigPath = "/etc/secrets-sidecar/config.yaml"

// DefaultHTTPAddr serves /health, /ready and /metrics when SIDECAR_HTTP_ADDR
// is not set at all (set but empty disables the server).
const DefaultHTTPAddr = ":8080"

// Env holds the SIDECAR_* process settings (README: "Environment variables").
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
func LoadEnv() (Env, error) { return ParseEnv(Environ()) }

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
		} else if !validPort(port) {
			add("SIDECAR_HTTP_ADDR", "%q: port %s is not a port number (0 to 65535)", e.HTTPAddr, port)
		}
	}
	if e.StatusFile == "" {
		add("SIDECAR_STATUS_FILE", "must not be empty")
	}
	for _, p := range [...]struct{ key, path string }{{"SIDECAR_CONFIG", e.ConfigPath}, {"SIDECAR_STATUS_FILE", e.StatusFile}} {
		if r, at, bad := badPathRune(p.path); bad {
			add(p.key, "holds the character %U at byte %d: a path may not hold control or bidirectional-text characters", r, at)
		}
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

// LoadRunEnv is LoadEnv for the commands that talk to Vault (run, once):
// the SIDECAR_* settings and CheckVaultEnv, every problem of both listed.
func LoadRunEnv() (Env, error) {
	environ := Environ()
	e, err := ParseEnv(environ)
	var errs EnvError
	if err != nil && !errors.As(err, &errs) {
		return Env{}, err
	}
	var vaultErrs EnvError
	if verr := CheckVaultEnv(environ); verr != nil && !errors.As(verr, &vaultErrs) {
		return Env{}, verr
	}
	if errs = append(errs, vaultErrs...); len(errs) > 0 {
		return Env{}, errs
	}
	return e, nil
}

// CheckVaultEnv checks the VAULT_* variables that the Vault API library
// (hashicorp/vault/api v1.23) reads from the environment, the way it reads
// them: a set, non-empty variable it cannot use is an error naming it.
// (The library would either refuse to start with a message that names no
// variable, or accept a value such as VAULT_ADDR=not-a-url and fail every
// request.) Files it names are checked too; nothing is sent anywhere.
func CheckVaultEnv(environ []string) error {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "VAULT_") && v != "" {
			vars[k] = v
		}
	}
	var errs EnvError
	add := func(key, format string, args ...any) {
		errs = append(errs, key+": "+fmt.Sprintf(format, args...))
	}
	for _, key := range []string{"VAULT_ADDR", "VAULT_AGENT_ADDR"} {
		if v, ok := vars[key]; ok && !vaultURL(v) {
			add(key, "%q is not an http://, https:// or unix:// URL (e.g. https://vault.example.com:8200)", RedactURL(v))
		}
	}
	for _, key := range []string{"VAULT_HTTP_PROXY", "VAULT_PROXY_ADDR"} {
		if v, ok := vars[key]; ok && !proxyURL(v) {
			add(key, "%q is not a proxy URL (e.g. http://proxy.example.com:3128)", RedactURL(v))
		}
	}
	for _, key := range []string{"VAULT_SKIP_VERIFY", "VAULT_SRV_LOOKUP", "VAULT_DISABLE_REDIRECTS"} {
		if v, ok := vars[key]; ok {
			if _, err := strconv.ParseBool(v); err != nil {
				add(key, "%q is not a boolean (true or false)", v)
			}
		}
	}
	if v, ok := vars["VAULT_CLIENT_TIMEOUT"]; ok {
		if d, err := parseutil.ParseDurationSecond(v); err != nil || d < 0 {
			add("VAULT_CLIENT_TIMEOUT", "%q is not a duration (e.g. 30s, or 30 for seconds)", v)
		}
	}
	if v, ok := vars["VAULT_MAX_RETRIES"]; ok {
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			add("VAULT_MAX_RETRIES", "%q is not a whole number", v)
		}
	}
	if v, ok := vars["VAULT_RATE_LIMIT"]; ok && !rateLimit(v) {
		add("VAULT_RATE_LIMIT", "%q is not a rate (requests per second, optionally :burst, e.g. 10 or 10:20)", v)
	}
	if v, ok := vars["VAULT_HEADERS"]; ok {
		if msg := headersProblem(v); msg != "" {
			add("VAULT_HEADERS", "%s", msg)
		}
	}
	checkVaultTLSEnv(vars, add)
	sort.Strings(errs)
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// checkVaultTLSEnv checks the CA and client certificate variables as the
// library loads them (crypto/tls, an x509 pool).
func checkVaultTLSEnv(vars map[string]string, add func(key, format string, args ...any)) {
	if v, ok := vars["VAULT_CACERT"]; ok {
		if pem, err := os.ReadFile(v); err != nil {
			add("VAULT_CACERT", "%s", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			add("VAULT_CACERT", "%s holds no PEM certificate", v)
		}
	}
	if v, ok := vars["VAULT_CACERT_BYTES"]; ok && !x509.NewCertPool().AppendCertsFromPEM([]byte(v)) {
		add("VAULT_CACERT_BYTES", "holds no PEM certificate")
	}
	if v, ok := vars["VAULT_CAPATH"]; ok {
		if _, err := os.Stat(v); err != nil {
			add("VAULT_CAPATH", "%s", err)
		}
	}
	cert, hasCert := vars["VAULT_CLIENT_CERT"]
	key, hasKey := vars["VAULT_CLIENT_KEY"]
	switch {
	case hasCert && !hasKey:
		add("VAULT_CLIENT_KEY", "not set, but VAULT_CLIENT_CERT is: set both or neither")
	case hasKey && !hasCert:
		add("VAULT_CLIENT_CERT", "not set, but VAULT_CLIENT_KEY is: set both or neither")
	case hasCert:
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			add("VAULT_CLIENT_CERT", "with VAULT_CLIENT_KEY: %s", err)
		}
	}
}

// vaultURL reports whether v is an address the library can send to.
func vaultURL(v string) bool {
	u, err := url.Parse(v)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "unix":
		return strings.TrimPrefix(v, "unix://") != ""
	case "http", "https":
		return u.Host != "" && validPort(u.Port())
	}
	return false
}

func proxyURL(v string) bool {
	u, err := url.Parse(v)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
		return u.Host != "" && validPort(u.Port())
	}
	return false
}

func validPort(p string) bool {
	if p == "" {
		return true
	}
	_, err := strconv.ParseUint(p, 10, 16)
	return err == nil
}

// rateLimit accepts what the library does: "rate" or "rate:burst".
func rateLimit(v string) bool {
	var r float64
	var burst int
	if _, err := fmt.Sscanf(v, "%f:%d", &r, &burst); err == nil {
		return true
	}
	_, err := strconv.ParseFloat(v, 64)
	return err == nil
}

// headersProblem checks VAULT_HEADERS: a JSON object of string values
// whose names do not start with X-Vault-. Values are never shown.
func headersProblem(v string) string {
	var h map[string]any
	if err := json.Unmarshal([]byte(v), &h); err != nil {
		return "is not a JSON object of header names and string values"
	}
	var bad []string
	for name, val := range h {
		if _, ok := val.(string); !ok {
			return fmt.Sprintf("the value of %q is not a string", name)
		}
		if strings.HasPrefix(name, "X-Vault-") {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Sprintf("%s: headers starting with X-Vault- are the library's own", strings.Join(bad, ", "))
	}
	return ""
}

// RedactURL hides the userinfo (user name and password) of a URL, or of
// anything shaped like one: "https://admin:pw@vault:8200/v1/x" becomes
// "https://***@vault:8200/v1/x". Everything else is kept, so the result
// still says which server was meant. It is for display only.
func RedactURL(s string) string {
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return s
	}
	return prefix + "***@" + rest[at+1:]
}
