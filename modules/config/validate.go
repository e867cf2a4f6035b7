package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Built-in defaults for the defaults: block.
const (
	DefaultMount           = "secret"
	DefaultRefreshInterval = 5 * time.Minute
	DefaultMode            = 0o400
	DefaultDirMode         = 0o755
	// MinRefreshInterval keeps a typo ("1ms") from hammering Vault.
	MinRefreshInterval = time.Second
)

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

type validator struct {
	idx    *index
	loader Loader
	probs  Problems
}

func (v *validator) add(field, format string, args ...any) {
	if v.idx.brokenAbove(field) {
		return // it failed to decode, and that is reported; no follow-on noise
	}
	for _, p := range v.probs {
		if p.Field == field {
			return // one problem per field
		}
	}
	v.probs = append(v.probs, Problem{
		File: v.idx.file, Line: v.idx.line(field), Field: field, Msg: fmt.Sprintf(format, args...),
	})
}

func (v *validator) lookupEnv(key string) (string, bool) {
	if v.loader.LookupEnv != nil {
		return v.loader.LookupEnv(key)
	}
	return LookupEnv(key)
}

func (v *validator) applyDefaults(c *Config) {
	a := &c.Vault.Auth
	setDefault(&a.Method, AuthToken)
	setDefault(&a.AppRole.Mount, "approle")
	setDefault(&a.Kubernetes.Mount, "kubernetes")
	setDefault(&a.Kubernetes.TokenFile, DefaultKubernetesTokenFile)
	setDefault(&a.JWT.Mount, "jwt")

	v.notifyDefaults(&c.Notify)
	v.leaseDefaults(c)

	d := &c.Defaults
	setDefault(&d.Mount, DefaultMount)
	setDefault(&d.KVVersion, KVAuto)
	if !d.RefreshInterval.IsSet() {
		d.RefreshInterval = NewDuration(DefaultRefreshInterval)
	}
	if !d.Mode.IsSet() {
		d.Mode = NewFileMode(DefaultMode)
	}
	if !d.DirMode.IsSet() {
		d.DirMode = NewFileMode(DefaultDirMode)
	}
	if d.OnStart == nil {
		d.OnStart = new(false)
	}
	actionDefaults(d.OnChange)
	for i := range c.Secrets {
		s := &c.Secrets[i]
		v.resolveActions(d, s, fmt.Sprintf("secrets[%d]", i))
		setDefault(&s.Mount, d.Mount)
		setDefault(&s.KVVersion, d.KVVersion)
		if !s.RefreshInterval.IsSet() {
			s.RefreshInterval = d.RefreshInterval
		}
		if !s.Mode.IsSet() {
			s.Mode = d.Mode
		}
		if !s.DirMode.IsSet() {
			s.DirMode = d.DirMode
		}
		if s.Owner == nil {
			s.Owner = d.Owner
		}
		if s.Group == nil {
			s.Group = d.Group
		}
		fileDefaults(s)
		s.Mount = strings.Trim(s.Mount, "/")
		s.Path = strings.Trim(s.Path, "/")
	}
}

func setDefault(field *string, def string) {
	if *field == "" {
		*field = def
	}
}

func (v *validator) validate(c *Config) {
	v.vault(&c.Vault)
	v.notify(&c.Notify)
	v.defaults(&c.Defaults)
	if len(c.Secrets) == 0 {
		v.add("secrets", "at least one secret is required")
		return
	}
	defer v.leases(c)
	defer v.setEntriesApart(c)
	names := map[string]int{}
	dests := map[string]int{}
	for i := range c.Secrets {
		s := &c.Secrets[i]
		p := fmt.Sprintf("secrets[%d]", i)
		v.secret(c, s, p)
		if s.Name != "" {
			if j, dup := names[s.Name]; dup {
				v.add(p+".name", "duplicate name %q (also secrets[%d], line %d)", s.Name, j, v.idx.line(fmt.Sprintf("secrets[%d].name", j)))
			} else {
				names[s.Name] = i
			}
		}
		for k, d := range s.Destinations() {
			if !filepath.IsAbs(d) {
				continue
			}
			field := p + ".destination"
			if s.HasFiles() {
				field = fmt.Sprintf("%s.files[%d].destination", p, k)
			}
			clean := filepath.Clean(d)
			if j, dup := dests[clean]; dup && j != i {
				v.add(field, "duplicate destination %q (also secrets[%d] %q)", d, j, c.Secrets[j].Name)
			} else if !dup {
				dests[clean] = i
			}
		}
	}
}

