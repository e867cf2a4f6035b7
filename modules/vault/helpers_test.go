package vault

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging/logtest"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

func TestMain(m *testing.M) { os.Exit(vaulttest.Main(m)) }

// newLogger is the production logger at debug level, writing to a buffer.
func newLogger(t *testing.T) (*zap.Logger, *logtest.Buffer) { return logtest.New(t) }

// env is a LookupEnv over fixed pairs.
func env(pairs ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// newClient builds a client and stops it when the test ends.
func newClient(t *testing.T, s Settings, o Options) *Client {
	t.Helper()
	if s.LookupEnv == nil {
		s.LookupEnv = env()
	}
	c, err := NewClient(s, o)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

// tokenClient is a token-method client for srv with the given token.
func tokenClient(t *testing.T, srv *vaulttest.Server, token string) *Client {
	t.Helper()
	return newClient(t, Settings{
		Vault:     config.Vault{Address: srv.Addr, Auth: config.Auth{Method: config.AuthToken}},
		LookupEnv: env(envToken, token),
	}, Options{})
}

var nameSeq atomic.Int64

// uniq is a name no other test on the shared server uses.
func uniq(t *testing.T) string {
	t.Helper()
	base := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	return fmt.Sprintf("%s-%d", strings.Trim(base, "-"), nameSeq.Add(1))
}

// writeFile writes a credential file and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// readPolicy lets a token read (and the CLI-style preflight see) path
// under the KV v2 mount secret and the KV v1 mount kv.
func readPolicy(paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "path %q { capabilities = [\"read\"] }\n", p)
	}
	return b.String()
}

// eventually polls cond until it holds or the bound passes.
func eventually(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stateRecorder records breaker states.
type stateRecorder struct {
	mu     sync.Mutex
	states []int
}

func (r *stateRecorder) BreakerState(s breaker.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, int(s))
}

func (r *stateRecorder) seen() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.states...)
}

// expiryRecorder records token expiries and login results.
type expiryRecorder struct {
	mu     sync.Mutex
	times  []time.Time
	logins map[string]int // "method result"
}

func (r *expiryRecorder) LoginDone(method string, result LoginResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logins == nil {
		r.logins = map[string]int{}
	}
	r.logins[method+" "+string(result)]++
}

func (r *expiryRecorder) loginCounts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.logins)
}

func (r *expiryRecorder) TokenExpiry(t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.times = append(r.times, t)
}

func (r *expiryRecorder) seen() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.times...)
}

// currentToken is the token the client sends now (white box, for leak
// checks only).
func (c *Client) currentToken() string { return c.cur.Load().state().token.Reveal() }
