package schedule_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/schedule"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestScheduleWindow: every timing derived from the interval stays in its
// window, and the random parts do vary.
func TestScheduleWindow(t *testing.T) {
	s := schedule.Every(100 * time.Second)
	if p := s.Period(); p != 90*time.Second {
		t.Fatalf("period %s, want 90s", p)
	}
	seen := map[time.Duration]bool{}
	for range 2000 {
		first := s.FirstRun()
		if first < 90*time.Second || first > 110*time.Second {
			t.Fatalf("first run after %s, outside 90s..110s", first)
		}
		tail := s.Tail(false)
		if tail < 0 || tail >= 20*time.Second {
			t.Fatalf("tail %s, outside [0, 20s)", tail)
		}
		spread := s.Tail(true)
		if spread < 0 || spread >= 100*time.Second {
			t.Fatalf("spread tail %s, outside [0, 100s)", spread)
		}
		seen[spread/(10*time.Second)] = true
	}
	if len(seen) < 10 {
		t.Fatalf("a spread tail covers %d of 10 tenths of the interval", len(seen))
	}
	if !s.TooSoon(49*time.Second) || s.TooSoon(50*time.Second) {
		t.Fatal("too-soon guard is not half the interval")
	}
	if b := s.Backoff(); b.Base != time.Second || b.Max != 100*time.Second {
		t.Fatalf("daemon backoff %+v", b)
	}
	if b := s.OnceBackoff(); b.Max != schedule.OnceRetryMax {
		t.Fatalf("once backoff %+v, want capped at %s", b, schedule.OnceRetryMax)
	}
	if b := schedule.Every(3 * time.Second).OnceBackoff(); b.Max != 3*time.Second {
		t.Fatalf("once backoff %+v, want capped at the interval", b)
	}
	if d := schedule.Every(0).Tail(false); d != 0 {
		t.Fatalf("tail of a zero interval %s", d)
	}
}

var errTransient = errors.New("transient")

// TestRetryBacksOffUntilSuccess: failed attempts wait out the backoff on
// the injected clock, and the loop stops at the first success.
func TestRetryBacksOffUntilSuccess(t *testing.T) {
	clock := clockwork.NewFakeClock()
	r := schedule.NewRetrier(clock, nil)
	calls := make(chan int, 10)
	n := 0
	done := make(chan struct{})
	var attempts int
	var err error
	go func() {
		defer close(done)
		attempts, err = r.Do(t.Context(), vault.Backoff{Base: time.Minute, Max: time.Minute},
			func(context.Context) error {
				n++
				calls <- n
				if n < 3 {
					return errTransient
				}
				return nil
			}, func(error) bool { return false })
	}()
	for want := 1; want <= 3; want++ {
		if got := <-calls; got != want {
			t.Fatalf("attempt %d, want %d", got, want)
		}
		if want < 3 {
			if err := clock.BlockUntilContext(t.Context(), 1); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Minute) // the longest the backoff can be
		}
	}
	<-done
	if err != nil || attempts != 3 {
		t.Fatalf("attempts %d, err %v", attempts, err)
	}
}

// TestRetryStops: a final error, and a context that ends during the
// backoff, end the loop with the last error.
func TestRetryStops(t *testing.T) {
	r := schedule.NewRetrier(clockwork.NewFakeClock(), nil)
	permanent := errors.New("permanent")
	attempts, err := r.Do(t.Context(), vault.Backoff{Base: time.Hour}, func(context.Context) error { return permanent },
		func(err error) bool { return errors.Is(err, permanent) })
	if attempts != 1 || !errors.Is(err, permanent) {
		t.Fatalf("final: attempts %d, err %v", attempts, err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	attempts, err = r.Do(ctx, vault.Backoff{Base: time.Hour}, func(context.Context) error {
		cancel()
		return errTransient
	}, func(error) bool { return false })
	if attempts != 1 || !errors.Is(err, errTransient) {
		t.Fatalf("cancelled: attempts %d, err %v", attempts, err)
	}

	attempts, err = r.Do(ctx, vault.Backoff{}, func(context.Context) error { return nil }, func(error) bool { return false })
	if attempts != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("ended before the first attempt: attempts %d, err %v", attempts, err)
	}
}

// recovery fires when its channel is closed.
type recovery chan struct{}

func (r recovery) Recovered() <-chan struct{} { return r }

// TestRetryEndsWhenVaultRecovers: an hour's backoff ends the moment the
// recovery signal fires, without the clock moving.
func TestRetryEndsWhenVaultRecovers(t *testing.T) {
	clock := clockwork.NewFakeClock()
	rec := make(recovery)
	r := schedule.NewRetrier(clock, rec)
	n := 0
	go func() {
		_ = clock.BlockUntilContext(t.Context(), 1) // the first backoff's timer
		close(rec)
	}()
	attempts, err := r.Do(t.Context(), vault.Backoff{Base: time.Hour, Max: time.Hour}, func(context.Context) error {
		n++
		if n == 1 {
			return errors.New("vault read: circuit breaker is open")
		}
		return nil
	}, func(error) bool { return false })
	if err != nil || attempts != 2 {
		t.Fatalf("attempts %d, err %v", attempts, err)
	}
}

// TestRetryAfterRejectedLogin: no backoff retries after a rejected login
// (they would only meet the held-back login): the wait ends when the
// credential file changes, long before the retry time.
func TestRetryAfterRejectedLogin(t *testing.T) {
	srv := vaulttest.Shared(t)
	mount := "gate" + filepath.Base(t.TempDir())
	roleID, secretID := srv.AppRole(t, mount, "app", map[string]any{"token_ttl": "1h"})
	dir := t.TempDir()
	write := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := vault.NewClient(vault.Settings{
		Vault: config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthAppRole, AppRole: config.AppRole{
			Mount: mount, RoleIDFile: write("role", roleID), SecretIDFile: write("sid", "wrong"),
		}}},
		LookupEnv: func(string) (string, bool) { return "", false },
	}, vault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	read := func(ctx context.Context) error {
		_, err := c.Read(ctx, vault.ReadRequest{Mount: "secret", Path: "x", KVVersion: config.KV2})
		return err
	}
	clock := clockwork.NewFakeClock()
	r := schedule.NewRetrier(clock, nil)
	reads := 0
	done := make(chan error, 1)
	go func() {
		_, err := r.Do(t.Context(), vault.Backoff{Base: time.Millisecond}, func(ctx context.Context) error {
			reads++
			err := read(ctx)
			if reads == 1 && !vault.IsLoginRejected(err) {
				return errors.Join(errors.New("first read was not a rejected login"), err)
			}
			return err
		}, func(err error) bool { return !vault.IsLoginRejected(err) })
		done <- err
	}()
	// The wait holds a timer (the retry time) and a ticker (the poll).
	if err := clock.BlockUntilContext(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("the retry did not wait for new credentials: %v", err)
	default:
	}
	write("sid", secretID)
	for {
		clock.Advance(time.Second) // polls; far from the retry time
		select {
		case err := <-done:
			// The login went through (the role may not read the secret).
			if reads != 2 || vault.IsLoginRejected(err) {
				t.Fatalf("after new credentials: reads %d, err %v", reads, err)
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}
