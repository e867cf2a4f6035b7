package lease_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/source"
	"github.com/secrets-sidecar/secrets-sidecar/jobs/source/lease"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
	"github.com/secrets-sidecar/secrets-sidecar/modules/metrics"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
)

// fakeVault is the lease calls as a database secrets engine answers them,
// on the test's clock: each request mints a lease of ttl (renewable up to
// maxTTL from its mint), and the test can make renewals fail.
type fakeVault struct {
	clock  *clockwork.FakeClock
	ttl    time.Duration
	maxTTL time.Duration

	mu        sync.Mutex
	minted    int
	renewals  int
	revoked   []logging.Redacted
	renewErr  error
	mintErr   error
	born      map[logging.Redacted]time.Time
	token     vault.TokenLife
	calls     chan string
	renewable bool
	mintedAt  []time.Time // on the fake clock, as each request came
	renewedAt []time.Time
	cert      time.Duration  // > 0: answer like PKI without generate_lease, a certificate of this life and no lease
	certLease bool           // with cert: and a non-renewable lease of its life (generate_lease)
	sent      map[string]any // the last request's parameters
}

func newFakeVault(clock *clockwork.FakeClock, ttl, maxTTL time.Duration) *fakeVault {
	return &fakeVault{clock: clock, ttl: ttl, maxTTL: maxTTL, born: map[logging.Redacted]time.Time{},
		calls: make(chan string, 100), renewable: true, token: vault.TokenLife{Gen: 1}}
}

func (f *fakeVault) Request(_ context.Context, req vault.LeaseRequest) (*vault.Leased, error) {
	f.mu.Lock()
	defer func() { f.mu.Unlock(); f.calls <- "request" }()
	if f.mintErr != nil {
		return nil, f.mintErr
	}
	f.minted++
	f.mintedAt = append(f.mintedAt, f.clock.Now())
	f.sent = req.Parameters
	id := logging.Redacted(fmt.Sprintf("%s/lease-%d", req.Path, f.minted))
	f.born[id] = f.clock.Now()
	if f.cert > 0 {
		l := &vault.Leased{Data: map[string]any{"certificate": testCert(f.clock.Now(), f.cert, f.minted)},
			Received: f.clock.Now(), Token: f.token}
		if f.certLease { // PKI with generate_lease: a lease of the certificate's life, never renewable
			l.ID, l.Duration = id, f.cert
		}
		return l, nil
	}
	return &vault.Leased{
		Data: map[string]any{"username": fmt.Sprintf("user-%d", f.minted), "password": fmt.Sprintf("pw-%d", f.minted)},
		ID:   id, Duration: f.ttl, Renewable: f.renewable, Received: f.clock.Now(), Token: f.token,
	}, nil
}

func (f *fakeVault) Renew(_ context.Context, id logging.Redacted, increment time.Duration) (time.Duration, bool, error) {
	f.mu.Lock()
	defer func() { f.mu.Unlock(); f.calls <- "renew" }()
	f.renewals++
	f.renewedAt = append(f.renewedAt, f.clock.Now())
	if f.renewErr != nil {
		return 0, false, f.renewErr
	}
	left := f.born[id].Add(f.maxTTL).Sub(f.clock.Now())
	return min(increment, left), true, nil
}

func (f *fakeVault) Revoke(_ context.Context, id logging.Redacted) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, id)
	return nil
}

func (f *fakeVault) RevokeSelf(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked = append(f.revoked, "token")
	return nil
}

func (f *fakeVault) TokenLife() vault.TokenLife {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.token
}

func (f *fakeVault) counts() (minted, renewals int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.minted, f.renewals
}

// wakes records the secrets the source woke.
type wakes struct {
	mu    sync.Mutex
	names []string
}

func (w *wakes) Wake(name string) {
	w.mu.Lock()
	w.names = append(w.names, name)
	w.mu.Unlock()
}

func (w *wakes) taken() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(w.names)
	slices.Sort(out)
	w.names = nil
	return out
}

