package config

import "strings"

// keptVault are the VAULT_* (and OpenBao's BAO_*) variables, named without
// the prefix, that say where Vault is and how to trust it: nothing in them
// authenticates.
var keptVault = map[string]bool{
	"ADDR":            true,
	"NAMESPACE":       true,
	"CACERT":          true,
	"CAPATH":          true,
	"TLS_SERVER_NAME": true,
	"SKIP_VERIFY":     true,
	"CLIENT_TIMEOUT":  true,
}

// CredentialVariable reports whether the environment variable name holds
// one of the sidecar's own credentials, which nothing the sidecar starts
// or calls may see: every VAULT_* and BAO_* variable except ADDR,
// NAMESPACE, CACERT, CAPATH, TLS_SERVER_NAME, SKIP_VERIFY and
// CLIENT_TIMEOUT (so VAULT_TOKEN, VAULT_ROLE_ID, VAULT_SECRET_ID,
// VAULT_CLIENT_KEY...), and the OTLP exporter's headers.
func CredentialVariable(name string) bool {
	prefix, suffix, _ := strings.Cut(name, "_")
	switch {
	case prefix == "VAULT" || prefix == "BAO":
		return !keptVault[suffix]
	case strings.HasPrefix(name, "OTEL_EXPORTER_OTLP_") && strings.HasSuffix(name, "HEADERS"):
		return true
	}
	return false
}
