package supervisor

import (
	"net/url"
	"strings"
)

// keptVault are the VAULT_* variables a command started by the sidecar may
// keep: where Vault is and how to trust it, nothing that authenticates.
var keptVault = map[string]bool{
	"VAULT_ADDR":            true,
	"VAULT_NAMESPACE":       true,
	"VAULT_CACERT":          true,
	"VAULT_CAPATH":          true,
	"VAULT_TLS_SERVER_NAME": true,
	"VAULT_SKIP_VERIFY":     true,
	"VAULT_CLIENT_TIMEOUT":  true,
}

// droppedOther are credentials the sidecar reads that are not VAULT_*.
var droppedOther = map[string]bool{
	"OTEL_EXPORTER_OTLP_HEADERS":        true,
	"OTEL_EXPORTER_OTLP_TRACES_HEADERS": true,
}

// ScrubCredentials is environ ("NAME=value" entries, as os.Environ) without
// the sidecar's own credentials, for a process the sidecar starts: every
// VAULT_* variable except VAULT_ADDR, VAULT_NAMESPACE, VAULT_CACERT,
// VAULT_CAPATH, VAULT_TLS_SERVER_NAME, VAULT_SKIP_VERIFY and
// VAULT_CLIENT_TIMEOUT goes (VAULT_TOKEN, VAULT_ROLE_ID, VAULT_SECRET_ID,
// VAULT_CLIENT_KEY...), and so do OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_EXPORTER_OTLP_TRACES_HEADERS. VAULT_ADDR loses any user:password@; a
// VAULT_ADDR with an "@" that does not parse as a URL goes altogether. Entries without "="
// are dropped; the order of the others is kept. environ is not modified.
func ScrubCredentials(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" || droppedOther[name] {
			continue
		}
		if strings.HasPrefix(name, "VAULT_") {
			if !keptVault[name] {
				continue
			}
			if name == "VAULT_ADDR" {
				if value, ok = withoutUserinfo(value); !ok {
					continue
				}
				kv = name + "=" + value
			}
		}
		out = append(out, kv)
	}
	return out
}

// withoutUserinfo is addr without user:password@, and false when addr holds
// an "@" that cannot be told apart from a password: it does not parse, or
// parses as an opaque URL ("user:pw@host:8200" reads as scheme "user").
func withoutUserinfo(addr string) (string, bool) {
	if !strings.Contains(addr, "@") {
		return addr, true
	}
	u, err := url.Parse(addr)
	if err != nil || u.Opaque != "" {
		return "", false
	}
	if u.User == nil {
		return addr, true // an @ in the path or query
	}
	u.User = nil
	return u.String(), true
}
