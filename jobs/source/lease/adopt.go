package lease

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// adoptOnce consults the state directory for l's request, once: it
// reports whether the recorded lease was adopted, and marks a record that
// could not be (the new lease's reason is then "restart"). The caller
// holds l.mu.
func (s *Source) adoptOnce(ctx context.Context, l *lease, now time.Time) (bool, error) {
	l.adopt = true
	adopted, recorded, err := s.adoptRecorded(ctx, l, now)
	l.restart = recorded && !adopted
	return adopted, err
}

// adoptRecorded takes over the lease the state directory recorded for l's
// request, when Vault still knows it and it and its token outlive the
// handover; it reports whether it did, and whether there was a record.
// The caller holds l.mu.
func (s *Source) adoptRecorded(ctx context.Context, l *lease, now time.Time) (adopted, recorded bool, _ error) {
	rec, err := s.state.load(l.fp)
	if err != nil || rec == nil {
		if err != nil {
			s.log.Warn("lease record unreadable; minting a new lease", zap.String("lease_path", l.req.Path), zap.Error(err))
		}
		return false, err != nil, nil
	}
	margin := s.s.Handover + handoverMargin
	values, verr := rec.values()
	switch {
	case verr != nil:
		s.log.Warn("lease record holds no data; minting a new lease", zap.String("lease_path", l.req.Path), zap.Error(verr))
		return false, true, nil //nolint:nilerr // logged: a bad record means a new lease, not a failed sync
	case rec.Path != l.req.Path, rec.Method != l.req.Method:
		return false, true, nil
	case !rec.End.After(now.Add(margin)):
		s.log.Info("recorded lease too close to its end to adopt", zap.String("lease_path", l.req.Path))
		return false, true, nil
	case !rec.TokenExpiry.IsZero() && !rec.TokenExpiry.After(now.Add(margin)):
		s.log.Info("recorded lease's token too close to its end to adopt", zap.String("lease_path", l.req.Path))
		return false, true, nil
	}
	if rec.LeaseID == "" {
		return s.adoptCertificate(l, rec, values, now), true, nil
	}
	ttl, renewable, err := s.c.Lookup(ctx, rec.id())
	switch {
	case errors.Is(err, vault.ErrLeaseGone):
		s.log.Info("recorded lease no longer known to Vault", zap.String("lease_path", l.req.Path))
		return false, true, nil
	case err != nil:
		return false, true, err
	}
	l.cur = &vault.Leased{Data: values, ID: rec.id(), Duration: ttl, Renewable: renewable, Received: rec.Issued,
		Token: vault.TokenLife{Expiry: rec.TokenExpiry, Final: true}}
	l.issued, l.granted, l.ttl, l.end, l.final = rec.Issued, now, ttl, now.Add(ttl), rec.Final || !renewable
	l.fresh = true
	l.certClock(rec.Issued) // a certificate with a (non-renewable) lease keeps its own clock
	s.exportExpiry(l)
	s.log.Info("lease adopted from the state directory", zap.String("lease_path", l.req.Path),
		zap.Duration("ttl", ttl), zap.Time("token_expiry", rec.TokenExpiry), zap.Strings("secrets", l.names()))
	s.plan(l, now)
	return true, true, nil
}

// peekRecorded is a dry run's answer from the state directory: the
// recorded data of l's request when a run would adopt it (by its record:
// a dry run asks Vault nothing about leases), else nil. It changes
// nothing. The caller holds l.mu.
func (s *Source) peekRecorded(l *lease, now time.Time) *source.Data {
	if s.state == nil {
		return nil
	}
	rec, err := s.state.load(l.fp)
	if err != nil || rec == nil || rec.Path != l.req.Path || rec.Method != l.req.Method {
		return nil
	}
	margin := s.s.Handover + handoverMargin
	if !rec.End.After(now.Add(margin)) || (!rec.TokenExpiry.IsZero() && !rec.TokenExpiry.After(now.Add(margin))) {
		return nil
	}
	values, err := rec.values()
	if err != nil {
		return nil
	}
	return &source.Data{Values: values, Lease: &source.Lease{Expires: rec.End, TTL: rec.End.Sub(now), Renewable: rec.Renewable && !rec.Final}}
}

// adoptCertificate takes over a recorded certificate issued without a
// lease: nothing to look up in Vault, its own NotAfter is its end (the
// caller checked it outlives the handover). The caller holds l.mu.
func (s *Source) adoptCertificate(l *lease, rec *record, values map[string]any, now time.Time) bool {
	l.cur = &vault.Leased{Data: values, Received: rec.Issued, Token: vault.TokenLife{Expiry: rec.TokenExpiry, Final: true}}
	l.end, l.ttl, l.granted, l.final = time.Time{}, 0, now, true
	if l.certClock(rec.Issued); !l.cert || !l.end.After(now.Add(s.s.Handover+handoverMargin)) {
		l.cur, l.cert, l.end = nil, false, time.Time{}
		return false
	}
	s.exportExpiry(l)
	s.log.Info("certificate adopted from the state directory", zap.String("lease_path", l.req.Path),
		zap.Time("not_after", l.end), zap.Strings("secrets", l.names()))
	s.plan(l, now)
	return true
}

// record saves l in the state directory, when there is one, before the
// data is handed out (so before any file is written from it). A failure
// is logged: the lease works, a restart will not find it. The caller
// holds l.mu.
func (s *Source) record(l *lease) {
	if s.state == nil || l.cur == nil || (l.cur.ID == "" && !l.cert) {
		return
	}
	expiry := l.cur.Token.Expiry
	if now := s.c.TokenLife(); now.Gen == l.cur.Token.Gen {
		expiry = now.Expiry // renewed since the mint
	}
	if err := s.state.save(l, expiry); err != nil {
		s.log.Warn("lease not recorded in the state directory: a restart mints a new one", zap.String("lease_path", l.req.Path), zap.Error(err))
	}
}
