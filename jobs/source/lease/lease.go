// Package lease is the source of leased secrets: a request to any Vault
// API path (database/creds/ROLE, database/static-creds/ROLE,
// pki/issue/ROLE, aws/sts/...) whose response's data is the template's
// data. Secrets with the same request share one lease. A lease is renewed
// at a fraction of its TTL and replaced before it, or the token it was
// made under, ends; renewal errors back off; a failed renewal never by
// itself mints a new credential while the old one is valid, and new
// leases per request are capped. A dry run (source.Peek) never mints.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// Client makes the lease calls (*vault.Client).
type Client interface {
	Request(ctx context.Context, req vault.LeaseRequest) (*vault.Leased, error)
	Renew(ctx context.Context, id logging.Redacted, increment time.Duration) (time.Duration, bool, error)
	Revoke(ctx context.Context, id logging.Redacted) error
	RevokeSelf(ctx context.Context) error
	Lookup(ctx context.Context, id logging.Redacted) (time.Duration, bool, error)
	TokenLife() vault.TokenLife
}

// Recorder receives the lease metrics (*metrics.Metrics).
type Recorder interface {
	LeaseIssued(reason string)
	LeaseRenewed(res metrics.Result)
	LeaseRevoked(res metrics.Result)
	LeaseExpiry(secret string, t time.Time)
}

// Waker hears of a secret whose source has new data to write now (the
// daemon runs its job at once).
type Waker interface {
	Wake(secret string)
}

// ErrCapReached is a replacement refused because the request already had
// leases.max_new_leases new leases within one lease period.
var ErrCapReached = errors.New("new-lease cap reached")

// callTimeout bounds each renewal, replacement and revocation made by a
// timer.
const callTimeout = 30 * time.Second

// Settings are the source's process-wide settings.
type Settings struct {
	Leases config.Leases
	// Handover is the change actions' debounce plus splay: a replacement
	// comes at least this (plus a margin) before the old credential ends.
	Handover time.Duration
	// NoRevoke keeps Stop from revoking whatever revoke_on_shutdown says
	// (once: the daemon after it adopts its leases).
	NoRevoke bool
}

// Options are the source's collaborators; nil ones get harmless defaults.
type Options struct {
	Clock    clockwork.Clock
	Log      *zap.Logger
	Wake     Waker
	Recorder Recorder
}

// Source serves leased secrets.
type Source struct {
	c     Client
	s     Settings
	clock clockwork.Clock
	log   *zap.Logger
	wake  Waker
	rec   Recorder

	ctx    context.Context // the timers' calls; cancelled by Stop
	cancel context.CancelFunc
	state  *stateDir // leases.state_dir; nil when not set

	mu     sync.Mutex
	leases map[string]*lease // by request fingerprint
}

// New returns a source making its calls through c. With
// leases.state_dir set it opens and locks that directory, which must be
// the sidecar user's alone (an error wrapping ErrStateDir otherwise).
func New(c Client, s Settings, o Options) (*Source, error) {
	src := &Source{c: c, s: s, clock: o.Clock, log: o.Log, wake: o.Wake, rec: o.Recorder, leases: map[string]*lease{}}
	if src.rec == nil {
		src.rec = metrics.Discard{}
	}
	if src.clock == nil {
		src.clock = clockwork.NewRealClock()
	}
	if src.log == nil {
		src.log = zap.NewNop()
	}
	if s.Leases.StateDir != "" {
		st, err := openState(s.Leases.StateDir)
		if err != nil {
			return nil, err
		}
		src.state = st
	}
	src.ctx, src.cancel = context.WithCancel(context.Background())
	return src, nil
}

// Serves reports whether sec is a leased secret.
func (*Source) Serves(sec *config.Secret) bool { return sec.IsLeased() }

// lease is one request's lease, shared by the secrets that make it.
type lease struct {
	fp          string
	req         vault.LeaseRequest
	renewFrac   float64
	replaceFrac float64

	mu      sync.Mutex // one call at a time per lease
	secrets map[string]struct{}
	cur     *vault.Leased
	issued  time.Time     // when the current lease's request was sent
	granted time.Time     // when its TTL was last granted (mint or renewal)
	ttl     time.Duration // the TTL last granted
	end     time.Time     // when it expires as far as known
	final   bool          // cannot be renewed past end
	due     time.Time     // replaced from then on (zero: not planned)
	mints   []time.Time   // when each replacement was minted
	fails   int
	adopt   bool // the state directory was consulted
	timer   clockwork.Timer
}

func (s *Source) lease(sec *config.Secret) *lease {
	fp := sec.Lease.Fingerprint()
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[fp]
	if !ok {
		l = &lease{fp: fp, secrets: map[string]struct{}{},
			req:       vault.LeaseRequest{Method: sec.Lease.Method, Path: sec.Lease.Path, Parameters: sec.Lease.Parameters},
			renewFrac: *sec.Lease.RenewFraction, replaceFrac: *sec.Lease.ReplaceFraction}
		s.leases[fp] = l
	}
	l.mu.Lock()
	l.secrets[sec.Name] = struct{}{}
	l.mu.Unlock()
	return l
}

