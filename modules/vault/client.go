// Package vault is the sidecar's only network client: it logs in to
// HashiCorp Vault or OpenBao (token, approle, kubernetes, jwt), keeps the
// token alive (renewal, re-login), and reads KV v1 and v2 secrets. Every
// call goes through the circuit breaker (but Probe, the breaker's own
// health check); retries are the caller's, with Backoff. Credentials Vault
// rejected are not sent again for minutes (see loginGate).
package vault

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// startCheckTimeout bounds Start's connection check.
const startCheckTimeout = 5 * time.Second

// tracerName is the instrumentation scope of the vault.* spans.
const tracerName = "github.com/secrets-sidecar/secrets-sidecar/modules/vault"

// Breaker guards every call to Vault; *breaker.Breaker implements it.
// done gets the call's outcome and, for a failure, its cause (no secrets).
// In fx, the breaker module runs the client's Probe while it is open.
type Breaker interface {
	Allow() (done func(o breaker.Outcome, cause string), err error)
}

// TokenObserver is told the token's expiry whenever it is learnt or
// changes (the zero time: the token does not expire), and the result of
// every login sent with a login method ("success", "error", or "rejected":
// Vault refused the credentials; a login the rejection gate holds back is
// not sent and not told). The metrics module implements it.
type TokenObserver interface {
	TokenExpiry(t time.Time)
	LoginDone(method string, result LoginResult)
}

// Settings are NewClient's plain values.
type Settings struct {
	// Vault is the config file's vault: block.
	Vault config.Vault
	// LookupEnv reads VAULT_TOKEN, VAULT_ROLE_ID and VAULT_SECRET_ID
	// (nil: config.LookupEnv, which serves what config.TakeCredentials
	// took out of the environment at start). The Vault library reads its own VAULT_*
	// variables from the process environment.
	LookupEnv func(string) (string, bool)
}

// Options are the client's collaborators; nil fields get harmless
// defaults (NewClient without fx). In fx, each is taken from the graph.
type Options struct {
	fx.In

	// Logger receives the client's logs (nil: none).
	Logger *zap.Logger
	// Breaker guards every call (nil: calls are not guarded).
	Breaker Breaker
	// TokenObserver is told the token's expiry.
	TokenObserver TokenObserver
	// TracerProvider traces logins, reads and HTTP calls.
	TracerProvider trace.TracerProvider
}

// Client reads secrets from Vault. It is safe for concurrent use; Update
// swaps its configuration atomically.
type Client struct {
	opts      Options
	lookupEnv func(string) (string, bool)
	log       *zap.Logger

	cur  atomic.Pointer[conn]
	gate *loginGate // rejected credentials, across vault: reloads

	mu      sync.Mutex // Start, Stop, Update
	started bool
	runCtx  context.Context // the renewers' lifetime, from Start to Stop
	stopRun context.CancelFunc
	running sync.WaitGroup // renewer goroutines
}

// NewClient builds a client for s.Vault without contacting Vault.
func NewClient(s Settings, opts Options) (*Client, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if s.LookupEnv == nil {
		s.LookupEnv = config.LookupEnv
	}
	c := &Client{opts: opts, lookupEnv: s.LookupEnv, log: opts.Logger, gate: newLoginGate()}
	cn, err := c.newConn(s.Vault)
	if err != nil {
		return nil, err
	}
	c.cur.Store(cn)
	return c, nil
}

// Read fetches one secret with exactly one attempt at the KV read. It logs
// in first when there is no valid token, and when Vault refuses a token
// that has gone stale it gets a fresh one and tries once more.
func (c *Client) Read(ctx context.Context, req ReadRequest) (*Secret, error) {
	return c.cur.Load().read(ctx, req)
}

// Start checks the connection (health, then login or token lookup; the
// result is logged, a failure never fails Start, and it is bounded by a
// few seconds) and starts keeping the token alive.
func (c *Client) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return nil
	}
	cn := c.cur.Load()
	checkCtx, cancel := context.WithTimeout(ctx, startCheckTimeout)
	cn.check(checkCtx)
	cancel()
	// Renewal runs until Stop, not until the start hook's context ends.
	c.runCtx, c.stopRun = context.WithCancel(context.WithoutCancel(ctx))
	c.started = true
	c.startRenewer(cn)
	return nil
}

func (c *Client) startRenewer(cn *conn) {
	ctx, cancel := context.WithCancel(c.runCtx)
	cn.stopRenewer = cancel
	c.running.Add(1)
	go func() {
		defer c.running.Done()
		cn.renewLoop(ctx)
	}()
}

