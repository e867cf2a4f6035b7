package render_test

import (
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// A leased secret's template reads its lease through functions, the data
// through the dot (a field named leaseTTL is data, not the lease); a KV
// secret's template that calls them fails; formats hold the data only.
func TestLeaseFunctions(t *testing.T) {
	r, err := render.Compile(&config.Secret{Name: "db", Template: `{{ .user }} {{ .leaseTTL }} ttl={{ leaseTTL }} renewable={{ leaseRenewable }} until={{ leaseExpiry | date "2006-01-02T15:04:05Z07:00" }}`})
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"user": "v-app-1", "leaseTTL": "a field"}
	l := &render.Lease{Expires: time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC), TTL: 90 * time.Minute, Renewable: true}
	out, err := r.RenderLease(data, l)
	if err != nil {
		t.Fatal(err)
	}
	if want := "v-app-1 a field ttl=5400 renewable=true until=2026-12-07T14:00:00Z"; string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
	if _, err := r.Render(data); err == nil || !strings.Contains(err.Error(), "has no lease") {
		t.Errorf("without a lease: %v", err)
	}
	f, err := render.Compile(&config.Secret{Name: "db", Format: "json"})
	if err != nil {
		t.Fatal(err)
	}
	out, err = f.RenderLease(map[string]any{"user": "u"}, l)
	if err != nil || string(out) != "{\"user\":\"u\"}\n" && string(out) != "{\n  \"user\": \"u\"\n}\n" {
		t.Errorf("format json with a lease: %q, %v", out, err)
	}
}
