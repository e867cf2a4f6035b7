package vault

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
)

// tokenState is what the client knows about its token. The token itself
// also lives in the API client, which sends it.
type tokenState struct {
	gen       uint64 // bumped whenever the token is replaced
	token     logging.Redacted
	known     bool          // TTL and renewability are known (login or lookup)
	issued    time.Time     // when the current TTL started counting
	ttl       time.Duration // 0: the token does not expire
	fullTTL   time.Duration // the TTL a renewal grants; less means max TTL reached
	renewable bool
	warned    bool // the "expires soon and cannot be renewed" warning was logged
}

func (s tokenState) expiry() time.Time {
	if s.ttl <= 0 {
		return time.Time{}
	}
	return s.issued.Add(s.ttl)
}

// valid reports whether the token is there and, as far as the client
// knows, not yet expired.
func (s tokenState) valid(now time.Time) bool {
	if s.token == "" {
		return false
	}
	exp := s.expiry()
	return exp.IsZero() || now.Before(exp)
}

func (cn *conn) state() tokenState {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.st
}

// setToken replaces the token. info is nil when nothing is known about it
// yet (a token read from the environment or a file).
func (cn *conn) setToken(tok logging.Redacted, info *tokenInfo) {
	cn.mu.Lock()
	cn.st = tokenState{gen: cn.st.gen + 1, token: tok}
	if info != nil {
		cn.st.known, cn.st.issued, cn.st.ttl, cn.st.fullTTL, cn.st.renewable = true, info.at, info.ttl, info.fullTTL, info.renewable
	}
	cn.apis.data.SetToken(tok.Reveal())
	st := cn.st
	cn.mu.Unlock()
	cn.signal()
	if info != nil {
		cn.notifyExpiry(st)
	}
}

// signal wakes the renewer to plan again.
func (cn *conn) signal() {
	select {
	case cn.wake <- struct{}{}:
	default:
	}
}

// LoginResult is how a login ended, as told to the TokenObserver: the
// metrics' label type.
type LoginResult = metrics.LoginResult

// Login results: Vault refused the credentials (LoginRejected), the login
// failed otherwise (LoginError), or it gave a token (LoginSuccess).
const (
	LoginSuccess  = metrics.LoginSuccess
	LoginError    = metrics.LoginError
	LoginRejected = metrics.LoginRejected
)

func (cn *conn) loginDone(result LoginResult) {
	if cn.observer != nil {
		cn.observer.LoginDone(cn.method.name(), result)
	}
}

func (cn *conn) notifyExpiry(st tokenState) {
	if cn.observer != nil {
		cn.observer.TokenExpiry(st.expiry())
	}
}

// tokenInfo is a token's lifetime as Vault reported it.
type tokenInfo struct {
	at        time.Time // when the request was sent
	ttl       time.Duration
	fullTTL   time.Duration
	renewable bool
	policies  []string
}

func (i tokenInfo) fields() []zap.Field {
	return []zap.Field{
		zap.Duration("ttl", i.ttl), zap.Bool("renewable", i.renewable), zap.Strings("policies", i.policies),
	}
}

// ensureToken makes sure there is a token to send and returns its
// generation: the token method re-reads token_file; the login methods log
// in when there is no valid token.
func (cn *conn) ensureToken(ctx context.Context) (uint64, error) {
	if cn.tokens != nil {
		return cn.refreshStaticToken()
	}
	st := cn.state()
	if st.valid(time.Now()) {
		return st.gen, nil
	}
	if err := cn.login(ctx, st.gen, "no valid token"); err != nil {
		return 0, err
	}
	return cn.state().gen, nil
}

// refreshStaticToken reads the token method's token and switches to it
// when it changed. A token file that cannot be read while a token is in
// use keeps that token (the orchestrator may be mid-rotation).
func (cn *conn) refreshStaticToken() (uint64, error) {
	cn.loginMu.Lock()
	defer cn.loginMu.Unlock()
	tok, err := cn.tokens.read()
	st := cn.state()
	switch {
	case err != nil && st.token == "":
		return 0, err
	case err != nil:
		cn.log.Debug("vault token_file unreadable; keeping the current token", zap.Error(err))
		return st.gen, nil
	case tok == st.token:
		return st.gen, nil
	}
	if st.token != "" {
		cn.log.Info("vault token changed on disk; using the new one", zap.String("token_file", cn.tokens.file))
	}
	cn.setToken(tok, nil)
	return cn.state().gen, nil
}

