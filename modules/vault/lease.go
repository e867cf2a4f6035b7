package vault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// ErrLeaseGone is a renewal or lookup of a lease Vault no longer knows
// (revoked behind the sidecar's back, expired, or its token's gone).
var ErrLeaseGone = errors.New("lease not found or no longer renewable")

// LeaseRequest is a leased secret's request: GET reads path, POST and PUT
// write Parameters to it.
type LeaseRequest struct {
	Method     string
	Path       string
	Parameters map[string]any
}

// Leased is a response with its lease. ID is empty for a response without
// a lease (a static role's credentials: their ttl is in Data). Printing it
// shows neither the lease id nor a value.
type Leased struct {
	Data      map[string]any
	ID        logging.Redacted
	Duration  time.Duration // the lease's TTL as granted
	Renewable bool
	// Received is when the request was sent (the lease's TTL counts from
	// no later than that).
	Received time.Time
	// Token is the token generation the lease was made under: a lease dies
	// with its token.
	Token TokenLife
}

func (l Leased) summary() string {
	return fmt.Sprintf("vault.Leased{Duration:%s Renewable:%t Lease:%t Data:%s (%d fields)}",
		l.Duration, l.Renewable, l.ID != "", logging.RedactedText, len(l.Data))
}

// String implements fmt.Stringer.
func (l Leased) String() string { return l.summary() }

// GoString implements fmt.GoStringer.
func (l Leased) GoString() string { return l.summary() }

// Format implements fmt.Formatter: every verb prints the redacted summary.
func (l Leased) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, l.summary()) }

// MayHaveExecuted reports whether a request that failed may still have
// been carried out by Vault, a credential minted whose answer was lost: a
// 5xx answer, a timeout or a connection lost after the request went out.
// A request never sent (the breaker open, no token, a refused
// connection) or refused by Vault (4xx, nothing at the path) was not.
func MayHaveExecuted(err error) bool {
	var re *api.ResponseError
	var oe *net.OpError
	switch {
	case err == nil:
		return false
	case errors.As(err, &re):
		return re.StatusCode >= http.StatusInternalServerError
	case errors.Is(err, breaker.ErrOpen), errors.Is(err, ErrNotFound), IsAuthError(err):
		return false
	case errors.As(err, &oe) && oe.Op == "dial":
		return false
	}
	return true
}

// TokenLife is what the client knows of its token's life: its generation
// (a new login or token file makes a new one), when it expires, and
// whether that expiry is final (not renewable, or capped by its max TTL).
// A zero Expiry is a token that does not expire.
type TokenLife struct {
	Gen    uint64
	Expiry time.Time
	Final  bool
}

// TokenLife reports the current token's life.
func (c *Client) TokenLife() TokenLife { return c.cur.Load().tokenLife() }

// Request sends a leased secret's request once. A request Vault denied
// (403) was not executed, so after a fresh login it is sent once more;
// any other failure is returned as it is: a write (POST, PUT) that may
// have reached Vault is never sent again here.
func (c *Client) Request(ctx context.Context, req LeaseRequest) (*Leased, error) {
	cn := c.cur.Load()
	path := strings.Trim(req.Path, "/")
	ctx, span := cn.tracer.Start(ctx, "vault.lease.request", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("vault.path", path), attribute.String("http.method", req.Method)))
	defer span.End()
	l, err := cn.request(ctx, path, req)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return nil, err
	}
	span.SetAttributes(attribute.Bool("vault.lease", l.ID != ""), attribute.Int64("vault.lease_seconds", int64(l.Duration/time.Second)))
	return l, nil
}

func (cn *conn) request(ctx context.Context, path string, req LeaseRequest) (*Leased, error) {
	if path == "" {
		return nil, misconfigured("vault request: no path")
	}
	gen, err := cn.ensureToken(ctx)
	if err != nil {
		return nil, err
	}
	l, err := cn.send(ctx, path, req)
	if !isForbidden(err) {
		return l, err
	}
	retry, tokenOK, tokenErr := cn.afterForbidden(ctx, gen)
	switch {
	case retry:
		return cn.send(ctx, path, req)
	case tokenErr != nil:
		return nil, tokenErr
	case tokenOK:
		return nil, fmt.Errorf("%w; the token is valid, its policies do not allow this request", err)
	}
	return nil, err
}

