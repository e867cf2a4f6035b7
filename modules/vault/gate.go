package vault

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Vault counts failed logins per role (user lockout, Vault 1.13+, on by
// default for approle: 5 failures lock the role for 15 minutes, and the
// count only resets after 15 minutes without a failure). A login Vault
// rejected is therefore not sent again with the same credentials before
// a delay: 5 minutes, then 10, then 20 for as long as they are still
// rejected, and the 20-minute gaps let Vault's count reset. New
// credentials (a changed role_id, secret_id, JWT or Kubernetes token file,
// or a new vault: block) are tried at once, but whatever the credentials at
// most rejectedBudget logins may be rejected in any rejectedWindow: an
// operator rewriting a wrong secret_id file again and again must not lock
// the role either.
const (
	rejectedRetryFirst = 5 * time.Minute
	rejectedRetryMax   = 20 * time.Minute
	rejectedWindow     = 15 * time.Minute
	rejectedBudget     = 3
	// changedCheckEvery bounds how often CredentialsChanged re-reads the
	// credential files, however many waiters ask.
	changedCheckEvery = 250 * time.Millisecond
)

// loginGate remembers the credentials Vault last rejected, as a keyed
// fingerprint (HMAC-SHA256 under a key that never leaves the process), not
// the credentials themselves. It is the client's, shared by the token
// renewer and every read, and it survives a vault: reload.
type loginGate struct {
	key []byte
	now func() time.Time

	mu       sync.Mutex
	rejected *rejection
	recent   []time.Time // when Vault rejected a login, within rejectedWindow
}

type rejection struct {
	fp      [sha256.Size]byte
	count   int // consecutive rejections of these credentials
	at      time.Time
	retryAt time.Time
	cause   string

	checkedAt time.Time // CredentialsChanged's cache
	changed   bool

	// budget: rejectedBudget logins were rejected in the window, so no
	// login is sent before retryAt, whatever the credentials.
	budget bool
}

func newLoginGate() *loginGate {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand, Go 1.24+)
	return &loginGate{key: key, now: time.Now}
}

// fingerprint identifies one login attempt's credentials at one server.
func (g *loginGate) fingerprint(addr string, m loginMethod, body map[string]any) [sha256.Size]byte {
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := hmac.New(sha256.New, g.key)
	for _, part := range []string{addr, m.name(), m.mount()} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%v", k, body[k])
		h.Write([]byte{0})
	}
	var fp [sha256.Size]byte
	copy(fp[:], h.Sum(nil))
	return fp
}

// held returns the rejection that holds back a login with fp, or nil
// when the login may go to Vault: the same credentials before their retry
// time, or any credentials while the window's budget is spent.
func (g *loginGate) held(fp [sha256.Size]byte) *rejection {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	r := g.rejected
	if r == nil {
		return nil
	}
	cp := *r
	if until := g.budgetUntil(now); now.Before(until) {
		if cp.fp != fp || until.After(cp.retryAt) {
			cp.retryAt, cp.budget = until, true
		}
		return &cp
	}
	if r.fp != fp || !now.Before(r.retryAt) {
		return nil
	}
	return &cp
}

// budgetUntil is when the window's budget has room again (the zero time
// when it has now). The caller holds g.mu.
func (g *loginGate) budgetUntil(now time.Time) time.Time {
	keep := g.recent[:0]
	for _, t := range g.recent {
		if now.Sub(t) < rejectedWindow {
			keep = append(keep, t)
		}
	}
	g.recent = keep
	if len(g.recent) < rejectedBudget {
		return time.Time{}
	}
	return g.recent[len(g.recent)-rejectedBudget].Add(rejectedWindow)
}

// reject records that Vault rejected fp and returns when it may be tried
// again.
func (g *loginGate) reject(fp [sha256.Size]byte, cause string) rejection {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	count := 1
	if g.rejected != nil && g.rejected.fp == fp {
		count = g.rejected.count + 1
	}
	wait := rejectedRetryFirst
	for i := 1; i < count && wait < rejectedRetryMax; i++ {
		wait *= 2
	}
	wait = min(wait, rejectedRetryMax)
	g.recent = append(g.recent, now)
	r := &rejection{fp: fp, count: count, at: now, retryAt: now.Add(wait), cause: cause}
	if until := g.budgetUntil(now); now.Before(until) && until.After(r.retryAt) {
		r.retryAt, r.budget = until, true
	}
	g.rejected = r
	return *r
}

// accepted forgets the rejected credentials: Vault took a login. The
// window's rejections still count.
func (g *loginGate) accepted() {
	g.mu.Lock()
	g.rejected = nil
	g.mu.Unlock()
}

