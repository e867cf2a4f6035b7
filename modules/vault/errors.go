package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// ErrNotFound matches (errors.Is) a read of a path, or a KV v2 version,
// that does not exist or was deleted or destroyed.
var ErrNotFound = errors.New("secret not found")

// notFound names what was missing.
func notFound(mount, path string, version int, why string) error {
	what := mount + "/" + path
	if version > 0 {
		what = fmt.Sprintf("version %d of %s", version, what)
	}
	if why != "" {
		return fmt.Errorf("vault: %w: %s (%s)", ErrNotFound, what, why)
	}
	return fmt.Errorf("vault: %w: %s", ErrNotFound, what)
}

// ErrConfig matches (errors.Is) a read that cannot succeed until the
// secret's settings change: a version pin on a KV v1 mount, a mount that is
// another secrets engine, kv_version: 2 on a KV v1 mount, a bad mount,
// path or version. Retrying it only repeats it.
var ErrConfig = errors.New("the secret's settings do not fit its mount")

// configError marks err as ErrConfig without changing its text.
type configError struct{ err error }

func (e configError) Error() string        { return e.err.Error() }
func (e configError) Unwrap() error        { return e.err }
func (e configError) Is(target error) bool { return target == ErrConfig }

func misconfigured(format string, args ...any) error {
	return configError{fmt.Errorf(format, args...)}
}

// authError marks a failure of the auth stage: credentials that cannot be
// read, a login that Vault rejects, a token Vault does not accept.
type authError struct{ err error }

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// IsAuthError reports whether err is a login or token problem: a
// credential file that cannot be read, a login Vault rejected (with any
// answer but 429, 502, 503 or 504: Vault 1.14's approle answers a wrong
// secret_id with 500), or a request Vault refused with 401/403. It is false
// when Vault could not be reached or was overloaded (transport errors,
// timeouts, 429, 502-504, an open breaker): that is Vault's health, not the
// credentials.
func IsAuthError(err error) bool {
	if err == nil || errors.Is(err, breaker.ErrOpen) || errors.Is(err, context.Canceled) {
		return false
	}
	var ae *authError
	if !errors.As(err, &ae) {
		return isForbidden(err)
	}
	var ce *callError
	if !errors.As(ae.err, &ce) {
		return true // a local problem: an unreadable credential file
	}
	switch statusOf(ce.err) {
	case 0, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return false
	}
	return true
}

// IsUnavailable reports whether err says Vault could not be reached or
// could not serve: the open breaker, a transport error, a timeout, a 5xx or
// 429 (but not approle's 500 for a bad secret_id, nor a rejected login).
// Such an error clears up by itself when Vault recovers, so retries should
// come soon and wake when the breaker closes.
func IsUnavailable(err error) bool {
	if errors.Is(err, breaker.ErrOpen) {
		return true
	}
	if err == nil || IsLoginRejected(err) {
		return false
	}
	var ce *callError
	return errors.As(err, &ce) && outcome(ce.err) == breaker.Failure
}

// statusOf is the HTTP status of a Vault API error, 0 when there was none.
func statusOf(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// errorMessages is a Vault API error's messages, "" when there are none.
func errorMessages(err error) string {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return strings.Join(re.Errors, "; ")
	}
	return ""
}

func isForbidden(err error) bool {
	s := statusOf(err)
	return s == http.StatusForbidden || s == http.StatusUnauthorized
}

// countsAsFailure reports whether a Vault call's error says Vault is
// unhealthy: a transport error, a timeout, a garbled answer, a 5xx or a
// 429. A 4xx is the caller's mistake and a canceled context is the caller
// giving up.
func countsAsFailure(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if s := statusOf(err); s != 0 {
		return s >= 500 || s == http.StatusTooManyRequests
	}
	return true
}

// outcome is what a Vault call's error means to the breaker.
func outcome(err error) breaker.Outcome {
	switch {
	case err == nil:
		return breaker.Success
	case errors.Is(err, context.Canceled):
		return breaker.Ignore
	case pastMaxTTL(err), rejectedAnswer(err):
		return breaker.Success // Vault answered: the token's end, bad credentials
	case countsAsFailure(err):
		return breaker.Failure
	}
	return breaker.Success
}

// pastMaxTTL reports Vault's answer to renewing a token that has reached
// its max TTL: Vault 1.14 says 500 "past the max TTL, cannot renew". That
// is the token's end, not Vault failing.
func pastMaxTTL(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "past the max TTL") {
			return true
		}
	}
	return false
}

// callError is a failed Vault call, with a one-line message: the
// operation, then Vault's own error messages and the HTTP status, or the
// transport error. The wrapped error stays reachable for errors.As.
type callError struct {
	op  string
	err error
}

func (e *callError) Unwrap() error { return e.err }

func (e *callError) Error() string {
	var re *api.ResponseError
	if !errors.As(e.err, &re) {
		return "vault " + e.op + ": " + e.err.Error()
	}
	msg := strings.Join(re.Errors, "; ")
	if re.RawError {
		msg = "unexpected response"
	}
	if msg == "" {
		msg = http.StatusText(re.StatusCode)
	}
	return fmt.Sprintf("vault %s: %s (HTTP %d)", e.op, serverMessage(msg), re.StatusCode)
}

// serverMessage flattens a server's message for a log line: Vault wraps errors
// as "1 error occurred:\n\t* permission denied"; only the messages stay.
func serverMessage(s string) string {
	var parts []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "* "))
		if line == "" || multiErrorHeader.MatchString(line) {
			continue
		}
		parts = append(parts, line)
	}
	return logging.OneLine(strings.Join(parts, "; "), 303)
}

var multiErrorHeader = regexp.MustCompile(`^\d+ errors? occurred:$`)
