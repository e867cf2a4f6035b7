package supervisor

import (
	"net/url"
	"strings"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// ScrubCredentials is environ ("NAME=value" entries, as os.Environ) without
// the sidecar's own credentials, for a process the sidecar starts (see
// SplitCredentials). environ is not modified.
func ScrubCredentials(environ []string) []string {
	kept, _ := SplitCredentials(environ)
	return kept
}

// SplitCredentials splits environ into what a process the sidecar starts
// may see and the credential values it must not (returned so that output
// can be scrubbed of them): every VAULT_* and BAO_* variable goes except
// ADDR, NAMESPACE, CACERT, CAPATH, TLS_SERVER_NAME, SKIP_VERIFY and
// CLIENT_TIMEOUT (so VAULT_TOKEN, VAULT_ROLE_ID, VAULT_SECRET_ID,
// VAULT_CLIENT_KEY... go); OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_EXPORTER_OTLP_TRACES_HEADERS go; VAULT_ADDR and the OTLP endpoints
// lose any user:password@, and a VAULT_ADDR with an "@" that does not parse
// as a URL goes altogether. Entries without "=" are dropped; the order of
// the others is kept.
func SplitCredentials(environ []string) (kept, dropped []string) {
	kept = make([]string, 0, len(environ))
	// strip keeps a URL variable without its userinfo; false drops it.
	strip := func(name, value string) (string, bool) {
		addr, userinfo, ok := withoutUserinfo(value)
		dropped = append(dropped, userinfo...)
		if !ok {
			dropped = append(dropped, value)
			return "", false
		}
		return name + "=" + addr, true
	}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		switch {
		case config.CredentialVariable(name):
			dropped = append(dropped, value)
			if strings.HasPrefix(name, "OTEL_") {
				for _, h := range strings.Split(value, ",") {
					if _, hv, ok := strings.Cut(h, "="); ok {
						dropped = append(dropped, strings.TrimSpace(hv))
					}
				}
			}
			continue
		case name == "VAULT_ADDR" || name == "BAO_ADDR",
			strings.HasPrefix(name, "OTEL_EXPORTER_OTLP_") && strings.HasSuffix(name, "ENDPOINT"):
			if kv, ok = strip(name, value); !ok {
				continue
			}
		}
		kept = append(kept, kv)
	}
	return kept, dropped
}

// withoutUserinfo is addr without user:password@ and the parts it removed
// (the whole userinfo and the password), and false when addr holds an "@"
// that cannot be told apart from a password: it does not parse, or parses
// as an opaque URL ("user:pw@host:8200" reads as scheme "user").
func withoutUserinfo(addr string) (string, []string, bool) {
	if !strings.Contains(addr, "@") {
		return addr, nil, true
	}
	u, err := url.Parse(addr)
	if err != nil || u.Opaque != "" {
		return "", nil, false
	}
	if u.User == nil {
		return addr, nil, true // an @ in the path or query
	}
	removed := []string{u.User.String()}
	if pw, ok := u.User.Password(); ok {
		removed = append(removed, pw)
	}
	u.User = nil
	return u.String(), removed, true
}
