package config

import (
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/sys/unix"
)

// Built-in defaults and limits of the notify: block and of change actions.
const (
	DefaultDebounce    = 2 * time.Second
	MinDebounce        = 100 * time.Millisecond
	DefaultAttempts    = 3
	MaxAttempts        = 10
	DefaultExecTimeout = 30 * time.Second
	DefaultHTTPTimeout = 5 * time.Second
	DefaultHTTPMethod  = http.MethodPost
)

// Signal is the signal to send. Load has checked Name, so it is never 0
// after Load.
func (s *SignalAction) Signal() syscall.Signal { return SignalNum(s.Name) }

// SignalNum accepts "SIGHUP" and "HUP" (upper case, any signal Go knows on
// this system); 0 when the name is not a signal.
func SignalNum(name string) syscall.Signal {
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	return unix.SignalNum(name)
}

func (v *validator) notifyDefaults(n *Notify) {
	if !n.Debounce.IsSet() {
		n.Debounce = NewDuration(DefaultDebounce)
	}
	if !n.Splay.IsSet() {
		n.Splay = NewDuration(0)
	}
	if !v.idx.given("notify.attempts") {
		n.Attempts = DefaultAttempts
	}
}

// actionDefaults fills in timeouts and methods and spells every valid
// signal name the one way ("SIGHUP"); an invalid name is left as written
// for validation to quote.
func actionDefaults(list []Action) {
	for i := range list {
		a := &list[i]
		if s := a.Signal; s != nil {
			if num := SignalNum(s.Name); num != 0 {
				s.Name = unix.SignalName(num)
			}
		}
		if e := a.Exec; e != nil && !e.Timeout.IsSet() {
			e.Timeout = NewDuration(DefaultExecTimeout)
		}
		if h := a.HTTP; h != nil {
			setDefault(&h.Method, DefaultHTTPMethod)
			if !h.Timeout.IsSet() {
				h.Timeout = NewDuration(DefaultHTTPTimeout)
			}
		}
	}
}

// resolveActions gives a secret the defaults' on_change and on_start unless
// it sets its own; on_change: [] is a list of its own (none).
func (v *validator) resolveActions(d *Defaults, s *Secret, p string) {
	if v.idx.given(p + ".on_change") {
		actionDefaults(s.OnChange)
		if s.OnChange == nil {
			s.OnChange = []Action{}
		}
	} else {
		// The actions are shared with defaults and other secrets: read-only.
		s.OnChange = slices.Clone(d.OnChange)
	}
	if s.OnStart == nil {
		s.OnStart = new(*d.OnStart)
	}
}

func (v *validator) notify(n *Notify) {
	if msg := n.Debounce.problem(); msg != "" {
		v.add("notify.debounce", "%s", msg)
	} else if n.Debounce.Duration < MinDebounce {
		v.add("notify.debounce", "%q is below the minimum of %s", n.Debounce.raw, MinDebounce)
	}
	switch {
	case n.Splay.IsSet() && !n.Splay.valid:
		v.add("notify.splay", "%s", n.Splay.problem())
	case n.Splay.Duration < 0:
		v.add("notify.splay", "%q must not be negative", n.Splay.raw)
	}
	if n.Attempts < 1 || n.Attempts > MaxAttempts {
		v.add("notify.attempts", "%d must be 1 to %d", n.Attempts, MaxAttempts)
	}
}

func (v *validator) actions(p string, list []Action) {
	for i := range list {
		v.action(fmt.Sprintf("%s[%d]", p, i), &list[i])
	}
}

func (v *validator) action(p string, a *Action) {
	var kinds []string
	for _, k := range []struct {
		name string
		set  bool
	}{{"signal", a.Signal != nil}, {"exec", a.Exec != nil}, {"http", a.HTTP != nil}} {
		if k.set || v.idx.brokenAt(p+"."+k.name) {
			kinds = append(kinds, k.name)
		}
	}
	switch len(kinds) {
	case 0:
		if !v.idx.brokenAt(p) { // else a misspelled kind, reported as unknown
			v.add(p, "set exactly one of signal, exec, http")
		}
	case 1:
	default:
		v.add(p, "set exactly one of signal, exec, http, not %s", strings.Join(kinds, " and "))
	}
	if a.Signal != nil {
		v.signal(p+".signal", a.Signal)
	}
	if a.Exec != nil {
		v.exec(p+".exec", a.Exec)
	}
	if a.HTTP != nil {
		v.http(p+".http", a.HTTP)
	}
}

// commonSignals are named in the error for an unknown signal.
const commonSignals = "SIGHUP, SIGUSR1, SIGUSR2, SIGTERM, SIGINT, SIGQUIT"

