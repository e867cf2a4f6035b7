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
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
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
	LeaseCapReached(secret string)
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
	// ReadOnly opens leases.state_dir to read only (a dry run): unlocked,
	// not made when missing, never written.
	ReadOnly bool
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

	issuersMu sync.Mutex                // never taken before a lease's mu
	issuers   map[string]*x509.CertPool // a PKI issuer's chain, by its path (Reuse)
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
		st, err := openState(s.Leases.StateDir, s.ReadOnly)
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
	renewBefore time.Duration
	genKey      bool // lease.generate_key: a key made here, a CSR sent

	mu      sync.Mutex // one call at a time per lease
	secrets map[string]struct{}
	cur     *vault.Leased
	issued  time.Time     // when the current lease's request was sent
	granted time.Time     // when its TTL was last granted (mint or renewal)
	ttl     time.Duration // the TTL last granted
	end     time.Time     // when it expires as far as known
	final   bool          // cannot be renewed past end
	due     time.Time     // replaced from then on (zero: not planned)
	dueWhy  string        // the planned replacement's reason
	mints   []time.Time   // when each replacement was minted
	fails   int
	cert    bool // the response's certificate is its clock (see certClock)
	adopt   bool // the state directory was consulted
	restart bool // it held a record that could not be adopted
	reuse   bool // Reuse was tried (the files on disk)
	fresh   bool // minted or adopted since its last renewal (renewAt)
	// reuseWarned: Reuse said once that it could not check the files.
	reuseWarned bool
	timer       clockwork.Timer
	next        string    // what the timer does: renew, replace or read
	nextAt      time.Time // when
	gen         uint64    // the timer's generation: a fired timer of an older one does nothing
}

// after sets the lease's timer: fn, what (for the status) after d; fn
// gets the timer's generation, to check under l.mu that it is still the
// current one. The caller holds l.mu.
func (s *Source) after(l *lease, now time.Time, what string, d time.Duration, fn func(gen uint64)) {
	if l.timer != nil {
		l.timer.Stop()
	}
	l.gen++
	gen := l.gen
	l.next, l.nextAt = what, now.Add(d)
	l.timer = s.clock.AfterFunc(d, func() { fn(gen) })
}

