package config_test

import (
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// Self-referencing aliases must be rejected, not recursed into forever.
func TestAliasCyclesRejected(t *testing.T) {
	for _, s := range []string{"secrets: &x [*x]", "vault: &v {auth: *v}", "defaults: &d\n  mode: *d\n"} {
		if _, err := (config.Loader{LookupEnv: noEnv}).Parse("a.yaml", []byte(s)); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