// Fetch returns the data of sec's lease: the current one while it is
// valid and not due for replacement, else a new one. A response without
// a lease from a GET (a static role) is read again each time (the daemon
// asks at refresh_interval, and at its ttl). With source.Peek it never
// mints: the current lease's data, or an error wrapping
// source.ErrWouldChange.
func (s *Source) Fetch(ctx context.Context, sec *config.Secret, mode source.Mode) (*source.Data, error) {
	l := s.lease(sec)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := s.clock.Now()
	if l.serves(now) {
		return l.data(), nil
	}
	if mode == source.Peek {
		if l.cur != nil && now.Before(l.end) {
			return l.data(), nil
		}
		if l.req.Method != http.MethodGet {
			return nil, fmt.Errorf("%s %s: would mint a new lease: %w", l.req.Method, l.req.Path, source.ErrWouldChange)
		}
		// A GET of a dynamic role mints too: only a static role's read
		// changes nothing, and which one it is shows only in the answer.
		return nil, fmt.Errorf("GET %s: would read (and for a dynamic role mint) a credential: %w", l.req.Path, source.ErrWouldChange)
	}
	reason := "initial"
	if l.cur == nil && s.state != nil && !l.adopt {
		l.adopt = true
		adopted, recorded, err := s.adoptRecorded(ctx, l, now)
		switch {
		case err != nil:
			return nil, err
		case adopted:
			return l.data(), nil
		case recorded:
			reason = "restart" // a recorded lease that could not be adopted
		}
	}
	if err := s.mint(ctx, l, now, reason); err != nil {
		return nil, err
	}
	return l.data(), nil
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
	l.granted, l.ttl, l.end, l.final = now, ttl, now.Add(ttl), rec.Final || !renewable
	s.exportExpiry(l)
	s.log.Info("lease adopted from the state directory", zap.String("lease_path", l.req.Path),
		zap.Duration("ttl", ttl), zap.Time("token_expiry", rec.TokenExpiry), zap.Strings("secrets", l.names()))
	s.plan(l, now)
	return true, true, nil
}

// serves reports whether the current response is still the one to hand
// out.
func (l *lease) serves(now time.Time) bool {
	switch {
	case l.cur == nil:
		return false
	case l.cur.ID == "" && l.req.Method == http.MethodGet:
		return false // a static role: read again
	case !l.end.IsZero() && !now.Before(l.end):
		return false
	case !l.due.IsZero() && !now.Before(l.due):
		return false
	}
	return true
}

func (l *lease) data() *source.Data {
	d := &source.Data{Values: l.cur.Data}
	if l.cur.ID != "" {
		d.Lease = &source.Lease{Expires: l.end, TTL: l.ttl, Renewable: l.cur.Renewable && !l.final}
	}
	return d
}

// mint sends the request for a new lease (the caller holds l.mu), within
// the cap on replacements, and plans what comes next.
func (s *Source) mint(ctx context.Context, l *lease, now time.Time, reason string) error {
	if l.cur != nil && l.cur.ID != "" {
		period := max(l.ttl, time.Minute)
		if l.end.After(l.issued) {
			period = max(l.end.Sub(l.issued), time.Minute)
		}
		recent := 0
		for _, t := range l.mints {
			if now.Sub(t) < period {
				recent++
			}
		}
		if recent >= *s.s.Leases.MaxNewLeases {
			s.log.Error("new-lease cap reached: no new lease for this request until one lease period has passed",
				zap.String("lease_path", l.req.Path), zap.String("reason", reason), zap.Int("new_leases", recent),
				zap.Duration("period", period), zap.Strings("secrets", l.names()))
			return fmt.Errorf("%s %s: %w (%d new leases within %s)", l.req.Method, l.req.Path, ErrCapReached, recent, period)
		}
	}
	resp, err := s.c.Request(ctx, l.req)
	if err != nil {
		return err
	}
	if l.cur != nil && l.cur.ID != "" {
		l.mints = append(l.mints, now)
		if len(l.mints) > 64 {
			l.mints = l.mints[len(l.mints)-64:]
		}
	}
	l.cur, l.issued, l.granted, l.ttl, l.final, l.fails, l.due = resp, resp.Received, resp.Received, resp.Duration, !resp.Renewable, 0, time.Time{}
	l.end = time.Time{}
	if resp.Duration > 0 {
		l.end = resp.Received.Add(resp.Duration)
	}
	s.rec.LeaseIssued(reason)
	s.exportExpiry(l)
	s.record(l)
	s.log.Info("lease minted", zap.String("lease_path", l.req.Path), zap.String("reason", reason),
		zap.Duration("ttl", resp.Duration), zap.Bool("renewable", resp.Renewable), zap.Bool("lease", resp.ID != ""),
		zap.Strings("secrets", l.names()))
	s.plan(l, now)
	return nil
}