func (v *validator) vault(vc *Vault) {
	if vc.Address != "" && httpURLProblem(vc.Address) != "" {
		v.add("vault.address", "%q is not an http:// or https:// URL", RedactURL(vc.Address))
	}
	if msg := vc.Timeout.problem(); msg != "" {
		v.add("vault.timeout", "%s", msg)
	}
	if (vc.TLS.ClientCert == "") != (vc.TLS.ClientKey == "") {
		v.add("vault.tls", "client_cert and client_key must be set together")
	}
	a := &vc.Auth
	switch a.Method {
	case AuthToken:
	case AuthAppRole:
		if _, ok := v.lookupEnv("VAULT_ROLE_ID"); a.AppRole.RoleIDFile == "" && !ok {
			v.add("vault.auth.approle.role_id_file", "required for the approle method (or set VAULT_ROLE_ID)")
		}
	case AuthKubernetes:
		if a.Kubernetes.Role == "" {
			v.add("vault.auth.kubernetes.role", "required for the kubernetes method")
		}
	case AuthJWT:
		if a.JWT.Role == "" {
			v.add("vault.auth.jwt.role", "required for the jwt method")
		}
		if a.JWT.TokenFile == "" {
			v.add("vault.auth.jwt.token_file", "required for the jwt method")
		}
	default:
		if err := CheckAuthMethod(a.Method); err != nil {
			v.add("vault.auth.method", "%v", err)
		}
	}
}

func (v *validator) defaults(d *Defaults) {
	v.kvVersion("defaults.kv_version", d.KVVersion)
	v.refresh("defaults.refresh_interval", d.RefreshInterval)
	v.mode("defaults.mode", d.Mode)
	v.mode("defaults.dir_mode", d.DirMode)
	v.id("defaults.owner", d.Owner)
	v.id("defaults.group", d.Group)
	v.actions("defaults.on_change", d.OnChange)
}

func (v *validator) secret(c *Config, s *Secret, p string) {
	switch {
	case s.Name == "":
		v.add(p+".name", "required")
	case !nameRe.MatchString(s.Name):
		v.add(p+".name", "%q must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", s.Name)
	}
	if s.Lease != nil {
		v.leaseSecret(s, p)
	} else if s.Path == "" {
		v.add(p+".path", "required (the secret's path inside its mount, without data/), or a lease:")
	}
	if !s.HasFiles() {
		v.destination(p+".destination", s.Destination)
	}
	// Inherited values were checked under defaults:, so only report what
	// this secret sets itself.
	own := func(field string) bool { return v.idx.has(p + "." + field) }
	if s.Lease == nil {
		if s.Mount == "" {
			v.add(p+".mount", "must not be empty")
		}
		if own("kv_version") {
			v.kvVersion(p+".kv_version", s.KVVersion)
		}
		if s.Version < 0 {
			v.add(p+".version", "%d must be 0 (latest) or a positive KV v2 version", s.Version)
		} else if s.Version > 0 && s.KVVersion == KV1 {
			v.add(p+".version", "a version pin needs KV v2, but kv_version is 1")
		}
	}
	if own("refresh_interval") {
		v.refresh(p+".refresh_interval", s.RefreshInterval)
	}
	if own("mode") {
		v.mode(p+".mode", s.Mode)
	}
	if own("dir_mode") {
		v.mode(p+".dir_mode", s.DirMode)
	}
	if own("owner") {
		v.id(p+".owner", s.Owner)
	}
	if own("group") {
		v.id(p+".group", s.Group)
	}
	if v.idx.given(p + ".on_change") {
		v.actions(p+".on_change", s.OnChange)
	}
	if s.HasFiles() {
		v.fileSet(c, s, p)
		return
	}
	v.output(c, s, p)
}

