package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// resolve turns a configured action into its runner and identity key: the
// resolved values (signal number, cleaned paths, upper-case method,
// canonical header names, defaulted timeouts), so spellings of the same
// action are one.
func resolve(a config.Action) resolved {
	switch {
	case a.Signal != nil:
		return resolveSignal(*a.Signal)
	case a.Exec != nil:
		return resolveExec(*a.Exec)
	case a.HTTP != nil:
		return resolveHTTP(*a.HTTP)
	}
	return invalid("", "", errors.New("on_change entry sets no action"))
}

// signalNumber resolves a signal name: SIGHUP, HUP or hup.
func signalNumber(name string) (unix.Signal, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	if s := unix.SignalNum(n); s != 0 {
		return s, nil
	}
	return 0, fmt.Errorf("unknown signal %q", name)
}

func resolveSignal(c config.SignalAction) resolved {
	a := &signalAction{process: c.Process}
	if c.PIDFile != "" {
		a.pidFile = filepath.Clean(c.PIDFile)
	}
	sig, err := signalNumber(c.Name)
	if err != nil {
		return invalid(KindSignal, a.target(), err)
	}
	a.sig = sig
	if (a.pidFile == "") == (a.process == "") {
		return invalid(KindSignal, a.target(), errors.New("set exactly one of pid_file and process"))
	}
	return resolved{key: keyOf(KindSignal, int(sig), a.pidFile, a.process), act: a}
}

func resolveExec(c config.ExecAction) resolved {
	a := &execAction{argv: slices.Clone(c.Command), timeout: c.Timeout.Duration, logOutput: c.LogOutput}
	if len(a.argv) == 0 || a.argv[0] == "" {
		return invalid(KindExec, "", errors.New("command is empty"))
	}
	return resolved{key: keyOf(KindExec, a.timeout, a.argv, a.logOutput), act: a}
}

func resolveHTTP(c config.HTTPAction) resolved {
	a := &httpAction{
		method:      strings.ToUpper(strings.TrimSpace(c.Method)),
		timeout:     c.Timeout.Duration,
		headersFile: c.HeadersFile,
		headers:     http.Header{},
	}
	if a.method == "" {
		a.method = http.MethodPost
	}
	if a.headersFile != "" {
		a.headersFile = filepath.Clean(a.headersFile)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The text may hold a password: it is not repeated.
		return invalid(KindHTTP, "", errors.New("url is not an absolute http or https URL"))
	}
	a.url, a.summary = u, summarizeURL(u)
	if !validToken(a.method) {
		return invalid(KindHTTP, a.summary, fmt.Errorf("method %q is not a valid HTTP method", c.Method))
	}
	for name, v := range c.Headers {
		if !validToken(name) {
			return invalid(KindHTTP, a.summary, fmt.Errorf("header name %q is not valid", name))
		}
		if !validHeaderValue(v) {
			return invalid(KindHTTP, a.summary, fmt.Errorf("header %s: value holds control characters", name))
		}
		a.headers.Set(name, v)
	}
	return resolved{key: keyOf(KindHTTP, a.method, u.String(), a.timeout, a.headers, a.headersFile), act: a}
}

// summarizeURL is u without userinfo, query and fragment.
func summarizeURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}).String()
}

// keyOf is an unambiguous identity for an action's resolved values. It
// may hold header values: it is compared, never logged.
func keyOf(parts ...any) string {
	b, _ := json.Marshal(parts) // strings, numbers and string maps always marshal
	return string(b)
}

// invalidAction is an action whose config cannot be resolved: every run
// fails at once, without retries.
type invalidAction struct {
	k, t string
	err  error
}

func invalid(kind, target string, err error) resolved {
	a := &invalidAction{k: kind, t: target, err: err}
	return resolved{key: keyOf("invalid", kind, target, err.Error()), act: a}
}

func (a *invalidAction) kind() string {
	if a.k == "" {
		return "invalid"
	}
	return a.k
}
func (a *invalidAction) target() string { return a.t }
func (a *invalidAction) run(context.Context, *Notifier, input) ([]zap.Field, error) {
	return nil, permanentError{fmt.Errorf("invalid action: %w", a.err)}
}
