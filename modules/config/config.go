// Package config loads and validates the secrets-sidecar YAML config file and
// the SIDECAR_* process settings (see README.md, "Config file" and
// "Environment variables").
//
// Load never returns a partly valid config: it either returns a Config in
// which every secret has its defaults merged and every rule checked, or a
// Problems error listing each problem with its file, line and field.
package config

import (
	"fmt"
	"path/filepath"
	"reflect"
)

// Auth method names accepted in vault.auth.method.
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthKubernetes = "kubernetes"
	AuthJWT        = "jwt"
)

// KV versions accepted in kv_version.
const (
	KVAuto = "auto"
	KV1    = "1"
	KV2    = "2"
)

// CheckAuthMethod is the vault.auth.method rule: nil for a known method,
// else why not (without the field name).
func CheckAuthMethod(m string) error {
	switch m {
	case AuthToken, AuthAppRole, AuthKubernetes, AuthJWT:
		return nil
	}
	return fmt.Errorf("%q is not an auth method (%s, %s, %s, %s)", m, AuthToken, AuthAppRole, AuthKubernetes, AuthJWT)
}

// CheckKVVersion is the kv_version rule: nil for a known version, else why
// not (without the field name).
func CheckKVVersion(v string) error {
	switch v {
	case KVAuto, KV1, KV2:
		return nil
	}
	return fmt.Errorf("%q is not a KV version (%s, %s, %s)", v, KVAuto, KV1, KV2)
}

// DefaultKubernetesTokenFile is where Kubernetes mounts a pod's service
// account token.
const DefaultKubernetesTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// Config is a loaded, defaulted and validated config file.
type Config struct {
	Vault    Vault    `yaml:"vault"`
	Notify   Notify   `yaml:"notify"`
	Defaults Defaults `yaml:"defaults"`
	Leases   Leases   `yaml:"leases"`
	Secrets  []Secret `yaml:"secrets"`

	// File is the path the config was loaded from.
	File string `yaml:"-"`
	// Digest is the SHA-256 of the config text as loaded.
	Digest [32]byte `yaml:"-"`
}

// TemplateFiles are the secrets' template files, resolved against the
// config's directory, in config order.
func (c *Config) TemplateFiles() []string {
	var files []string
	for _, s := range c.Secrets {
		if s.TemplateFile != "" {
			files = append(files, filepath.Clean(resolve(c.File, s.TemplateFile)))
		}
	}
	return files
}

// Dir is the directory relative template_file paths resolve against.
func (c *Config) Dir() string { return filepath.Dir(c.File) }

// Secret returns the secret with the given name.
func (c *Config) Secret(name string) (Secret, bool) {
	for _, s := range c.Secrets {
		if s.Name == name {
			return s, true
		}
	}
	return Secret{}, false
}

// Vault is the vault: block. Empty fields leave the Vault client library's
// own defaults and VAULT_* environment in place.
type Vault struct {
	Address   string   `yaml:"address"`
	Namespace string   `yaml:"namespace"`
	Timeout   Duration `yaml:"timeout"`
	TLS       TLS      `yaml:"tls"`
	Auth      Auth     `yaml:"auth"`
}