func (s *Source) lease(sec *config.Secret) *lease {
	fp := sec.Lease.Fingerprint()
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[fp]
	if !ok {
		l = &lease{fp: fp, secrets: map[string]struct{}{},
			req:       vault.LeaseRequest{Method: sec.Lease.Method, Path: sec.Lease.Path, Parameters: sec.Lease.Parameters},
			renewFrac: *sec.Lease.RenewFraction, replaceFrac: *sec.Lease.ReplaceFraction, renewBefore: sec.Lease.RenewBefore.Duration,
			genKey: sec.Lease.GenerateKey}
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
		if d := s.peekRecorded(l, now); d != nil {
			return d, nil
		}
		if l.req.Method != http.MethodGet {
			return nil, fmt.Errorf("%s %s: would mint a new lease: %w", l.req.Method, l.req.Path, source.ErrWouldChange)
		}
		// A GET of a dynamic role mints too: only a static role's read
		// changes nothing, and which one it is shows only in the answer.
		return nil, fmt.Errorf("GET %s: would read (and for a dynamic role mint) a credential: %w", l.req.Path, source.ErrWouldChange)
	}
	reason := "initial"
	switch {
	case l.cur != nil && l.dueWhy != "":
		reason = l.dueWhy // a refresh came before the replacement's timer
	case l.cur != nil:
		reason = "expired" // it ended before it could be renewed or replaced
	}
	if l.cur == nil && s.state != nil && !l.adopt {
		adopted, err := s.adoptOnce(ctx, l, now)
		switch {
		case err != nil:
			return nil, err
		case adopted:
			return l.data(), nil
		}
	}
	if l.cur == nil && l.restart {
		reason = "restart" // a recorded lease that could not be adopted
	}
	if err := s.mint(ctx, l, now, reason); err != nil {
		return nil, err
	}
	return l.data(), nil
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

// static reports whether the request is known to be a static role's
// read: a GET answered without a lease or a certificate.
func (l *lease) static() bool {
	return l.cur != nil && l.cur.ID == "" && !l.cert && l.req.Method == http.MethodGet
}

func (l *lease) data() *source.Data {
	d := &source.Data{Values: l.cur.Data, NextAction: l.next, NextAt: l.nextAt}
	if l.cur.ID != "" || l.cert {
		// A certificate without a lease: its own life is the lease's.
		d.Lease = &source.Lease{Expires: l.end, TTL: l.ttl, Renewable: l.cur.ID != "" && l.cur.Renewable && !l.final}
	}
	return d
}

// mint sends the request for a new lease (the caller holds l.mu), within
// the cap on replacements, and plans what comes next.
func (s *Source) mint(ctx context.Context, l *lease, now time.Time, reason string) error {
	// The cap counts replacements and failed requests that may have minted
	// (a lost answer is a credential too); the first mint is free.
	if len(l.mints) > 0 {
		period := time.Minute
		if l.cur != nil {
			period = max(l.ttl, time.Minute)
			if l.end.After(l.issued) {
				period = max(l.end.Sub(l.issued), time.Minute)
			}
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
			for n := range l.secrets {
				s.rec.LeaseCapReached(n)
			}
			return fmt.Errorf("%s %s: %w (%d new leases within %s)", l.req.Method, l.req.Path, ErrCapReached, recent, period)
		}
	}
	req, keyPEM, keyType := l.req, "", ""
	if l.genKey {
		var err error
		if req.Parameters, keyPEM, keyType, err = csrRequest(l.req.Parameters); err != nil {
			return fmt.Errorf("%s %s: %w", l.req.Method, l.req.Path, err)
		}
	}
	resp, err := s.c.Request(ctx, req)
	if err != nil {
		if vault.MayHaveExecuted(err) && !l.static() {
			l.mints = append(l.mints, now)
		}
		return err
	}
	if keyPEM != "" {
		// The key made here joins the response, as pki/issue would send it.
		resp.Data = maps.Clone(resp.Data)
		resp.Data["private_key"], resp.Data["private_key_type"] = keyPEM, keyType
	}
	if l.cur != nil && (l.cur.ID != "" || l.cert) {
		l.mints = append(l.mints, now)
		if len(l.mints) > 64 {
			l.mints = l.mints[len(l.mints)-64:]
		}
	}
	l.cur, l.issued, l.granted, l.ttl, l.final, l.fails, l.due = resp, resp.Received, resp.Received, resp.Duration, !resp.Renewable, 0, time.Time{}
	l.fresh = true
	l.end, l.dueWhy = time.Time{}, ""
	if resp.Duration > 0 {
		l.end = resp.Received.Add(resp.Duration)
	}
	l.certClock(resp.Received)
	s.exportExpiry(l)
	s.record(l)
	if resp.ID == "" && l.req.Method == http.MethodGet {
		// A static role's read (again at each refresh) issues nothing.
		s.log.Debug("static credential read", zap.String("lease_path", l.req.Path), zap.Strings("secrets", l.names()))
	} else {
		s.rec.LeaseIssued(reason)
		s.log.Info("lease minted", zap.String("lease_path", l.req.Path), zap.String("reason", reason),
			zap.Duration("ttl", resp.Duration), zap.Bool("renewable", resp.Renewable), zap.Bool("lease", resp.ID != ""),
			zap.Strings("secrets", l.names()))
	}
	s.plan(l, now)
	return nil
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
//
// A lease no secret of cfg asks for any more is dropped: its timers stop
// and it is left to expire (its record goes too).
func (s *Source) Apply(_ context.Context, cfg *config.Config) error {
	if !sameLeases(cfg.Leases, s.s.Leases) {
		return errors.New("the leases: block cannot change on a reload; restart the sidecar to apply it")
	}
	wanted := map[string]map[string]struct{}{}
	for i := range cfg.Secrets {
		if sec := &cfg.Secrets[i]; sec.Lease != nil {
			fp := sec.Lease.Fingerprint()
			if wanted[fp] == nil {
				wanted[fp] = map[string]struct{}{}
			}
			wanted[fp][sec.Name] = struct{}{}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for fp, l := range s.leases {
		names, keep := wanted[fp]
		l.mu.Lock()
		if keep {
			l.secrets = names
			l.mu.Unlock()
			continue
		}
		if l.timer != nil {
			l.timer.Stop()
		}
		l.cur = nil
		l.mu.Unlock()
		delete(s.leases, fp)
		if s.state != nil {
			if err := s.state.remove(fp); err != nil {
				s.log.Warn("lease record not removed", zap.String("lease_path", l.req.Path), zap.Error(err))
			}
		}
		s.log.Info("lease no longer configured: left to expire", zap.String("lease_path", l.req.Path))
	}
	return nil
}

func sameLeases(a, b config.Leases) bool {
	eqf := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	eqi := func(x, y *int) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.StateDir == b.StateDir && a.RevokeOnShutdown == b.RevokeOnShutdown && a.MinRemaining.Duration == b.MinRemaining.Duration &&
		eqf(a.RenewFraction, b.RenewFraction) && eqf(a.ReplaceFraction, b.ReplaceFraction) && eqi(a.MaxNewLeases, b.MaxNewLeases)
}