func newSource(t *testing.T, c lease.Client, st lease.Settings, o lease.Options) *lease.Source {
	t.Helper()
	s, err := lease.New(c, st, o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fakeVault) Lookup(_ context.Context, id logging.Redacted) (time.Duration, bool, error) {
	f.mu.Lock()
	defer func() { f.mu.Unlock(); f.calls <- "lookup" }()
	born, ok := f.born[id]
	if !ok || slices.Contains(f.revoked, id) {
		return 0, false, fmt.Errorf("%w: invalid lease", vault.ErrLeaseGone)
	}
	left := born.Add(min(f.ttl, f.maxTTL)).Sub(f.clock.Now())
	if left <= 0 {
		return 0, false, fmt.Errorf("%w: invalid lease", vault.ErrLeaseGone)
	}
	return left, f.renewable, nil
}

func leased(name, path string) *config.Secret {
	return &config.Secret{Name: name, Lease: &config.Lease{Path: path, Method: http.MethodGet,
		RenewFraction: new(2.0 / 3.0), ReplaceFraction: new(0.9)}}
}

func settings(maxNew int) lease.Settings {
	return lease.Settings{Leases: config.Leases{RevokeOnShutdown: config.RevokeLease, MaxNewLeases: &maxNew}, Handover: 2 * time.Second}
}

func fetch(t *testing.T, s *lease.Source, sec *config.Secret) *source.Data {
	t.Helper()
	d, err := s.Fetch(t.Context(), sec, source.Live)
	if err != nil {
		t.Fatalf("fetch %s: %v", sec.Name, err)
	}
	return d
}

// next waits for the fake Vault's next call and says which it was.
func next(t *testing.T, f *fakeVault) string {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(time.Minute):
		t.Fatal("no Vault call within a minute of real time")
		return ""
	}
}

// Two secrets with the same request share one lease, and fetching again
// while it is valid mints nothing: a username and a password never come
// from two leases.
func TestSecretsShareOneLease(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, time.Hour, 10*time.Hour)
	s := newSource(t, f, settings(3), lease.Options{Clock: clock})
	user, pass := leased("db-user", "database/creds/app"), leased("db-pass", "database/creds/app")
	a, b := fetch(t, s, user), fetch(t, s, pass)
	next(t, f)
	for range 5 {
		fetch(t, s, user)
	}
	if minted, _ := f.counts(); minted != 1 || a.Values["username"] != b.Values["username"] {
		t.Fatalf("%d leases minted, users %v and %v; want one lease for both", minted, a.Values["username"], b.Values["username"])
	}
	other := leased("other", "database/creds/other")
	if fetch(t, s, other); func() int { m, _ := f.counts(); return m }() != 2 {
		t.Error("another request did not get its own lease")
	}
}

// A renewable lease is renewed at about 2/3 of its TTL, never at once;
// when its max TTL truncates a renewal it is replaced at about 0.9 of its
// whole life, before it ends, and the secrets that share it are woken to
// write the new credential.
func TestRenewThenReplaceBeforeMaxTTL(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, time.Minute, 3*time.Minute)
	w := &wakes{}
	s := newSource(t, f, settings(3), lease.Options{Clock: clock, Wake: w})
	user, pass := leased("db-user", "database/creds/app"), leased("db-pass", "database/creds/app")
	first := fetch(t, s, user)
	fetch(t, s, pass)
	next(t, f)
	start := clock.Now()
	// The first renewal after a mint comes anywhere up to 2/3 of the TTL
	// (leases minted together spread at once); later ones at 2/3 +-10%.
	if in := first.NextAt.Sub(start); first.NextAction != "renew" || in < time.Second || in > 40*time.Second {
		t.Errorf("next action %q in %s, want a renewal within 40s (for the status file)", first.NextAction, in)
	}
	for minted, _ := f.counts(); minted < 2; minted, _ = f.counts() {
		if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if clock.Since(start) > 4*time.Minute {
			t.Fatal("no replacement within 4 minutes")
		}
		if len(f.calls) > 0 && <-f.calls == "request" {
			break
		}
	}
	for len(f.calls) > 0 {
		<-f.calls
	}
	f.mu.Lock()
	renewals, mints := slices.Clone(f.renewedAt), slices.Clone(f.mintedAt)
	f.mu.Unlock()
	if len(mints) != 2 || len(renewals) == 0 {
		t.Fatalf("mints at %v, renewals at %v", mints, renewals)
	}
	// Times on the fake clock, as Vault saw each call.
	if first := renewals[0].Sub(start); first < time.Second || first > 40*time.Second {
		t.Errorf("first renewal %s after the mint: want within 2/3 of 60s", first)
	}
	if len(renewals) < 2 {
		t.Fatalf("renewals at %v, want at least two before the replacement", renewals)
	}
	if gap := renewals[1].Sub(renewals[0]); gap < 36*time.Second || gap > 44*time.Second {
		t.Errorf("second renewal %s after the first: want 2/3 of 60s (+-10%%)", gap)
	}
	// The whole life is 3m from the mint: 0.9 of it is 162s (+-10%), and
	// never later than 3m - (2s handover + 5s margin).
	if took := mints[1].Sub(start); took < 145*time.Second || took > 173*time.Second {
		t.Errorf("replaced %s after the mint, want about 162s and no later than 173s", took)
	}
	if got := w.taken(); !slices.Equal(got, []string{"db-pass", "db-user"}) {
		t.Errorf("woken: %v, want both secrets of the lease", got)
	}
	d := fetch(t, s, user)
	if d.Values["username"] == first.Values["username"] {
		t.Error("after the replacement the secret still gets the old credential")
	}
	if d.NextAction != "renew" || !d.NextAt.After(clock.Now()) {
		t.Errorf("after the replacement: next action %q at %s, want the new lease's renewal", d.NextAction, d.NextAt)
	}
	if minted, _ := f.counts(); minted != 2 {
		t.Errorf("%d leases minted, want 2", minted)
	}
}