// TLS is vault.tls.
type TLS struct {
	CACert             string `yaml:"ca_cert"`
	CAPath             string `yaml:"ca_path"`
	ClientCert         string `yaml:"client_cert"`
	ClientKey          string `yaml:"client_key"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Auth is vault.auth.
type Auth struct {
	Method     string     `yaml:"method"`
	TokenFile  string     `yaml:"token_file"`
	AppRole    AppRole    `yaml:"approle"`
	Kubernetes Kubernetes `yaml:"kubernetes"`
	JWT        JWT        `yaml:"jwt"`
}

// AppRole is vault.auth.approle. When the files are not set, the vault
// module reads VAULT_ROLE_ID and VAULT_SECRET_ID instead.
type AppRole struct {
	Mount        string `yaml:"mount"`
	RoleIDFile   string `yaml:"role_id_file"`
	SecretIDFile string `yaml:"secret_id_file"`
}

// Kubernetes is vault.auth.kubernetes.
type Kubernetes struct {
	Mount     string `yaml:"mount"`
	Role      string `yaml:"role"`
	TokenFile string `yaml:"token_file"`
}

// JWT is vault.auth.jwt.
type JWT struct {
	Mount     string `yaml:"mount"`
	Role      string `yaml:"role"`
	TokenFile string `yaml:"token_file"`
}

// Defaults is the defaults: block, merged into every secret.
type Defaults struct {
	Mount           string   `yaml:"mount"`
	KVVersion       string   `yaml:"kv_version"`
	RefreshInterval Duration `yaml:"refresh_interval"`
	Mode            FileMode `yaml:"mode"`
	DirMode         FileMode `yaml:"dir_mode"`
	Owner           *int     `yaml:"owner"`
	Group           *int     `yaml:"group"`
	OnChange        []Action `yaml:"on_change"`
	OnStart         *bool    `yaml:"on_start"`
}

// Secret is one entry of secrets:. After Load every field that has a default
// is set, and TemplateText holds the template (inline or read from
// template_file) when the secret is rendered through a template.
type Secret struct {
	Name string `yaml:"name"`
	// Path is the KV secret's path inside its mount; a leased secret has
	// Lease instead.
	Path        string `yaml:"path"`
	Lease       *Lease `yaml:"lease"`
	Destination string `yaml:"destination"`
	// Files, instead of Destination and an output, writes several files
	// from one response as one set that changes all at once.
	Files           []OutputFile `yaml:"files"`
	Mount           string       `yaml:"mount"`
	KVVersion       string       `yaml:"kv_version"`
	Version         int          `yaml:"version"`
	RefreshInterval Duration     `yaml:"refresh_interval"`
	Mode            FileMode     `yaml:"mode"`
	DirMode         FileMode     `yaml:"dir_mode"`
	Owner           *int         `yaml:"owner"`
	Group           *int         `yaml:"group"`
	Template        string       `yaml:"template"`
	TemplateFile    string       `yaml:"template_file"`
	Key             string       `yaml:"key"`
	Format          string       `yaml:"format"`
	LeftDelimiter   string       `yaml:"left_delimiter"`
	RightDelimiter  string       `yaml:"right_delimiter"`
	// OnChange are the actions run after the destination's content really
	// changed. Unset: the defaults' list; set (even to []): this list.
	OnChange []Action `yaml:"on_change"`
	// OnStart: a destination that did not exist before (created, not
	// changed) runs OnChange too. Unset: the defaults' value, else false.
	OnStart *bool `yaml:"on_start"`

	// TemplateText is the template to render: Template, or the content of
	// TemplateFile (resolved against the config file's directory).
	TemplateText string `yaml:"-"`
	// TemplateFirstLine is the config-file line on which an inline template's
	// text starts (0 for template_file), so template errors can point there.
	TemplateFirstLine int `yaml:"-"`
	// pkcs12 and pkcs12Password are set by Output for a files: entry
	// with content: pkcs12 (see PKCS12Output); never read from YAML.
	pkcs12         bool
	pkcs12Password string
}

// Same reports whether s and o are the same secret.
func (s Secret) Same(o Secret) bool {
	return reflect.DeepEqual(s, o)
}

// UsesTemplate reports whether the secret is rendered through a template.
func (s *Secret) UsesTemplate() bool { return s.Template != "" || s.TemplateFile != "" }

// VaultPath is "<mount>/<path>" (a leased secret: its lease's API path),
// the label the secret is known by in logs and metrics.
func (s *Secret) VaultPath() string {
	if s.Lease != nil {
		return s.Lease.Path
	}
	return s.Mount + "/" + s.Path
}

// Notify is the notify: block: how change actions are batched and retried.
type Notify struct {
	// Debounce is the fixed window opened by the first change; at its end
	// each distinct action runs once. Default 2s.
	Debounce Duration `yaml:"debounce"`
	// Splay is a random extra delay, up to this, before a window's actions
	// run (fleets). Default 0.
	Splay Duration `yaml:"splay"`
	// Attempts is how often a failing action run is tried, backing off in
	// between. Default 3.
	Attempts int `yaml:"attempts"`
}

// Action is one entry of on_change: exactly one of its fields is set.
type Action struct {
	Signal *SignalAction `yaml:"signal"`
	Exec   *ExecAction   `yaml:"exec"`
	HTTP   *HTTPAction   `yaml:"http"`
}

// SignalAction sends a signal to processes found by pid file or by name.
type SignalAction struct {
	// Name is the signal: SIGHUP or HUP (any name Go's syscall knows).
	Name string `yaml:"name"`
	// PIDFile holds the target's PID (exactly one of PIDFile, Process).
	PIDFile string `yaml:"pid_file"`
	// Process matches /proc/*/comm or argv[0]'s base name exactly.
	Process string `yaml:"process"`
}

// ExecAction runs a command (argv, no shell).
type ExecAction struct {
	Command []string `yaml:"command"`
	// Timeout kills the command after this long. Default 30s.
	Timeout Duration `yaml:"timeout"`
	// LogOutput logs the command's output, scrubbed of every value the
	// sidecar holds. Off by default: output is counted, never logged,
	// because no scrubbing catches a value the command transformed.
	LogOutput bool `yaml:"log_output"`
}

// HTTPAction calls a URL; a 2xx answer is success.
type HTTPAction struct {
	URL string `yaml:"url"`
	// Method defaults to POST.
	Method string `yaml:"method"`
	// Timeout bounds the request. Default 5s.
	Timeout Duration          `yaml:"timeout"`
	Headers map[string]string `yaml:"headers"`
	// HeadersFile holds more headers, one "Name: value" per line, read
	// (no-follow) at every run, so a token need not be in the config.
	HeadersFile string `yaml:"headers_file"`
}

// Kind is the action's kind: "signal", "exec" or "http" ("" when none is set).
func (a Action) Kind() string {
	switch {
	case a.Signal != nil:
		return "signal"
	case a.Exec != nil:
		return "exec"
	case a.HTTP != nil:
		return "http"
	}
	return ""
}