// Stop stops keeping the token alive, waiting for the renewer at most
// until ctx ends, and closes the idle connections.
func (c *Client) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		c.cur.Load().apis.close()
		return nil
	}
	c.started = false
	c.stopRun()
	done := make(chan struct{})
	go func() { c.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("vault: stop: token renewal still running: %w", ctx.Err())
	}
	c.cur.Load().apis.close()
	return nil
}

// Update applies a changed vault: block (hot reload): when it differs from
// the current one, a new API client and auth method are built and swapped
// in atomically; reads in flight finish on the old client. An equal block
// changes nothing. When the new block cannot be used the old client stays
// and the error says why.
func (c *Client) Update(_ context.Context, vc config.Vault) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.cur.Load()
	if reflect.DeepEqual(old.cfg, vc) {
		return nil
	}
	cn, err := c.newConn(vc)
	if err != nil {
		return err
	}
	c.cur.Store(cn)
	if old.stopRenewer != nil {
		old.stopRenewer()
	}
	old.apis.close()
	if c.started {
		c.startRenewer(cn) // logs in (or looks the token up) at once
	}
	c.log.Info("vault client reconfigured",
		zap.String("address", cn.apis.shownAddress()), zap.String("auth_method", cn.methodName()))
	return nil
}

// newConn builds everything one vault: block needs.
func (c *Client) newConn(vc config.Vault) (*conn, error) {
	var tp trace.TracerProvider = noop.NewTracerProvider()
	if c.opts.TracerProvider != nil {
		tp = c.opts.TracerProvider
	}
	apis, err := newAPIClients(vc, c.opts.TracerProvider)
	if err != nil {
		return nil, err
	}
	method, tokens, err := newAuth(vc.Auth, c.lookupEnv)
	if err != nil {
		return nil, err
	}
	return &conn{
		cfg:        vc,
		apis:       apis,
		method:     method,
		tokens:     tokens,
		log:        c.log,
		observer:   c.opts.TokenObserver,
		guard:      c.opts.Breaker,
		gate:       c.gate,
		tracer:     tp.Tracer(tracerName),
		wake:       make(chan struct{}, 1),
		kvVersions: map[string]int{},
	}, nil
}

// conn is one vault: block's API client, auth method, token state and KV
// mount cache.
type conn struct {
	cfg      config.Vault
	apis     *apiClients
	method   loginMethod  // approle, kubernetes, jwt; nil for the token method
	tokens   *tokenSource // the token method; nil otherwise
	log      *zap.Logger
	observer TokenObserver
	guard    Breaker
	gate     *loginGate
	tracer   trace.Tracer

	stopRenewer context.CancelFunc // set by Client.startRenewer
	wake        chan struct{}      // tells the renewer the token changed

	loginMu sync.Mutex // one login or token refresh at a time
	mu      sync.Mutex // st
	st      tokenState

	kvMu       sync.Mutex
	kvVersions map[string]int // mount -> 1 or 2; 0: the preflight was denied
	kvDetect   singleflight.Group
}

func (cn *conn) methodName() string {
	if cn.method == nil {
		return config.AuthToken
	}
	return cn.method.name()
}

// call makes one Vault call through the breaker. op names it in errors
// ("read secret/app").
func (cn *conn) call(ctx context.Context, op string, fn func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vault %s: %w", op, err)
	}
	var done func(breaker.Outcome, string)
	if cn.guard != nil {
		var err error
		if done, err = cn.guard.Allow(); err != nil {
			return fmt.Errorf("vault %s: %w", op, err)
		}
	}
	err := redactErr(fn(ctx))
	if done != nil {
		o := outcome(err)
		cause := ""
		if o == breaker.Failure {
			cause = failureCause(err)
		}
		done(o, cause)
	}
	if err != nil {
		return &callError{op: op, err: err}
	}
	return nil
}

// check is Start's best-effort connection validation: health, then a
// login or token lookup. It logs and never fails.
func (cn *conn) check(ctx context.Context) {
	addr := cn.apis.shownAddress()
	err := cn.call(ctx, "health check", func(ctx context.Context) error {
		h, err := cn.apis.data.Sys().HealthWithContext(ctx)
		if err == nil {
			cn.log.Info("vault reachable", zap.String("address", addr), zap.String("vault_version", h.Version),
				zap.Bool("sealed", h.Sealed), zap.Bool("standby", h.Standby), zap.String("cluster", h.ClusterName))
		}
		return err
	})
	if err != nil {
		cn.log.Warn("vault not reachable at start; continuing, reads will retry", zap.String("address", addr), zap.Error(err))
		return
	}
	if err := cn.prepareToken(ctx); err != nil {
		cn.log.Warn("vault token not ready at start; continuing, reads will retry",
			zap.String("auth_method", cn.methodName()), zap.Error(err))
	}
}