// Renewal errors back off (doubling, never spinning) and never mint while
// the lease is valid; close enough to its end, it is replaced.
func TestRenewalErrorsBackOff(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, time.Hour, 100*time.Hour)
	f.renewErr = errors.New("vault: 500 internal error")
	s := newSource(t, f, settings(3), lease.Options{Clock: clock})
	fetch(t, s, leased("db", "database/creds/app"))
	next(t, f)
	start := clock.Now()
	for clock.Since(start) < 58*time.Minute {
		if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(10 * time.Second)
		select {
		case c := <-f.calls:
			if c == "request" {
				t.Fatalf("a new lease was minted %s after the mint, while the old one was valid", clock.Since(start))
			}
		default:
		}
	}
	minted, renewals := f.counts()
	// From 40 minutes on, backing off from 1s to half the remaining life:
	// about a dozen tries, not thousands.
	if renewals < 5 || renewals > 30 || minted != 1 {
		t.Errorf("%d renewal attempts and %d mints in 58 minutes; want a bounded back-off and no new lease", renewals, minted)
	}
	t.Logf("%d renewal attempts in the 18 minutes after the first renewal was due", renewals)
}

// A lease revoked behind the sidecar's back is replaced at once.
func TestRevokedLeaseReplacedAtOnce(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, time.Hour, 100*time.Hour)
	s := newSource(t, f, settings(3), lease.Options{Clock: clock})
	fetch(t, s, leased("db", "database/creds/app"))
	next(t, f)
	f.mu.Lock()
	f.renewErr = fmt.Errorf("%w: lease not found", vault.ErrLeaseGone)
	f.mu.Unlock()
	if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(45 * time.Minute)
	if c := next(t, f); c != "renew" {
		t.Fatalf("first call %q, want the renewal", c)
	}
	if c := next(t, f); c != "request" {
		t.Fatalf("after 'lease not found': %q, want a new lease at once", c)
	}
}

// A lease that must be replaced more often than its period allows (a
// few seconds' TTL, never renewable: what a broken renew statement looks
// like) hits the new-lease cap: a bounded number of new credentials per
// lease period, not a loop.
func TestNewLeaseCap(t *testing.T) {
	minted := func(maxNew int) int {
		clock := clockwork.NewFakeClock()
		f := newFakeVault(clock, 20*time.Second, 20*time.Second)
		f.renewable = false
		st := settings(maxNew)
		st.Handover = 12 * time.Second // replacements due every ~3s (20s - 12s - 5s)
		rec := &capCounter{}
		s := newSource(t, f, st, lease.Options{Clock: clock, Recorder: rec})
		fetch(t, s, leased("db", "database/creds/app"))
		start := clock.Now()
		for clock.Since(start) < 10*time.Minute {
			if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Second)
			for len(f.calls) > 0 {
				<-f.calls
			}
		}
		n, _ := f.counts()
		if hits := rec.hits.Load(); maxNew < 10 && hits == 0 {
			t.Errorf("cap %d: %d leases minted and the cap metric never counted a refusal", maxNew, n)
		}
		return n
	}
	uncapped, capped := minted(1000), minted(2)
	// Uncapped: one every ~3s, about 200. Capped: at most 2 per 20s, and
	// a refusal waits at least a minute: about 15.
	if capped > 10*60/20*2+1 || capped*5 > uncapped {
		t.Fatalf("%d leases minted in 10 minutes with the cap at 2, %d without", capped, uncapped)
	}
	t.Logf("in 10 minutes: %d leases with max_new_leases 2, %d without a cap", capped, uncapped)
}

