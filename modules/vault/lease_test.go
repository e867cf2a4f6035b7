package vault

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// Against the real server: a GET answers the path's data with the lease
// fields Vault sets (none for KV v1: no lease id, not renewable); a write
// whose answer has no data (a token creation answers with auth) is an
// error, not an empty secret; a request to a path that does not exist is
// ErrNotFound.
func TestRequestAgainstVault(t *testing.T) {
	srv := vaulttest.Shared(t)
	c := tokenClient(t, srv, srv.Token)
	p := uniq(t)
	srv.PutKV1(t, "kv", p, map[string]any{"password": "lease-test-value"})

	l, err := c.Request(t.Context(), LeaseRequest{Method: http.MethodGet, Path: "kv/" + p})
	if err != nil {
		t.Fatal(err)
	}
	if l.Data["password"] != "lease-test-value" || l.ID != "" || l.Renewable || l.Received.IsZero() || l.Token.Gen == 0 {
		t.Errorf("KV v1 read as a lease request: %+v (id set %t)", l, l.ID != "")
	}
	for _, s := range []string{fmt.Sprint(l), fmt.Sprintf("%+v %#v %s", l, l, l)} {
		if strings.Contains(s, "lease-test-value") {
			t.Errorf("a Leased printed a value: %s", s)
		}
	}
	_, err = c.Request(t.Context(), LeaseRequest{Method: http.MethodPost, Path: "auth/token/create", Parameters: map[string]any{"ttl": "1m"}})
	if err == nil || !strings.Contains(err.Error(), "holds no data") {
		t.Errorf("a write answered with auth only: %v, want 'holds no data'", err)
	}
	if _, err := c.Request(t.Context(), LeaseRequest{Method: http.MethodGet, Path: "kv/" + p + "-missing"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing path: %v, want ErrNotFound", err)
	}
}

// Vault's answers for a lease it does not know are ErrLeaseGone for a
// renewal and a lookup (the source replaces such a lease at once), and the
// lease id never appears in the error.
func TestUnknownLeaseIsGone(t *testing.T) {
	srv := vaulttest.Shared(t)
	c := tokenClient(t, srv, srv.Token)
	id := logging.Redacted("database/creds/app/" + uniq(t) + "-not-a-lease")
	if _, _, err := c.Renew(t.Context(), id, time.Minute); !errors.Is(err, ErrLeaseGone) || strings.Contains(err.Error(), id.Reveal()) {
		t.Errorf("renewing an unknown lease: %v", err)
	}
	if _, _, err := c.Lookup(t.Context(), id); !errors.Is(err, ErrLeaseGone) || strings.Contains(err.Error(), id.Reveal()) {
		t.Errorf("looking up an unknown lease: %v", err)
	}
}

// TokenLife follows the token: a root token does not expire.
func TestTokenLife(t *testing.T) {
	srv := vaulttest.Shared(t)
	c := tokenClient(t, srv, srv.Token)
	if _, err := c.Request(t.Context(), LeaseRequest{Method: http.MethodGet, Path: "sys/mounts"}); err != nil {
		t.Fatal(err)
	}
	if life := c.TokenLife(); life.Gen == 0 || !life.Expiry.IsZero() {
		t.Errorf("root token: %+v, want a generation and no expiry", life)
	}
}