// changedSince reports whether current (the credentials as they read
// now; ok false when they cannot be read) differ from the rejected ones,
// re-reading at most every changedCheckEvery.
func (g *loginGate) changedSince(read func() ([sha256.Size]byte, bool)) bool {
	g.mu.Lock()
	r := g.rejected
	if r == nil {
		g.mu.Unlock()
		return true // accepted since: nothing holds a login back
	}
	if g.now().Sub(r.checkedAt) < changedCheckEvery {
		changed := r.changed
		g.mu.Unlock()
		return changed
	}
	fp := r.fp
	g.mu.Unlock()
	cur, ok := read()
	changed := ok && cur != fp
	g.mu.Lock()
	if g.rejected == r {
		r.checkedAt, r.changed = g.now(), changed
	}
	g.mu.Unlock()
	return changed
}

// loginRejected reports whether Vault rejected a login's credentials, as
// Vault 1.14 answers (measured against its approle, jwt and kubernetes
// methods): approle 500 "invalid secret id" (a wrong, expired or destroyed
// secret_id) and 400 "invalid role ID"; jwt 400 "error validating token:
// ..." and 400 for an unknown role; kubernetes 403 "permission denied"
// (the Kubernetes API did not accept the token, or could not be asked) and
// 403 "service account name not authorized"; a locked role (user lockout)
// 403 "permission denied". Any 4xx but 408 and 429 counts, and a 5xx only
// with approle's message: other 5xx, 429 and transport errors are Vault's
// health, retried with the normal backoff.
func loginRejected(err error) bool {
	s := statusOf(err)
	switch {
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests:
		return false
	case s >= 400 && s < 500:
		return true
	case s >= 500:
		return rejectedAnswer(err)
	}
	return false
}

// rejectedAnswer recognises approle's 500 answers to bad credentials
// (Vault 1.14: "invalid secret id"; later versions: "invalid role or
// secret ID", with 400).
func rejectedAnswer(err error) bool {
	msg := strings.ToLower(errorMessages(err))
	return strings.Contains(msg, "invalid secret id") || strings.Contains(msg, "invalid role or secret id") ||
		strings.Contains(msg, "invalid role id")
}

// LoginRejectedError is a login Vault rejected, or one not sent because
// Vault rejected the same credentials a moment ago. Its text says when the
// same credentials will be tried again and which files to rewrite to try
// new ones at once; it never holds a credential.
type LoginRejectedError struct {
	Method string    // approle, jwt, kubernetes
	Path   string    // auth/approle/login
	Cause  string    // Vault's answer: "invalid secret id (HTTP 500)"
	At     time.Time // when Vault rejected them
	// RetryAt is when the same credentials may be sent again (with
	// Budget: when any login may be sent again).
	RetryAt time.Time
	// Budget: rejectedBudget logins were rejected in the last 15 minutes,
	// so no login at all is sent before RetryAt (Vault locks a role at 5).
	Budget bool
	// Files are the credential files whose change is tried at once
	// (none: the credentials come from the environment; restart with
	// new ones).
	Files []string

	err     error // Vault's answer, when this login was sent
	changed func() bool
}

func (e *LoginRejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "vault login (%s at %s) rejected: %s; ", e.Method, e.Path, e.Cause)
	if e.err == nil {
		fmt.Fprintf(&b, "not sent again since %s; ", e.At.UTC().Format(time.TimeOnly+" UTC"))
	}
	if e.Budget {
		fmt.Fprintf(&b, "%d logins were rejected within %s (Vault locks the role after 5): no login, whatever the credentials, before %s",
			rejectedBudget, rejectedWindow, e.RetryAt.UTC().Format(time.TimeOnly+" UTC"))
		return b.String()
	}
	fmt.Fprintf(&b, "the same credentials are tried again at %s", e.RetryAt.UTC().Format(time.TimeOnly+" UTC"))
	if len(e.Files) > 0 {
		fmt.Fprintf(&b, ", new ones at once: write them to %s", strings.Join(e.Files, " or "))
	} else {
		b.WriteString("; to use new ones, restart with them")
	}
	return b.String()
}

// Unwrap is Vault's answer (nil for a login held back).
func (e *LoginRejectedError) Unwrap() error { return e.err }

// CredentialsChanged reports whether the credential files now hold
// something other than what Vault rejected, so a login is worth trying at
// once. It reads the files (at most a few times a second, shared by all
// callers) and never calls Vault.
func (e *LoginRejectedError) CredentialsChanged() bool {
	if e.changed == nil || e.Budget { // new credentials would be held back too
		return false
	}
	return e.changed()
}

// IsLoginRejected reports whether err is, or wraps, a LoginRejectedError.
func IsLoginRejected(err error) bool {
	var rej *LoginRejectedError
	return errors.As(err, &rej)
}