// capCounter is a Recorder that counts the cap's refusals.
type capCounter struct {
	metrics.Discard
	hits atomic.Int64
}

func (c *capCounter) LeaseCapReached(string) { c.hits.Add(1) }

// Sizing: one hour of a database role with default_ttl 60s and max_ttl
// 10m, on the fake clock. A lease is renewed about every 40s (2/3 of its
// TTL) and replaced at about 0.9 of its 10 minutes: about 7 leases and 90
// renewals an hour. The README's sizing paragraph quotes this test.
func TestRequestsPerLeasePerHour(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, time.Minute, 10*time.Minute)
	s := newSource(t, f, settings(3), lease.Options{Clock: clock})
	fetch(t, s, leased("db", "database/creds/app"))
	next(t, f)
	start := clock.Now()
	for clock.Since(start) < time.Hour {
		if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		for len(f.calls) > 0 {
			<-f.calls
		}
	}
	minted, renewals := f.counts()
	// 3600s / ~540s a lease: the first and 6 or 7 replacements; 13 or 14
	// renewals each (40s apart until the 10-minute cap truncates one).
	if minted < 6 || minted > 9 || renewals < 60 || renewals > 110 {
		t.Errorf("in one hour: %d leases minted and %d renewals; want about 7 and 90", minted, renewals)
	}
	t.Logf("default_ttl 60s, max_ttl 10m, one hour: %d leases minted, %d renewals, %d requests", minted, renewals, minted+renewals)
}

// A dry run never mints: it answers from the current lease or says it
// would mint.
func TestPeekNeverMints(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, time.Hour, 10*time.Hour)
	s := newSource(t, f, settings(3), lease.Options{Clock: clock})
	sec := leased("db", "database/creds/app")
	if _, err := s.Fetch(t.Context(), sec, source.Peek); !errors.Is(err, source.ErrWouldChange) {
		t.Fatalf("peek with no lease: %v, want ErrWouldChange", err)
	}
	post := leased("cert", "pki/issue/web")
	post.Lease.Method = http.MethodPost
	if _, err := s.Fetch(t.Context(), post, source.Peek); !errors.Is(err, source.ErrWouldChange) || !strings.Contains(err.Error(), "would mint") {
		t.Fatalf("peek of a POST: %v", err)
	}
	if minted, _ := f.counts(); minted != 0 {
		t.Fatalf("a dry run minted %d leases", minted)
	}
	live := fetch(t, s, sec)
	next(t, f)
	d, err := s.Fetch(t.Context(), sec, source.Peek)
	if err != nil || d.Values["username"] != live.Values["username"] {
		t.Fatalf("peek with a lease: %v, %v", d, err)
	}
}

// A lease made under a token that a new login replaced is replaced under
// the new token before the old token's expiry: it would die with it.
func TestReplacedBeforeItsTokenEnds(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, 24*time.Hour, 100*time.Hour)
	f.token = vault.TokenLife{Gen: 1, Expiry: clock.Now().Add(time.Hour), Final: true}
	s := newSource(t, f, settings(3), lease.Options{Clock: clock})
	fetch(t, s, leased("db", "database/creds/app"))
	next(t, f)
	f.mu.Lock()
	f.token = vault.TokenLife{Gen: 2, Expiry: clock.Now().Add(48 * time.Hour)}
	f.mu.Unlock()
	start := clock.Now()
	if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if c := next(t, f); c != "request" {
		t.Fatalf("%q, want a new lease", c)
	}
	if took := clock.Since(start); took > time.Hour {
		t.Fatalf("replaced %s after the mint, after the token's end", took)
	}
}

