package vault

import (
	"fmt"
	"strings"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// Environment variables read for credentials (besides the library's own).
const (
	envToken    = "VAULT_TOKEN"
	envRoleID   = "VAULT_ROLE_ID"
	envSecretID = "VAULT_SECRET_ID"
)

// loginMethod is an auth method that logs in for a token (approle,
// kubernetes, jwt). Credentials are read fresh at every login, so files
// rotated on disk are picked up.
type loginMethod interface {
	// name is the method ("approle"), mount its auth mount ("approle").
	name() string
	mount() string
	// body is the login request's body. It holds credentials: it goes to
	// Vault and nowhere else.
	body() (map[string]any, error)
	// files are the credential files body reads.
	files() []string
}

// newAuth returns the login method for vault.auth, or the token source for
// the token method (exactly one is non-nil).
func newAuth(a config.Auth, lookupEnv func(string) (string, bool)) (loginMethod, *tokenSource, error) {
	env := func(key string) logging.Redacted {
		v, _ := lookupEnv(key)
		return logging.Redacted(strings.TrimSpace(v))
	}
	switch a.Method {
	case config.AuthToken, "":
		ts := &tokenSource{file: a.TokenFile, env: env(envToken)}
		if ts.file == "" && ts.env == "" {
			// An environment problem (exit 2, one plain line), in the
			// form of config.EnvError.
			return nil, nil, config.EnvError{envToken + ": not set, and vault.auth.token_file is not set either: the token auth method needs one of them"}
		}
		return nil, ts, nil
	case config.AuthAppRole:
		r := &appRole{
			mountPath:  orDefault(a.AppRole.Mount, "approle"),
			roleIDFile: a.AppRole.RoleIDFile, secretIDFile: a.AppRole.SecretIDFile,
			roleIDEnv: env(envRoleID), secretIDEnv: env(envSecretID),
		}
		if r.roleIDFile == "" && r.roleIDEnv == "" {
			return nil, nil, config.EnvError{envRoleID + ": not set, and vault.auth.approle.role_id_file is not set either: the approle auth method needs one of them"}
		}
		return r, nil, nil
	case config.AuthKubernetes:
		return &jwtLogin{
			method: config.AuthKubernetes, mountPath: orDefault(a.Kubernetes.Mount, "kubernetes"),
			role: a.Kubernetes.Role, file: orDefault(a.Kubernetes.TokenFile, config.DefaultKubernetesTokenFile),
		}, nil, nil
	case config.AuthJWT:
		return &jwtLogin{
			method: config.AuthJWT, mountPath: orDefault(a.JWT.Mount, "jwt"), role: a.JWT.Role, file: a.JWT.TokenFile,
		}, nil, nil
	}
	return nil, nil, fmt.Errorf("vault.auth.method: %w", config.CheckAuthMethod(a.Method))
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// readCredential reads a credential file, trimmed: a regular file of at
// most config.MaxCredentialFile (64 KiB), links followed (Kubernetes'
// projected tokens are links). Errors name the file, never its content.
func readCredential(what, path string) (logging.Redacted, error) {
	b, err := config.ReadFile(path, config.MaxCredentialFile)
	if err != nil {
		return "", &authError{fmt.Errorf("vault auth: read %s: %w", what, err)}
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", &authError{fmt.Errorf("vault auth: %s %s is empty", what, path)}
	}
	return logging.Redacted(v), nil
}

// appRole logs in with role_id and an optional secret_id.
type appRole struct {
	mountPath    string
	roleIDFile   string
	secretIDFile string
	roleIDEnv    logging.Redacted
	secretIDEnv  logging.Redacted
}

func (r *appRole) name() string  { return config.AuthAppRole }
func (r *appRole) mount() string { return r.mountPath }

func (r *appRole) files() []string {
	var out []string
	for _, f := range []string{r.secretIDFile, r.roleIDFile} {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (r *appRole) body() (map[string]any, error) {
	roleID := r.roleIDEnv
	if r.roleIDFile != "" {
		v, err := readCredential("role_id file", r.roleIDFile)
		if err != nil {
			return nil, err
		}
		roleID = v
	}
	secretID := r.secretIDEnv
	if r.secretIDFile != "" {
		v, err := readCredential("secret_id file", r.secretIDFile)
		if err != nil {
			return nil, err
		}
		secretID = v
	}
	body := map[string]any{"role_id": roleID.Reveal()}
	if secretID != "" { // a role that does not bind a secret_id needs none
		body["secret_id"] = secretID.Reveal()
	}
	return body, nil
}

// jwtLogin logs in with a JWT read from a file: the kubernetes method (the
// pod's service account token) and the jwt method.
type jwtLogin struct {
	method    string
	mountPath string
	role      string
	file      string
}

func (j *jwtLogin) name() string    { return j.method }
func (j *jwtLogin) mount() string   { return j.mountPath }
func (j *jwtLogin) files() []string { return []string{j.file} }

func (j *jwtLogin) body() (map[string]any, error) {
	jwt, err := readCredential(j.method+" token file", j.file)
	if err != nil {
		return nil, err
	}
	return map[string]any{"role": j.role, "jwt": jwt.Reveal()}, nil
}

// tokenSource is the token method's token: token_file when set (re-read on
// every use, so a token rotated on disk takes over), else VAULT_TOKEN.
type tokenSource struct {
	file string
	env  logging.Redacted
}

// source names where the token comes from, for messages.
func (t *tokenSource) source() string {
	if t.file != "" {
		return "token_file " + t.file
	}
	return envToken
}

func (t *tokenSource) read() (logging.Redacted, error) {
	if t.file == "" {
		return t.env, nil
	}
	return readCredential("token_file", t.file)
}
