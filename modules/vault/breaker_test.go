package vault

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// faultServer plays Vault with a chosen fault; healthy answers a KV v2 read.
type faultServer struct {
	mu    sync.Mutex
	fault string // "", "500", "429", "timeout", "garbage", "403", "404"
	hits  atomic.Int64
	stop  chan struct{}
}

func (f *faultServer) set(fault string) {
	f.mu.Lock()
	f.fault = fault
	f.mu.Unlock()
}

func (f *faultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	f.mu.Lock()
	fault := f.fault
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch fault {
	case "500":
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"errors":["internal error"]}`))
	case "429":
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"errors":["rate limited"]}`))
	case "timeout":
		select { // longer than the client's timeout
		case <-r.Context().Done():
		case <-f.stop:
		case <-time.After(5 * time.Second):
		}
	case "garbage":
		_, _ = w.Write([]byte(`<html>this is not vault</html>`))
	case "403":
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"errors":["permission denied"]}`))
	case "404":
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"errors":[]}`))
	default:
		_, _ = w.Write([]byte(`{"data":{"data":{"password":"from-fault-server"},"metadata":{"version":1,"created_time":"2024-01-02T03:04:05Z"}}}`))
	}
}

func newFaultServer(t *testing.T) (*faultServer, string) {
	t.Helper()
	f := &faultServer{stop: make(chan struct{})}
	ts := httptest.NewServer(f)
	t.Cleanup(func() { close(f.stop); ts.Close() })
	return f, ts.URL
}

func TestBreakerOpensOnVaultFaults(t *testing.T) {
	const maxFailures = 3
	for _, fault := range []string{"500", "429", "timeout", "garbage"} {
		t.Run(fault, func(t *testing.T) {
			f, addr := newFaultServer(t)
			states := &stateRecorder{}
			log, logs := newLogger(t)
			b := breaker.NewBreaker(breaker.Settings{MaxFailures: maxFailures, OpenTimeout: time.Second, Interval: time.Minute}, log, states)
			c := newClient(t, Settings{
				Vault: config.Vault{Address: addr, Timeout: config.NewDuration(200 * time.Millisecond),
					Auth: config.Auth{Method: config.AuthToken}},
				LookupEnv: env("VAULT_TOKEN", "test-token"),
			}, Options{Logger: log, Breaker: b})
			req := ReadRequest{Mount: "secret", Path: "app", KVVersion: config.KV2}
			f.set(fault)
			for i := range maxFailures {
				_, err := c.Read(t.Context(), req)
				if err == nil || errors.Is(err, breaker.ErrOpen) {
					t.Fatalf("read %d: err = %v, want the fault", i, err)
				}
				if IsAuthError(err) {
					t.Fatalf("read %d: a %s fault is not an auth error: %v", i, fault, err)
				}
			}
			if got := b.State(); got != breaker.Open {
				t.Fatalf("after %d faults the breaker is %s, want open", maxFailures, got)
			}

			// Open: fails fast, without calling Vault.
			hits := f.hits.Load()
			start := time.Now()
			_, err := c.Read(t.Context(), req)
			if !errors.Is(err, breaker.ErrOpen) || IsAuthError(err) {
				t.Fatalf("err = %v, want breaker.ErrOpen and not an auth error", err)
			}
			if f.hits.Load() != hits || time.Since(start) > time.Second {
				t.Fatal("an open breaker still called Vault")
			}

			// After the open timeout, one trial call; Vault is back, so it closes.
			f.set("")
			eventually(t, 5*time.Second, "half-open", func() bool { return b.State() == breaker.HalfOpen })
			sec, err := c.Read(t.Context(), req)
			if err != nil || sec.Data["password"] != "from-fault-server" {
				t.Fatalf("trial read: %v", err)
			}
			if got := b.State(); got != breaker.Closed {
				t.Fatalf("after a good trial the breaker is %s", got)
			}
			if got, want := states.seen(), []int{0, 2, 1, 0}; !slices.Equal(got, want) {
				t.Fatalf("observer saw %v, want %v", got, want)
			}
			for _, want := range []string{`"from":"closed","to":"open"`, `"from":"open","to":"half-open"`, `"from":"half-open","to":"closed"`} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("state change %s not logged", want)
				}
			}
		})
	}
}

func TestBreakerIgnoresClientErrors(t *testing.T) {
	for _, fault := range []string{"403", "404"} {
		t.Run(fault, func(t *testing.T) {
			f, addr := newFaultServer(t)
			states := &stateRecorder{}
			b := breaker.NewBreaker(breaker.Settings{MaxFailures: 2, OpenTimeout: time.Minute, Interval: time.Minute}, nil, states)
			c := newClient(t, Settings{
				Vault:     config.Vault{Address: addr, Auth: config.Auth{Method: config.AuthToken}},
				LookupEnv: env("VAULT_TOKEN", "test-token"),
			}, Options{Breaker: b})
			f.set(fault)
			for range 10 {
				_, err := c.Read(t.Context(), ReadRequest{Mount: "secret", Path: "app", KVVersion: config.KV2})
				if err == nil || errors.Is(err, breaker.ErrOpen) {
					t.Fatalf("err = %v, want the %s answer", err, fault)
				}
			}
			if got := b.State(); got != breaker.Closed {
				t.Fatalf("%s answers opened the breaker (%s)", fault, got)
			}
			if got := states.seen(); !slices.Equal(got, []int{0}) {
				t.Fatalf("observer saw %v", got)
			}
		})
	}
}