// Stop revokes the current leases when revoke_on_shutdown is lease, and
// nothing with NoRevoke (once).
func TestRevokeOnShutdown(t *testing.T) {
	for _, noRevoke := range []bool{false, true} {
		clock := clockwork.NewFakeClock()
		f := newFakeVault(clock, time.Hour, 10*time.Hour)
		st := settings(3)
		st.NoRevoke = noRevoke
		s := newSource(t, f, st, lease.Options{Clock: clock})
		fetch(t, s, leased("db", "database/creds/app"))
		if err := s.Stop(t.Context()); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		n := len(f.revoked)
		f.mu.Unlock()
		if want := map[bool]int{false: 1, true: 0}[noRevoke]; n != want {
			t.Errorf("NoRevoke %v: %d revoked, want %d", noRevoke, n, want)
		}
	}
}

// A restarted sidecar (or the daemon after a once init container) with the
// same state_dir adopts the recorded lease, checked with a lookup, instead
// of minting; the record is written before the data is handed out, is
// owner-only and holds no token; a lease Vault no longer knows is replaced
// (reason restart); a second process cannot use the directory at once.
func TestStateDirAdoption(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, time.Hour, 10*time.Hour)
	f.token = vault.TokenLife{Gen: 7, Expiry: clock.Now().Add(2 * time.Hour), Final: true}
	dir := filepath.Join(t.TempDir(), "state")
	st := settings(3)
	st.Leases.StateDir = dir
	st.NoRevoke = true // once
	first := newSource(t, f, st, lease.Options{Clock: clock})
	sec := leased("db", "database/creds/app")
	got := fetch(t, first, sec)
	next(t, f)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 2 && len(entries) != 1 {
		t.Fatalf("state dir after the mint: %v, %v", entries, err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	var rec string
	for _, e := range entries {
		info, _ := e.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		rec += string(b)
	}
	if !strings.Contains(rec, `"pw-1"`) || !strings.Contains(rec, "token_expiry") || strings.Contains(rec, "hvs.") {
		t.Errorf("the record: %s", rec)
	}
	// While the first holds it, a second process cannot use it.
	if _, err := lease.New(f, st, lease.Options{Clock: clock}); !errors.Is(err, lease.ErrStateDir) {
		t.Errorf("a second source on a locked state_dir: %v", err)
	}
	if err := first.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	// The daemon starts 10 minutes later under a new token.
	clock.Advance(10 * time.Minute)
	f.mu.Lock()
	f.token = vault.TokenLife{Gen: 1, Expiry: clock.Now().Add(24 * time.Hour)}
	f.mu.Unlock()
	st.NoRevoke = false
	second := newSource(t, f, st, lease.Options{Clock: clock})
	again := fetch(t, second, sec)
	if c := next(t, f); c != "lookup" {
		t.Fatalf("the restart's first call: %q, want a lookup", c)
	}
	if minted, _ := f.counts(); minted != 1 || again.Values["username"] != got.Values["username"] {
		t.Fatalf("after the restart: %d leases minted, user %v (was %v); want the recorded lease", minted, again.Values["username"], got.Values["username"])
	}
	// The adopted lease lives under once's token, which ends 2h after the
	// mint: it is replaced under the new token before then.
	start := clock.Now()
	for clock.Since(start) < 2*time.Hour {
		if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		if len(f.calls) > 0 {
			if c := <-f.calls; c == "request" {
				break
			}
		}
	}
	f.mu.Lock()
	mints := slices.Clone(f.mintedAt)
	f.mu.Unlock()
	onceTokenEnd := start.Add(110 * time.Minute) // 2h after the mint, which was 10 min before start
	if len(mints) != 2 || !mints[1].Before(onceTokenEnd.Add(-7*time.Second)) {
		t.Fatalf("mints at %v; want a replacement before once's token ends at %v (less the handover)", mints, onceTokenEnd)
	}
	if err := second.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	// revoke_on_shutdown: lease revoked it and removed its record: the next
	// start mints at once.
	st.NoRevoke = true
	third := newSource(t, f, st, lease.Options{Clock: clock})
	fetch(t, third, sec)
	if c := next(t, f); c != "request" {
		t.Fatalf("%q after a revoking shutdown, want a new lease at once", c)
	}
	if err := third.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Revoked behind the sidecar's back while it was down: looked up, then
	// replaced.
	f.mu.Lock()
	for id := range f.born {
		f.revoked = append(f.revoked, id)
	}
	f.mu.Unlock()
	fourth := newSource(t, f, st, lease.Options{Clock: clock})
	fetch(t, fourth, sec)
	if c := next(t, f); c != "lookup" {
		t.Fatalf("%q, want the lookup first", c)
	}
	if c := next(t, f); c != "request" {
		t.Fatalf("%q, want a new lease for a recorded one Vault no longer knows", c)
	}
}

// A state_dir that others may read, or that another user owns, is refused
// with the path in the error.
func TestStateDirMustBePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	st := settings(3)
	st.Leases.StateDir = dir
	_, err := lease.New(newFakeVault(clockwork.NewFakeClock(), time.Hour, time.Hour), st, lease.Options{})
	if !errors.Is(err, lease.ErrStateDir) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "0750") {
		t.Fatalf("a 0750 state_dir: %v", err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	st.Leases.StateDir = link
	if _, err := lease.New(newFakeVault(clockwork.NewFakeClock(), time.Hour, time.Hour), st, lease.Options{}); !errors.Is(err, lease.ErrStateDir) {
		t.Fatalf("a state_dir that is a link: %v", err)
	}
}

// A reload that drops the last secret of a request stops renewing its
// lease; one that keeps it changes nothing; a changed leases: block is
// refused.
func TestReloadDropsUnusedLeases(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, time.Hour, 10*time.Hour)
	st := settings(3)
	s := newSource(t, f, st, lease.Options{Clock: clock})
	keep, drop := leased("keep", "database/creds/a"), leased("drop", "database/creds/b")
	fetch(t, s, keep)
	fetch(t, s, drop)
	next(t, f)
	next(t, f)
	cfg := &config.Config{Leases: st.Leases, Secrets: []config.Secret{*keep}}
	if err := s.Apply(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	// Two hours on: only the kept lease is renewed (every ~40 minutes).
	for range 120 {
		if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		for len(f.calls) > 0 {
			<-f.calls
		}
	}
	f.mu.Lock()
	renewals := len(f.renewedAt)
	f.mu.Unlock()
	if renewals < 2 || renewals > 4 {
		t.Errorf("%d renewals in 2h with one hour-long lease left, want about 3", renewals)
	}
	changed := *cfg
	changed.Leases.RevokeOnShutdown = config.RevokeNone
	if err := s.Apply(t.Context(), &changed); err == nil {
		t.Error("a reload that changes the leases: block was accepted")
	}
}

// A record that is not JSON (a truncated write, a co-tenant's junk) means
// a new lease, and the log names the file and the byte, never the
// content.
func TestCorruptRecordLogsNoContent(t *testing.T) {
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, time.Hour, 10*time.Hour)
	dir := filepath.Join(t.TempDir(), "state")
	st := settings(3)
	st.Leases.StateDir = dir
	st.NoRevoke = true
	sec := leased("db", "database/creds/app")
	first := newSource(t, f, st, lease.Options{Clock: clock})
	fetch(t, first, sec)
	next(t, f)
	if err := first.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("%v %v", entries, err)
	}
	if err := os.WriteFile(filepath.Join(dir, entries[0].Name()), []byte(`{"data": Zsecretcharacters`), 0o600); err != nil {
		t.Fatal(err)
	}
	log, logs := logtest.New(t)
	second := newSource(t, f, st, lease.Options{Clock: clock, Log: log})
	fetch(t, second, sec)
	if c := next(t, f); c != "request" {
		t.Fatalf("%q, want a new lease", c)
	}
	if out := logs.String(); strings.Contains(out, "Z") && strings.Contains(out, "'Z'") || !strings.Contains(out, "malformed JSON at byte") {
		t.Errorf("the log: %s", out)
	}
}