// record saves l in the state directory, when there is one, before the
// data is handed out (so before any file is written from it). A failure
// is logged: the lease works, a restart will not find it. The caller
// holds l.mu.
func (s *Source) record(l *lease) {
	if s.state == nil || l.cur == nil || l.cur.ID == "" {
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

// exportExpiry sets the expiry gauge of every secret of the lease (the
// caller holds l.mu).
func (s *Source) exportExpiry(l *lease) {
	for n := range l.secrets {
		s.rec.LeaseExpiry(n, l.end)
	}
}

func (l *lease) names() []string {
	out := make([]string, 0, len(l.secrets))
	for n := range l.secrets {
		out = append(out, n)
	}
	return out
}

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
	if l.cur == nil {
		return
	}
	if l.cur.ID == "" {
		if ttl, ok := dataTTL(l.cur.Data); ok && l.req.Method == http.MethodGet {
			// A static role: read again just after Vault rotates it.
			l.timer = s.clock.AfterFunc(ttl+time.Second, func() { s.wakeAll(l) })
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
	handover := s.s.Handover + handoverMargin
	if l.cur.Renewable && !l.final && reason != "token_end" {
		at := renewAt(l.granted, l.ttl, l.renewFrac)
		l.timer = s.clock.AfterFunc(at.Sub(now), func() { s.renew(l) })
		return
	}
	if end.IsZero() {
		return // neither the lease nor its token ends
	}
	l.due = replaceAt(now, l.issued, end, l.replaceFrac, handover)
	l.timer = s.clock.AfterFunc(l.due.Sub(now), func() { s.replace(l, reason) })
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

// renew is a lease's renewal timer.
func (s *Source) renew(l *lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil || s.ctx.Err() != nil {
		return
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
		l.timer = s.clock.AfterFunc(wait, func() { s.renew(l) })
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

// replace is a lease's replacement timer.
func (s *Source) replace(l *lease, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.ctx.Err() != nil {
		return
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
		l.timer = s.clock.AfterFunc(wait, func() { s.replace(l, reason) })
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

// Stop ends the timers and, as revoke_on_shutdown says (never with
// NoRevoke), revokes the current leases within ctx.
func (s *Source) Stop(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	leases := make([]*lease, 0, len(s.leases))
	for _, l := range s.leases {
		leases = append(leases, l)
	}
	s.mu.Unlock()
	var errs []error
	revoke := !s.s.NoRevoke && s.s.Leases.RevokeOnShutdown == config.RevokeLease
	for _, l := range leases {
		l.mu.Lock()
		if l.timer != nil {
			l.timer.Stop()
		}
		id := logging.Redacted("")
		if l.cur != nil {
			id = l.cur.ID
		}
		l.mu.Unlock()
		if id == "" || !revoke {
			continue
		}
		if err := s.c.Revoke(ctx, id); err != nil {
			s.rec.LeaseRevoked(metrics.ResultError)
			errs = append(errs, fmt.Errorf("revoke the lease of %s: %w", l.req.Path, err))
			continue
		}
		s.rec.LeaseRevoked(metrics.ResultSuccess)
		if s.state != nil {
			if err := s.state.remove(l.fp); err != nil {
				errs = append(errs, err)
			}
		}
		s.log.Info("lease revoked on shutdown", zap.String("lease_path", l.req.Path))
	}
	if !s.s.NoRevoke && s.s.Leases.RevokeOnShutdown == config.RevokeToken && len(leases) > 0 {
		if err := s.c.RevokeSelf(ctx); err != nil {
			s.rec.LeaseRevoked(metrics.ResultError)
			errs = append(errs, fmt.Errorf("revoke the token: %w", err))
		} else {
			s.rec.LeaseRevoked(metrics.ResultSuccess)
			s.log.Info("token revoked on shutdown, and with it every lease it made")
		}
	}
	if s.state != nil {
		errs = append(errs, s.state.close())
	}
	return errors.Join(errs...)
}

// Apply is the reload's settings phase: the leases: block cannot change
// while the sidecar runs (its leases and state were made under it).
func (s *Source) Apply(_ context.Context, cfg *config.Config) error {
	if !sameLeases(cfg.Leases, s.s.Leases) {
		return errors.New("the leases: block cannot change on a reload; restart the sidecar to apply it")
	}
	return nil
}

func sameLeases(a, b config.Leases) bool {
	eqf := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqi := func(x, y *int) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.StateDir == b.StateDir && a.RevokeOnShutdown == b.RevokeOnShutdown && a.MinRemaining.Duration == b.MinRemaining.Duration &&
		eqf(a.RenewFraction, b.RenewFraction) && eqf(a.ReplaceFraction, b.ReplaceFraction) && eqi(a.MaxNewLeases, b.MaxNewLeases)
}
