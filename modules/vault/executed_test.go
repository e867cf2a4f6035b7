package vault

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
)

// MayHaveExecuted tells a lost answer (which may hide a minted credential)
// from a request Vault never saw or refused.
func TestMayHaveExecuted(t *testing.T) {
	wrap := func(err error) error { return &callError{op: "post pki/issue/web", err: err} }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"timeout", wrap(context.DeadlineExceeded), true},
		{"500", wrap(&api.ResponseError{StatusCode: 500}), true},
		{"connection reset", wrap(&net.OpError{Op: "read", Err: fmt.Errorf("connection reset by peer")}), true},
		{"403", wrap(&api.ResponseError{StatusCode: 403}), false},
		{"400", wrap(&api.ResponseError{StatusCode: 400}), false},
		{"dial refused", wrap(&net.OpError{Op: "dial", Err: fmt.Errorf("connection refused")}), false},
		{"breaker open", fmt.Errorf("vault post x: %w", breaker.ErrOpen), false},
		{"not found", fmt.Errorf("vault post x: %w", ErrNotFound), false},
		{"nil", nil, false},
	} {
		if got := MayHaveExecuted(tc.err); got != tc.want {
			t.Errorf("%s: MayHaveExecuted = %v, want %v", tc.name, got, tc.want)
		}
	}
}
