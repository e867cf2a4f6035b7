package vault

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// renewFraction is how much of a TTL passes before the token is renewed
// (or replaced): about 2/3, as Vault Agent does.
const renewFraction = 2.0 / 3.0

// retryBackoff spaces the renewer's attempts after a failure.
var retryBackoff = Backoff{Base: time.Second, Max: 30 * time.Second}

// renewLoop keeps the token alive until ctx ends: it renews renewable
// tokens at about 2/3 of their TTL, logs in again when renewal fails, the
// token is not renewable or it reached its max TTL, and warns when a
// static token that cannot be renewed nears its expiry.
func (cn *conn) renewLoop(ctx context.Context) {
	failures := 0
	var heldUntil time.Time // a rejected login: nothing to do before then
	for {
		delay, ok := cn.nextCheck(time.Now(), failures)
		if !heldUntil.IsZero() {
			// Reads that bring new credentials log in themselves and wake
			// the renewer through cn.wake.
			delay, ok = max(time.Until(heldUntil), 0), true
		}
		var fire <-chan time.Time
		var timer *time.Timer
		if ok {
			timer = time.NewTimer(delay)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			stopTimer(timer)
			return
		case <-cn.wake:
			stopTimer(timer)
			heldUntil = time.Time{}
			continue
		case <-fire:
		}
		heldUntil = time.Time{}
		if err := cn.maintain(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			var rej *LoginRejectedError
			if errors.As(err, &rej) { // logged once, when Vault answered
				heldUntil = rej.RetryAt
				continue
			}
			failures++
			cn.log.Warn("vault token upkeep failed; will retry",
				zap.String("auth_method", cn.methodName()), zap.Int("attempt", failures), zap.Error(err))
			continue
		}
		failures = 0
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// nextCheck is how long to wait before maintain; ok is false when there
// is nothing to do until the token changes.
func (cn *conn) nextCheck(now time.Time, failures int) (time.Duration, bool) {
	if failures > 0 {
		return retryBackoff.Delay(failures - 1), true
	}
	st := cn.state()
	switch {
	case st.token == "":
		return 0, cn.method != nil // log in; a static token arrives with the next read
	case !st.known:
		return 0, true // look it up
	case st.ttl <= 0:
		return 0, false // does not expire
	case cn.method == nil && !st.renewable && st.warned:
		return 0, false // warned once; only a new token changes anything
	}
	at := st.issued.Add(time.Duration(float64(st.ttl) * renewFraction))
	return max(at.Sub(now), 0), true
}

// maintain does the one thing due now.
func (cn *conn) maintain(ctx context.Context) error {
	if cn.method != nil {
		return cn.maintainLogin(ctx)
	}
	return cn.maintainStatic(ctx)
}

func (cn *conn) maintainLogin(ctx context.Context) error {
	st := cn.state()
	switch {
	case st.token == "":
		return cn.login(ctx, st.gen, "no token")
	case !st.renewable:
		return cn.login(ctx, st.gen, "token not renewable")
	}
	info, capped, err := cn.renew(ctx)
	switch {
	case err != nil:
		cn.log.Warn("vault token renewal failed; logging in again", zap.String("auth_method", cn.method.name()), zap.Error(err))
		return cn.login(ctx, st.gen, "renewal failed")
	case capped:
		cn.log.Info("vault token reached its max TTL; logging in again", zap.String("auth_method", cn.method.name()),
			zap.Duration("ttl", info.ttl))
		return cn.login(ctx, st.gen, "max TTL reached")
	}
	cn.log.Info("vault token renewed", append([]zap.Field{zap.String("auth_method", cn.method.name())}, info.fields()...)...)
	return nil
}

func (cn *conn) maintainStatic(ctx context.Context) error {
	if _, err := cn.refreshStaticToken(); err != nil {
		return err
	}
	st := cn.state()
	if st.token == "" {
		return nil
	}
	if !st.known {
		info, err := cn.lookup(ctx)
		if err != nil {
			return err
		}
		cn.logStaticToken(info)
		return nil
	}
	if !st.renewable {
		cn.warnExpiring(st, "the token is not renewable")
		return nil
	}
	info, capped, err := cn.renew(ctx)
	if err != nil {
		return err
	}
	if capped {
		cn.mu.Lock()
		if cn.st.gen == st.gen {
			cn.st.renewable = false // renewing further cannot extend it
		}
		cn.mu.Unlock()
		cn.warnExpiring(cn.state(), "the token reached its max TTL")
		return nil
	}
	cn.log.Info("vault token renewed", append([]zap.Field{zap.String("auth_method", cn.methodName())}, info.fields()...)...)
	return nil
}

// warnExpiring logs, once per token, that a static token will expire.
func (cn *conn) warnExpiring(st tokenState, why string) {
	cn.mu.Lock()
	if cn.st.gen != st.gen || cn.st.warned {
		cn.mu.Unlock()
		return
	}
	cn.st.warned = true
	cn.mu.Unlock()
	exp := st.expiry()
	msg := "vault token expires soon and cannot be renewed: supply a new one (VAULT_TOKEN, or token_file, which is re-read)"
	cn.log.Warn(msg, zap.String("reason", why), zap.Time("expires", exp), zap.Duration("expires_in", time.Until(exp).Round(time.Second)))
}
