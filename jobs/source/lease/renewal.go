package lease

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// tokenEnd is when the token the lease was made under ends for good, or
// zero when it is kept alive: a token replaced since (a new login) ends
// at its last known expiry; the current one when its expiry is final.
func (s *Source) tokenEnd(l *lease) time.Time {
	made := l.cur.Token
	now := s.c.TokenLife()
	switch {
	case made.Gen != now.Gen:
		return made.Expiry
	case now.Final:
		return now.Expiry
	}
	return time.Time{}
}

// plan sets the lease's timer: a renewal, a replacement, or, for a static
// role, a wake-up at its ttl. The caller holds l.mu.
func (s *Source) plan(l *lease, now time.Time) {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.next, l.nextAt = "", time.Time{}
	l.gen++ // a timer already firing finds itself stale
	if l.cur == nil {
		return
	}
	handover := s.s.Handover + handoverMargin
	if l.cert {
		end, reason := l.end, "certificate"
		if te := s.tokenEnd(l); l.cur.ID != "" && !te.IsZero() && te.Before(end) {
			end, reason = te, "token_end" // its lease dies with the token
		}
		l.due = certRenewAt(now, l.issued, end, l.renewFrac, l.renewBefore, handover)
		l.dueWhy = reason
		s.after(l, now, "replace", l.due.Sub(now), func(g uint64) { s.replace(l, reason, g) })
		return
	}
	if l.cur.ID == "" {
		if ttl, ok := dataTTL(l.cur.Data); ok && l.req.Method == http.MethodGet {
			// A static role: read again just after Vault rotates it.
			s.after(l, now, "read", ttl+time.Second, func(uint64) { s.wakeAll(l) })
		}
		return
	}
	end, reason := l.end, "max_ttl"
	if !l.cur.Renewable {
		reason = "not_renewable"
	}
	if te := s.tokenEnd(l); !te.IsZero() && (end.IsZero() || te.Before(end)) {
		end, reason = te, "token_end"
	}
	if l.cur.Renewable && !l.final && reason != "token_end" {
		at := renewAt(l.granted, l.ttl, l.renewFrac, l.fresh)
		l.fresh = false
		s.after(l, now, "renew", at.Sub(now), func(g uint64) { s.renew(l, g) })
		return
	}
	if end.IsZero() {
		return // neither the lease nor its token ends
	}
	l.due = replaceAt(now, l.issued, end, l.replaceFrac, handover)
	l.dueWhy = reason
	s.after(l, now, "replace", l.due.Sub(now), func(g uint64) { s.replace(l, reason, g) })
}

// dataTTL is a static role's "ttl" (seconds until Vault rotates it).
func dataTTL(data map[string]any) (time.Duration, bool) {
	switch v := data["ttl"].(type) {
	case json.Number:
		n, err := v.Int64()
		return time.Duration(n) * time.Second, err == nil && n > 0
	case float64:
		return time.Duration(v) * time.Second, v > 0
	}
	return 0, false
}

// renew is a lease's renewal timer (generation gen).
func (s *Source) renew(l *lease, gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil || s.ctx.Err() != nil || l.gen != gen {
		return // stopped, or a timer that fired while a fetch replaced the lease
	}
	ctx, cancel := context.WithTimeout(s.ctx, callTimeout)
	defer cancel()
	asked := l.cur.Duration
	d, renewable, err := s.c.Renew(ctx, l.cur.ID, asked)
	now := s.clock.Now()
	if err != nil {
		s.rec.LeaseRenewed(metrics.ResultError)
	} else {
		s.rec.LeaseRenewed(metrics.ResultSuccess)
	}
	switch {
	case errors.Is(err, vault.ErrLeaseGone):
		s.log.Warn("lease revoked or lost: replacing it", zap.String("lease_path", l.req.Path), zap.Error(err))
		s.replaceLocked(l, now, "revoked")
		return
	case err != nil:
		l.fails++
		wait := backoff(l.fails, now, l.end)
		log := s.log.Debug
		if l.fails == 1 || l.fails%10 == 0 {
			log = s.log.Warn
		}
		log("lease renewal failed; the current credential stays", zap.String("lease_path", l.req.Path),
			zap.Int("consecutive_failures", l.fails), zap.Duration("retry_in", wait), zap.Error(err))
		// Past the point where a replacement must start, stop renewing.
		if handoverAt := l.end.Add(-(s.s.Handover + handoverMargin)); !now.Add(wait).Before(handoverAt) {
			s.replaceLocked(l, now, "max_ttl")
			return
		}
		s.after(l, now, "renew", wait, func(g uint64) { s.renew(l, g) })
		return
	}
	l.fails, l.granted, l.ttl, l.end = 0, now, d, now.Add(d)
	if d < asked || !renewable {
		l.final = true
	}
	s.exportExpiry(l)
	s.record(l)
	s.log.Debug("lease renewed", zap.String("lease_path", l.req.Path), zap.Duration("ttl", d), zap.Bool("final", l.final))
	s.plan(l, now)
}

// replace is a lease's replacement timer (generation gen).
func (s *Source) replace(l *lease, reason string, gen uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.ctx.Err() != nil || l.gen != gen {
		return // stopped, or a timer that fired while a fetch replaced the lease
	}
	s.replaceLocked(l, s.clock.Now(), reason)
}

// replaceLocked mints the lease's replacement and wakes its secrets; on
// failure it tries again after a back-off while the old one is valid.
func (s *Source) replaceLocked(l *lease, now time.Time, reason string) {
	ctx, cancel := context.WithTimeout(s.ctx, callTimeout)
	defer cancel()
	if err := s.mint(ctx, l, now, reason); err != nil {
		l.fails++
		wait := backoff(l.fails, now, l.end)
		if errors.Is(err, ErrCapReached) {
			wait = max(wait, time.Minute)
		}
		s.log.Warn("lease replacement failed; trying again", zap.String("lease_path", l.req.Path),
			zap.String("reason", reason), zap.Duration("retry_in", wait), zap.Error(err))
		if l.due.IsZero() {
			l.due = now
		}
		s.after(l, now, "replace", wait, func(g uint64) { s.replace(l, reason, g) })
		return
	}
	// The old lease is left to expire; its secrets write the new one now.
	s.wakeNames(l.names())
}

// wakeAll wakes the lease's secrets (a static role's timer).
func (s *Source) wakeAll(l *lease) {
	l.mu.Lock()
	names := l.names()
	l.mu.Unlock()
	s.wakeNames(names)
}

func (s *Source) wakeNames(names []string) {
	if s.wake == nil {
		return
	}
	for _, n := range names {
		s.wake.Wake(n)
	}
}
