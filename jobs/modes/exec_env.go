package modes

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/modules/supervisor"
)

// childEnviron is the child's complete environment: base (normally os.Environ())
// through supervisor.ScrubCredentials, then one NAME=value per field of every secret in
// secretEnv (secret name, as the caller labels it in messages, to its
// fields as Vault returned them).
//
// Field names must be valid variable names ([A-Za-z_][A-Za-z0-9_]*, as for
// format: env). Values are the text a template sees: strings as they are,
// json.Number as its text, booleans as true/false, null as "null", nested
// objects and arrays as their JSON. A secret variable replaces a base
// variable of the same name (a secret may well set VAULT_ADDR or PATH:
// that is the user's choice, and the command itself is resolved in the
// sidecar's own PATH, not this one); a dynamic-loader variable
// (loaderVariable) is refused, and so are two secrets giving the same
// name. Errors name the secrets and fields, never a value.
//
// The order is deterministic: the base's order (of each name's last
// occurrence, which is the one a process sees), then the secret variables
// sorted by name.
func childEnviron(base []string, secretEnv map[string]map[string]any) ([]string, error) {
	vars := make(map[string]string)
	from := make(map[string]string) // variable -> secret that set it
	var errs []error
	for _, secret := range sortedKeys(secretEnv) {
		fields := secretEnv[secret]
		for _, field := range sortedKeys(fields) {
			text := render.FieldText(fields[field])
			switch other, dup := from[field]; {
			case !render.EnvName(field):
				errs = append(errs, fmt.Errorf("secret %q: field %q is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)", secret, field))
			case loaderVariable(field):
				errs = append(errs, fmt.Errorf("secret %q: field %q is refused as an environment variable: the dynamic loader or the C library reads it to choose code or files the command loads; set it in the image or with env in the command, not in a secret", secret, field))
			case dup:
				errs = append(errs, fmt.Errorf("secrets %q and %q both set the environment variable %s", other, secret, field))
			case strings.IndexByte(text, 0) >= 0:
				errs = append(errs, fmt.Errorf("secret %q: the value of field %q holds a NUL byte, which an environment variable cannot", secret, field))
			default:
				vars[field] = text
				from[field] = secret
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	kept := lastOccurrences(supervisor.ScrubCredentials(base))
	out := make([]string, 0, len(kept)+len(vars))
	for _, kv := range kept {
		name, _, _ := strings.Cut(kv, "=")
		if _, overridden := vars[name]; !overridden {
			out = append(out, kv)
		}
	}
	for _, name := range sortedKeys(vars) {
		out = append(out, name+"="+vars[name])
	}
	return out, nil
}

// loaderVariables are the variables, besides LD_*, that glibc ignores for
// setuid programs because they choose code or files a program loads (or
// writes: MALLOC_TRACE).
var loaderVariables = map[string]bool{
	"GCONV_PATH": true, "GETCONF_DIR": true, "GLIBC_TUNABLES": true, "HOSTALIASES": true,
	"LOCPATH": true, "MALLOC_TRACE": true, "NLSPATH": true,
}

// loaderVariable reports whether a variable from a secret could make the
// command load code its image did not choose: LD_PRELOAD, LD_LIBRARY_PATH,
// LD_AUDIT and every other LD_* variable, and loaderVariables. Names are
// case-sensitive, as the loader reads them.
func loaderVariable(name string) bool {
	return strings.HasPrefix(name, "LD_") || loaderVariables[name]
}

// lastOccurrences keeps, of entries with the same name, the last one (the
// one getenv and os/exec use), in the order of those last occurrences.
func lastOccurrences(environ []string) []string {
	seen := make(map[string]bool, len(environ))
	out := make([]string, 0, len(environ))
	for i := len(environ) - 1; i >= 0; i-- {
		name, _, _ := strings.Cut(environ[i], "=")
		if !seen[name] {
			seen[name] = true
			out = append(out, environ[i])
		}
	}
	slices.Reverse(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
