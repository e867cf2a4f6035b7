package vault

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/breaker"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/vault/vaulttest"
)

// TestProbe: healthy only when Vault can serve; a sealed Vault is not.
func TestProbe(t *testing.T) {
	srv := vaulttest.Start(t)
	c := tokenClient(t, srv, srv.Token)
	if err := c.Probe(t.Context()); err != nil {
		t.Fatalf("healthy Vault: %v", err)
	}
	if err := srv.Client(t).Sys().SealWithContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := c.Probe(t.Context()); err == nil || err.Error() != "health check: HTTP 503: Vault is sealed" {
		t.Fatalf("sealed Vault: %v", err)
	}
	srv.Stop(t)
	err := c.Probe(t.Context())
	if err == nil || !strings.Contains(err.Error(), "connect: connection refused") || strings.Contains(err.Error(), "http://") {
		t.Fatalf("stopped Vault: %v, want the bare transport error", err)
	}
}

// TestOpenBreakerNamesItsCause: the open breaker's error says why it
// opened, and is still breaker.ErrOpen.
func TestOpenBreakerNamesItsCause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b := breaker.NewBreaker(breaker.Settings{MaxFailures: 2, OpenTimeout: time.Minute, Interval: time.Minute}, nil, nil)
	c := newClient(t, Settings{
		Vault:     config.Vault{Address: "http://" + addr, Auth: config.Auth{Method: config.AuthToken}},
		LookupEnv: env("VAULT_TOKEN", "unused"),
	}, Options{Breaker: b})
	req := ReadRequest{Mount: "secret", Path: "app", KVVersion: config.KV2}
	for range 2 {
		if _, err := c.Read(t.Context(), req); !IsUnavailable(err) {
			t.Fatalf("connection refused: IsUnavailable false for %v", err)
		}
	}
	_, err = c.Read(t.Context(), req)
	if !IsUnavailable(err) {
		t.Fatalf("open breaker: IsUnavailable false for %v", err)
	}
	want := "vault read secret/app (KV v2): circuit breaker is open (last failure: dial tcp " + addr + ": connect: connection refused)"
	if !errors.Is(err, breaker.ErrOpen) || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}