func (v *validator) signal(p string, s *SignalAction) {
	switch {
	case s.Name == "":
		v.add(p+".name", "required (such as %s)", commonSignals)
	case SignalNum(s.Name) != 0:
	case SignalNum(strings.ToUpper(s.Name)) != 0:
		v.add(p+".name", "%q is not a signal: names are upper case (did you mean %q?)", s.Name, strings.ToUpper(s.Name))
	default:
		v.add(p+".name", "%q is not a signal (use an upper-case name such as %s; the SIG prefix is optional)", s.Name, commonSignals)
	}
	pidFile := v.nonEmpty(p+".pid_file", s.PIDFile)
	process := v.nonEmpty(p+".process", s.Process)
	switch {
	case pidFile && process:
		v.add(p+".process", "pid_file and process are mutually exclusive: set exactly one")
	case !pidFile && !process:
		v.add(p, "set one of pid_file (a file holding the PID) or process (a process name)")
	}
	if s.PIDFile != "" && !filepath.IsAbs(s.PIDFile) {
		v.add(p+".pid_file", "%q must be an absolute path", s.PIDFile)
	}
	if strings.Contains(s.Process, "/") {
		v.add(p+".process", "%q must be a process name, not a path (it matches /proc/<pid>/comm or the base name of argv[0])", s.Process)
	}
}

// nonEmpty reports whether a string field was given, and reports one
// given as "" (which would otherwise read as not given).
func (v *validator) nonEmpty(path, val string) bool {
	if val == "" && v.idx.given(path) {
		v.add(path, "must not be empty")
		return true
	}
	return val != "" || v.idx.brokenAt(path)
}

func (v *validator) exec(p string, e *ExecAction) {
	switch {
	case len(e.Command) == 0:
		v.add(p+".command", "required: the program and its arguments as a list, run without a shell")
	case e.Command[0] == "":
		v.add(p+".command[0]", "the program must not be empty")
	}
	if msg := e.Timeout.problem(); msg != "" {
		v.add(p+".timeout", "%s", msg)
	}
}

func (v *validator) http(p string, h *HTTPAction) {
	if h.URL == "" {
		v.add(p+".url", "required")
	} else if msg := httpURLProblem(h.URL); msg != "" {
		// Never quote the URL: it may carry a password or a token.
		v.add(p+".url", "%s", msg)
	}
	if msg := methodProblem(h.Method); msg != "" {
		v.add(p+".method", "%s", msg)
	}
	if msg := h.Timeout.problem(); msg != "" {
		v.add(p+".timeout", "%s", msg)
	}
	v.headers(p+".headers", h.Headers)
	if v.nonEmpty(p+".headers_file", h.HeadersFile) && h.HeadersFile != "" && !filepath.IsAbs(h.HeadersFile) {
		v.add(p+".headers_file", "%q must be an absolute path", h.HeadersFile)
	}
}

// httpURLProblem says why raw is not an http:// or https:// URL with a
// host, or "" when it is one. It never quotes raw, which may carry a
// password or a token.
func httpURLProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case !strings.Contains(raw, "://"):
		return "must start with http:// or https://"
	case err != nil:
		return "is not a valid URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must start with http:// or https://"
	case u.Host == "":
		return "has no host (http://host:port/path)"
	}
	return ""
}

var standardMethods = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
	http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace,
}

// methodProblem accepts any method token (RFC 9110), and rejects the
// lower-case spelling of a standard method: methods are case-sensitive,
// and a server would answer "post" with 405.
func methodProblem(m string) string {
	if up := strings.ToUpper(m); up != m && slices.Contains(standardMethods, up) {
		return fmt.Sprintf("%q: methods are case-sensitive (did you mean %q?)", m, up)
	}
	if m == "" || strings.IndexFunc(m, func(r rune) bool { return !httpguts.IsTokenRune(r) }) >= 0 {
		return fmt.Sprintf("%q is not an HTTP method (such as POST, PUT, GET)", m)
	}
	return ""
}

// headers checks names and values; a value is never quoted (it may be a
// token).
func (v *validator) headers(p string, hs map[string]string) {
	names := make([]string, 0, len(hs))
	for k := range hs {
		names = append(names, k)
	}
	sort.Strings(names)
	seen := map[string]string{}
	for _, k := range names {
		field := p + "." + k
		if !httpguts.ValidHeaderFieldName(k) {
			v.add(field, "%q is not a valid header name", k)
			continue
		}
		canon := textproto.CanonicalMIMEHeaderKey(k)
		if other, dup := seen[canon]; dup {
			v.add(field, "header %q is also set as %q (names are case-insensitive)", k, other)
		}
		seen[canon] = k
		if !httpguts.ValidHeaderFieldValue(hs[k]) {
			v.add(field, "the value (not shown) must not contain line breaks or other control characters")
		}
	}
}