func (v *validator) output(c *Config, s *Secret, p string) {
	var set []string
	for _, f := range []struct{ name, val string }{
		{"template", s.Template}, {"template_file", s.TemplateFile}, {"key", s.Key}, {"format", s.Format},
	} {
		// A field that failed to decode was given all the same.
		if f.val != "" || v.idx.brokenAt(p+"."+f.name) {
			set = append(set, f.name)
		}
	}
	switch len(set) {
	case 0:
		v.add(p, "one of template, template_file, key or format is required")
		return
	case 1:
	default:
		v.add(p+"."+set[1], "%s and %s are mutually exclusive: set exactly one of template, template_file, key, format", set[0], set[1])
		return
	}
	if set[0] != "template" && set[0] != "template_file" {
		for _, f := range []struct{ name, val string }{{"left_delimiter", s.LeftDelimiter}, {"right_delimiter", s.RightDelimiter}} {
			if f.val != "" {
				v.add(p+"."+f.name, "only applies to template and template_file")
			}
		}
		if s.Key == "" && s.Format == "" {
			return // the field failed to decode, and that is reported
		}
		if err := v.compile(s); err != nil {
			v.add(p+"."+set[0], "%v", err)
		}
		return
	}
	if !s.UsesTemplate() {
		return // the template failed to decode, and that is reported
	}
	if s.TemplateFile != "" {
		path := resolve(c.File, s.TemplateFile)
		data, err := ReadFile(path, MaxTemplateFile)
		if err != nil {
			v.add(p+".template_file", "cannot read %q: %s", s.TemplateFile, readError(path, err))
			return
		}
		s.TemplateText = string(data)
	} else {
		s.TemplateText = s.Template
		if n := v.idx.node(p + ".template"); n != nil {
			s.TemplateFirstLine = n.Line
			if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
				s.TemplateFirstLine++
			}
		}
	}
	if err := v.compile(s); err != nil {
		v.templateProblem(s, p, err)
	}
}

// compile has the renderer check s's output.
func (v *validator) compile(s *Secret) error {
	if v.loader.Templates == nil {
		return nil
	}
	return v.loader.Templates.Check(s)
}

var tmplLineRe = regexp.MustCompile(`^template: [^:]*:(\d+):(?:\d+:)? ?(.*)$`)

// templateProblem points a template parse error at the config-file line of
// an inline template, or at the template file's own line.
func (v *validator) templateProblem(s *Secret, p string, err error) {
	msg := err.Error()
	m := tmplLineRe.FindStringSubmatch(msg)
	if s.TemplateFile != "" {
		field := p + ".template_file"
		if m != nil {
			msg = fmt.Sprintf("%s:%s: %s", s.TemplateFile, m[1], m[2])
		}
		v.add(field, "%s", msg)
		return
	}
	field := p + ".template"
	line := v.idx.line(field)
	if m != nil {
		n, _ := strconv.Atoi(m[1])
		if s.TemplateFirstLine > 0 {
			line = s.TemplateFirstLine + n - 1
		}
		msg = fmt.Sprintf("template line %d: %s", n, m[2])
	}
	v.probs = append(v.probs, Problem{File: v.idx.file, Line: line, Field: field, Msg: msg})
}

func (v *validator) kvVersion(field, val string) {
	if err := CheckKVVersion(val); err != nil {
		v.add(field, "%v", err)
	}
}

func (v *validator) refresh(field string, d Duration) {
	if msg := d.problem(); msg != "" {
		v.add(field, "%s", msg)
	} else if d.Duration < MinRefreshInterval {
		v.add(field, "%q is below the minimum of %s", d.raw, MinRefreshInterval)
	}
}

func (v *validator) mode(field string, m FileMode) {
	if msg := m.problem(); msg != "" {
		v.add(field, "%s", msg)
	}
}

func (v *validator) id(field string, id *int) {
	if id != nil && *id < 0 {
		v.add(field, "%d must be a numeric id >= 0", *id)
	}
}