// 1,000 leases minted at the same moment (a fleet's start) spread their
// first renewals over one renewal period (2/3 of a 60 s TTL): the busiest
// second holds about what the same number spread uniformly over that
// period would (the ratio is logged; the benchmark target is 1.2), and so
// do the renewals of the ten steady minutes after it, with max_ttl and the
// token far away, in which nothing new is minted: every lease is renewed
// in place.
func TestThousandLeasesSpreadTheirRenewals(t *testing.T) {
	const n = 1000
	clock := clockwork.NewFakeClock()
	f := newFakeVault(clock, time.Minute, time.Hour)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-f.calls:
			case <-stop:
				return
			}
		}
	}()
	s := newSource(t, f, settings(3), lease.Options{Clock: clock})
	t0 := clock.Now()
	firsts := make([]time.Duration, n)
	for i := range n {
		d := fetch(t, s, leased(fmt.Sprintf("db%04d", i), fmt.Sprintf("database/creds/r%04d", i)))
		if d.NextAction != "renew" {
			t.Fatalf("lease %d: next %q", i, d.NextAction)
		}
		firsts[i] = d.NextAt.Sub(t0)
	}
	lo, hi := slices.Min(firsts), slices.Max(firsts)
	worst := maxPerSecond(firsts)
	rng := rand.New(rand.NewPCG(7, 7))
	draws := make([]int, 201)
	for k := range draws {
		sample := make([]time.Duration, n)
		for i := range sample {
			sample[i] = time.Duration(rng.Int64N(int64(40 * time.Second))) // one renewal period: the steady rate
		}
		draws[k] = maxPerSecond(sample)
	}
	// One spread's busiest second is itself a draw: compare it with the
	// median of uniform spreads' (the ratio reported) and fail only beyond
	// what 99% of them stay under.
	slices.Sort(draws)
	uniform, p99 := draws[len(draws)/2], draws[len(draws)*99/100]
	t.Logf("%d leases minted together: first renewals from %s to %s; busiest second %d, uniform random %d (ratio %.2f; 99%% of uniform spreads <= %d)",
		n, lo, hi, worst, uniform, float64(worst)/float64(uniform), p99)
	if float64(worst) > 1.1*float64(p99) {
		t.Errorf("busiest second %d renewals; 99%% of uniform spreads stay under %d", worst, p99)
	}
	if err := clock.BlockUntilContext(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	for clock.Since(t0) < 10*time.Minute {
		clock.Advance(time.Second)
		if err := clock.BlockUntilContext(t.Context(), n); err != nil { // every lease has its next timer again
			t.Fatal(err)
		}
	}
	minted, renewals := f.counts()
	t.Logf("ten steady minutes: %d leases minted in all, %d renewals", minted, renewals)
	// After the first full period (40 s), the renewals' busiest second
	// against the same number spread uniformly over the same window.
	f.mu.Lock()
	var steady []time.Duration
	for _, at := range f.renewedAt {
		if d := at.Sub(t0); d >= 40*time.Second && d < 10*time.Minute {
			steady = append(steady, d)
		}
	}
	f.mu.Unlock()
	for k := range draws {
		sample := make([]time.Duration, len(steady))
		for i := range sample {
			sample[i] = 40*time.Second + time.Duration(rng.Int64N(int64(560*time.Second)))
		}
		draws[k] = maxPerSecond(sample)
	}
	slices.Sort(draws)
	worst, uniform, p99 = maxPerSecond(steady), draws[len(draws)/2], draws[len(draws)*99/100]
	t.Logf("steady renewals from 40s to 10m: %d (%.1f/s); busiest second %d, uniform random %d (ratio %.2f; 99%% of uniform spreads <= %d)",
		len(steady), float64(len(steady))/560, worst, uniform, float64(worst)/float64(uniform), p99)
	if float64(worst) > 1.1*float64(p99) {
		t.Errorf("steady renewals: busiest second %d; 99%% of uniform spreads stay under %d", worst, p99)
	}
	if minted != n {
		t.Errorf("%d leases minted, want %d: a steady lease was replaced", minted, n)
	}
	if renewals < 12*n {
		t.Errorf("%d renewals in ten minutes, want about %d", renewals, 15*n)
	}
}

// maxPerSecond is the most of ds that fall in one whole second.
func maxPerSecond(ds []time.Duration) int {
	per := map[time.Duration]int{}
	best := 0
	for _, d := range ds {
		k := d.Truncate(time.Second)
		per[k]++
		best = max(best, per[k])
	}
	return best
}