// login logs in unless another goroutine already replaced token
// generation seen.
func (cn *conn) login(ctx context.Context, seen uint64, reason string) error {
	cn.loginMu.Lock()
	defer cn.loginMu.Unlock()
	if st := cn.state(); st.gen != seen && st.valid(time.Now()) {
		return nil
	}
	ctx, span := cn.tracer.Start(ctx, "vault.login", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("vault.auth.method", cn.method.name()),
			attribute.String("vault.auth.mount", cn.method.mount())))
	defer span.End()
	info, tok, err := cn.doLogin(ctx)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	cn.setToken(tok, &info)
	cn.log.Info("logged in to vault", append([]zap.Field{
		zap.String("auth_method", cn.method.name()), zap.String("mount", cn.method.mount()), zap.String("reason", reason),
	}, info.fields()...)...)
	return nil
}

func (cn *conn) doLogin(ctx context.Context) (tokenInfo, logging.Redacted, error) {
	body, err := cn.method.body()
	if err != nil {
		cn.loginDone(LoginError)
		return tokenInfo{}, "", err
	}
	path := "auth/" + strings.Trim(cn.method.mount(), "/") + "/login"
	fp := cn.gate.fingerprint(cn.apis.data.Address(), cn.method, body)
	if r := cn.gate.held(fp); r != nil {
		return tokenInfo{}, "", &authError{cn.rejectedError(path, *r, nil)} // not sent, not counted
	}
	at := time.Now()
	var sec *api.Secret
	err = cn.call(ctx, "login ("+cn.method.name()+" at "+path+")", func(ctx context.Context) error {
		var err error
		sec, err = cn.apis.login.Logical().WriteWithContext(ctx, path, body)
		return err
	})
	if err != nil {
		if loginRejected(err) {
			r := cn.gate.reject(fp, rejectionCause(err))
			rej := cn.rejectedError(path, r, err)
			msg := "vault rejected the login; not sending these credentials again until the retry time, new ones at once"
			if r.budget {
				msg = "vault rejected the login; 3 logins were rejected within 15 minutes: no login before the retry time"
			}
			cn.log.Error(msg,
				zap.String("auth_method", cn.method.name()), zap.String("path", path), zap.String("answer", r.cause),
				zap.Int("consecutive_rejections", r.count), zap.Time("retry_at", r.retryAt), zap.Strings("credential_files", cn.method.files()))
			cn.loginDone(LoginRejected)
			return tokenInfo{}, "", &authError{rej}
		}
		cn.loginDone(LoginError)
		return tokenInfo{}, "", &authError{err}
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		cn.loginDone(LoginError)
		return tokenInfo{}, "", &authError{fmt.Errorf("vault login (%s at %s): the answer holds no token", cn.method.name(), path)}
	}
	cn.loginDone(LoginSuccess)
	cn.gate.accepted()
	ttl := time.Duration(sec.Auth.LeaseDuration) * time.Second
	info := tokenInfo{at: at, ttl: ttl, fullTTL: ttl, renewable: sec.Auth.Renewable, policies: sec.Auth.Policies}
	return info, logging.Redacted(sec.Auth.ClientToken), nil
}

// rejectedError describes rejection r of a login at path; answer is
// Vault's error when the login was sent just now.
func (cn *conn) rejectedError(path string, r rejection, answer error) *LoginRejectedError {
	addr, method := cn.apis.data.Address(), cn.method
	return &LoginRejectedError{
		Method: method.name(), Path: path, Cause: r.cause, At: r.at, RetryAt: r.retryAt, Budget: r.budget, Files: method.files(),
		err: answer,
		changed: func() bool {
			return cn.gate.changedSince(func() ([sha256.Size]byte, bool) {
				body, err := method.body()
				if err != nil {
					return [sha256.Size]byte{}, false
				}
				return cn.gate.fingerprint(addr, method, body), true
			})
		},
	}
}

// rejectionCause is Vault's answer to a rejected login, without the
// operation: "invalid secret id (HTTP 500)".
func rejectionCause(err error) string {
	msg := serverMessage(errorMessages(err))
	if msg == "" {
		msg = http.StatusText(statusOf(err))
	}
	return fmt.Sprintf("%s (HTTP %d)", msg, statusOf(err))
}

// lookup asks Vault about the current token and records the answer.
func (cn *conn) lookup(ctx context.Context) (tokenInfo, error) {
	st := cn.state()
	at := time.Now()
	var sec *api.Secret
	err := cn.call(ctx, "token lookup", func(ctx context.Context) error {
		var err error
		sec, err = cn.apis.data.Auth().Token().LookupSelfWithContext(ctx)
		return err
	})
	if err != nil {
		if isForbidden(err) {
			err = &authError{err}
		}
		return tokenInfo{}, err
	}
	info, err := lookupInfo(sec, at)
	if err != nil {
		return tokenInfo{}, err
	}
	cn.mu.Lock()
	if cn.st.gen == st.gen {
		cn.st.known, cn.st.issued, cn.st.ttl, cn.st.fullTTL, cn.st.renewable = true, at, info.ttl, info.fullTTL, info.renewable
	}
	st = cn.st
	cn.mu.Unlock()
	cn.notifyExpiry(st)
	return info, nil
}