func (cn *conn) send(ctx context.Context, path string, req LeaseRequest) (*Leased, error) {
	life := cn.tokenLife()
	at := time.Now()
	var sec *api.Secret
	op := strings.ToLower(req.Method) + " " + path
	err := cn.call(ctx, op, func(ctx context.Context) error {
		var err error
		if req.Method == http.MethodGet {
			sec, err = cn.apis.data.Logical().ReadWithContext(ctx, path)
		} else {
			sec, err = cn.apis.data.Logical().WriteWithContext(ctx, path, req.Parameters)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if sec == nil {
		return nil, fmt.Errorf("vault %s: %w (no response)", op, ErrNotFound)
	}
	if len(sec.Data) == 0 {
		return nil, fmt.Errorf("vault %s: the response holds no data", op)
	}
	return &Leased{
		Data: sec.Data, ID: logging.Redacted(sec.LeaseID), Duration: time.Duration(sec.LeaseDuration) * time.Second,
		Renewable: sec.Renewable, Received: at, Token: life,
	}, nil
}

func (cn *conn) tokenLife() TokenLife {
	st := cn.state()
	return TokenLife{Gen: st.gen, Expiry: st.expiry(), Final: st.known && (!st.renewable || (st.fullTTL > 0 && st.ttl < st.fullTTL))}
}

// Renew asks for the lease to be extended by increment (0: its default)
// and returns the TTL granted: less than asked means its max TTL is near.
// A lease Vault does not know (any more) is ErrLeaseGone.
func (c *Client) Renew(ctx context.Context, id logging.Redacted, increment time.Duration) (time.Duration, bool, error) {
	cn := c.cur.Load()
	ctx, span := cn.tracer.Start(ctx, "vault.lease.renew", trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	if _, err := cn.ensureToken(ctx); err != nil {
		return 0, false, err
	}
	var sec *api.Secret
	err := cn.call(ctx, "renew lease", func(ctx context.Context) error {
		var err error
		sec, err = cn.apis.data.Logical().WriteWithContext(ctx, "sys/leases/renew", map[string]any{
			"lease_id": id.Reveal(), "increment": int64(increment / time.Second),
		})
		return err
	})
	if err != nil {
		err = leaseErr(err)
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return 0, false, err
	}
	if sec == nil {
		return 0, false, fmt.Errorf("vault renew lease: %w (no response)", ErrLeaseGone)
	}
	d := time.Duration(sec.LeaseDuration) * time.Second
	span.SetAttributes(attribute.Int64("vault.lease_seconds", int64(d/time.Second)))
	return d, sec.Renewable, nil
}

// Revoke revokes the lease (best effort: Vault queues it, sync=false).
func (c *Client) Revoke(ctx context.Context, id logging.Redacted) error {
	cn := c.cur.Load()
	ctx, span := cn.tracer.Start(ctx, "vault.lease.revoke", trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	if _, err := cn.ensureToken(ctx); err != nil {
		return err
	}
	err := cn.call(ctx, "revoke lease", func(ctx context.Context) error {
		_, err := cn.apis.data.Logical().WriteWithContext(ctx, "sys/leases/revoke", map[string]any{"lease_id": id.Reveal(), "sync": false})
		return err
	})
	if err != nil {
		err = leaseErr(err)
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// RevokeSelf revokes the client's token, and with it every lease made
// under it (revoke_on_shutdown: token; needs auth/token/revoke-self).
func (c *Client) RevokeSelf(ctx context.Context) error {
	cn := c.cur.Load()
	if _, err := cn.ensureToken(ctx); err != nil {
		return err
	}
	return cn.call(ctx, "revoke the token", func(ctx context.Context) error {
		_, err := cn.apis.data.Logical().WriteWithContext(ctx, "auth/token/revoke-self", nil)
		return err
	})
}

// Lookup reports a lease's remaining TTL and renewability as Vault has it
// (adopting a recorded lease after a restart).
func (c *Client) Lookup(ctx context.Context, id logging.Redacted) (time.Duration, bool, error) {
	cn := c.cur.Load()
	if _, err := cn.ensureToken(ctx); err != nil {
		return 0, false, err
	}
	var sec *api.Secret
	err := cn.call(ctx, "look up lease", func(ctx context.Context) error {
		var err error
		sec, err = cn.apis.data.Logical().WriteWithContext(ctx, "sys/leases/lookup", map[string]any{"lease_id": id.Reveal()})
		return err
	})
	if err != nil {
		return 0, false, leaseErr(err)
	}
	if sec == nil || sec.Data == nil {
		return 0, false, fmt.Errorf("vault look up lease: %w", ErrLeaseGone)
	}
	ttl, _ := sec.Data["ttl"].(json.Number)
	secs, _ := ttl.Int64()
	renewable, _ := sec.Data["renewable"].(bool)
	return time.Duration(secs) * time.Second, renewable, nil
}

// leaseErr marks Vault's answers for a lease it does not know.
func leaseErr(err error) error {
	if s := statusOf(err); s == http.StatusBadRequest || s == http.StatusNotFound {
		msg := err.Error()
		if strings.Contains(msg, "lease not found") || strings.Contains(msg, "invalid lease") || strings.Contains(msg, "not renewable") ||
			strings.Contains(msg, "lease expired") {
			return fmt.Errorf("%w: %w", ErrLeaseGone, err)
		}
	}
	return err
}