func lookupInfo(sec *api.Secret, at time.Time) (tokenInfo, error) {
	if sec == nil || sec.Data == nil {
		return tokenInfo{}, errors.New("vault token lookup: empty answer")
	}
	ttl, err := sec.TokenTTL()
	if err != nil {
		return tokenInfo{}, fmt.Errorf("vault token lookup: ttl: %w", err)
	}
	renewable, err := sec.TokenIsRenewable()
	if err != nil {
		return tokenInfo{}, fmt.Errorf("vault token lookup: renewable: %w", err)
	}
	policies, _ := sec.TokenPolicies()
	full := ttl
	if n, ok := sec.Data["creation_ttl"].(json.Number); ok {
		if v, err := n.Int64(); err == nil && v > 0 {
			full = time.Duration(v) * time.Second
		}
	}
	return tokenInfo{at: at, ttl: ttl, fullTTL: full, renewable: renewable, policies: policies}, nil
}

// renew renews the current token by its default increment and records the
// new TTL. capped reports that Vault granted less than a full TTL: the
// token is at its max TTL.
func (cn *conn) renew(ctx context.Context) (info tokenInfo, capped bool, err error) {
	st := cn.state()
	at := time.Now()
	var sec *api.Secret
	err = cn.call(ctx, "token renewal", func(ctx context.Context) error {
		var err error
		sec, err = cn.apis.data.Auth().Token().RenewSelfWithContext(ctx, 0)
		return err
	})
	if pastMaxTTL(err) {
		return tokenInfo{at: at, fullTTL: st.fullTTL}, true, nil
	}
	if err != nil {
		return tokenInfo{}, false, err
	}
	if sec == nil || sec.Auth == nil {
		return tokenInfo{}, false, errors.New("vault token renewal: the answer holds no auth")
	}
	ttl := time.Duration(sec.Auth.LeaseDuration) * time.Second
	info = tokenInfo{at: at, ttl: ttl, fullTTL: st.fullTTL, renewable: sec.Auth.Renewable, policies: sec.Auth.Policies}
	cn.mu.Lock()
	if cn.st.gen == st.gen {
		cn.st.issued, cn.st.ttl, cn.st.renewable = at, ttl, sec.Auth.Renewable
	}
	st = cn.st
	cn.mu.Unlock()
	cn.notifyExpiry(st)
	return info, ttl < st.fullTTL, nil
}

// prepareToken gets a token ready and logs what it is: a login for the
// login methods, a lookup for the token method.
func (cn *conn) prepareToken(ctx context.Context) error {
	if cn.method != nil {
		return cn.login(ctx, cn.state().gen, "start")
	}
	if _, err := cn.refreshStaticToken(); err != nil {
		return err
	}
	info, err := cn.lookup(ctx)
	if err != nil {
		return err
	}
	cn.logStaticToken(info)
	return nil
}

func (cn *conn) logStaticToken(info tokenInfo) {
	fields := append([]zap.Field{zap.String("auth_method", cn.methodName())}, info.fields()...)
	if info.ttl > 0 {
		fields = append(fields, zap.Time("expires", info.at.Add(info.ttl)))
	}
	cn.log.Info("vault token looked up", fields...)
}

// afterForbidden is called after Vault refused (401/403) a request made
// with token generation gen. retry: there is now a different token worth
// one more try (the token method re-read token_file; a login method logged
// in again because Vault no longer accepts its token). Otherwise the token
// is checked with a lookup: tokenOK, Vault accepts it and the request
// itself was denied; tokenErr, Vault rejected the token (or the login that
// would replace it), which is the error to show.
func (cn *conn) afterForbidden(ctx context.Context, gen uint64) (retry, tokenOK bool, tokenErr error) {
	if cn.tokens != nil {
		if now, err := cn.refreshStaticToken(); err == nil && now != gen {
			return true, false, nil
		}
	} else if cn.state().gen != gen {
		return true, false, nil // someone else already replaced it
	}
	_, err := cn.lookup(ctx)
	switch {
	case err == nil:
		return false, true, nil
	case !isForbidden(err):
		return false, false, nil // cannot tell; the read's own error stands
	case cn.tokens != nil:
		return false, false, &authError{fmt.Errorf("vault rejected the token from %s: %w", cn.tokens.source(), err)}
	}
	cn.log.Info("vault no longer accepts the token; logging in again", zap.String("auth_method", cn.method.name()))
	if err := cn.login(ctx, gen, "token rejected"); err != nil {
		return false, false, err
	}
	return true, false, nil
}
