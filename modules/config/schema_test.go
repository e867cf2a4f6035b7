package config_test

// The JSON Schema in docs/config.schema.json lets editors check config
// files. These tests keep it in sync with the Go types, the defaults the
// loader applies, and the example configs.
//
// The schema is compiled with github.com/santhosh-tekuri/jsonschema/v6, a
// test-only dependency (it does not reach the binary): it checks the schema
// against the draft 2020-12 meta-schema and validates documents the way
// editors do, which a hand-written subset validator could not promise.

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/secrets-sidecar/secrets-sidecar/jobs/render"
	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

const schemaFile = "../../docs/config.schema.json"

// rawSchema is the schema file as generic JSON, for walking it.
func rawSchema(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	return s
}

// compiled is the schema compiled (and checked against its meta-schema).
func compiled(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	s, err := c.Compile(schemaFile)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaFile, err)
	}
	return s
}

// resolve follows a local "$ref" ("#/$defs/x") to its definition.
func resolve(t *testing.T, root, node map[string]any) map[string]any {
	t.Helper()
	for {
		ref, ok := node["$ref"].(string)
		if !ok {
			return node
		}
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		if !ok {
			t.Fatalf("non-local $ref %q", ref)
		}
		def, ok := root["$defs"].(map[string]any)[name].(map[string]any)
		if !ok {
			t.Fatalf("$ref %q: no such definition", ref)
		}
		node = def
	}
}

// yamlFields lists a struct's YAML keys (yaml:"-" skipped).
func yamlFields(typ reflect.Type) map[string]reflect.StructField {
	fields := map[string]reflect.StructField{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f
	}
	return fields
}

var (
	durationType = reflect.TypeFor[config.Duration]()
	modeType     = reflect.TypeFor[config.FileMode]()
)

// types lists the JSON types a schema node allows ("type", or the types of
// its enum or const values).
func types(node map[string]any) []string {
	switch t := node["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, v := range t {
			out = append(out, v.(string))
		}
		return out
	}
	var vals []any
	if e, ok := node["enum"].([]any); ok {
		vals = e
	}
	var out []string
	for _, v := range vals {
		switch v.(type) {
		case string:
			out = append(out, "string")
		case float64:
			out = append(out, "integer")
		case bool:
			out = append(out, "boolean")
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// envRef is the schema definition of a ${NAME} reference.
const envRef = "#/$defs/env"

// unEnv takes apart a node written {anyOf: [X, {$ref: env}]}: it returns X
// merged with the node's other keywords, and whether the node accepts an
// environment variable reference.
func unEnv(node map[string]any) (map[string]any, bool) {
	alts, _ := node["anyOf"].([]any)
	var other map[string]any
	env := false
	for _, a := range alts {
		if m, _ := a.(map[string]any); m["$ref"] == envRef {
			env = true
		} else {
			other = m
		}
	}
	if !env || len(alts) != 2 {
		return node, false
	}
	merged := maps.Clone(other)
	for k, v := range node {
		if _, ok := merged[k]; !ok && k != "anyOf" {
			merged[k] = v
		}
	}
	return merged, true
}

// needsEnv reports whether a schema node for a Go type rejects a plain
// ${NAME} string unless it names the env alternative.
func needsEnv(typ reflect.Type, node map[string]any) bool {
	switch {
	case typ == durationType || typ == modeType || typ.Kind() == reflect.Int || typ.Kind() == reflect.Bool || typ.Kind() == reflect.Float64:
		return true
	case typ.Kind() != reflect.String:
		return false
	case node["enum"] != nil:
		return true
	}
	p, ok := node["pattern"].(string)
	return ok && !regexp.MustCompile(p).MatchString("${NAME}")
}

// walk asserts that the Go type and the schema node describe the same
// fields, recursively, with compatible types. Where the schema demands
// more than any string (an integer, boolean, enum or pattern), it must
// also accept a ${NAME} reference, which the loader expands.
func walk(t *testing.T, root map[string]any, at string, typ reflect.Type, node map[string]any) {
	t.Helper()
	orig := resolve(t, root, node)
	node, env := unEnv(orig)
	if !env && needsEnv(typ, node) {
		t.Errorf("%s: the schema does not accept ${NAME} here (anyOf [..., {$ref: %s}])", at, envRef)
	}
	switch typ {
	case durationType:
		if node["pattern"] == nil || !slices.Equal(types(node), []string{"string"}) {
			t.Errorf("%s: a duration, but the schema says %v", at, node)
		}
		return
	case modeType:
		if !slices.Contains(types(node), "string") || node["pattern"] == nil {
			t.Errorf("%s: a file mode, but the schema says %v", at, node)
		}
		return
	}
	switch typ.Kind() {
	case reflect.Pointer:
		walk(t, root, at, typ.Elem(), orig)
	case reflect.String:
		if !slices.Contains(types(node), "string") {
			t.Errorf("%s: a string field, but the schema allows %v", at, types(node))
		}
	case reflect.Bool:
		if !slices.Equal(types(node), []string{"boolean"}) {
			t.Errorf("%s: a bool field, but the schema allows %v", at, types(node))
		}
	case reflect.Int:
		if !slices.Equal(types(node), []string{"integer"}) {
			t.Errorf("%s: an int field, but the schema allows %v", at, types(node))
		}
	case reflect.Float64:
		if !slices.Equal(types(node), []string{"number"}) {
			t.Errorf("%s: a number field, but the schema allows %v", at, types(node))
		}
	case reflect.Interface:
		// Any scalar (lease parameters): the schema names the ones allowed.
		if len(types(node)) == 0 {
			t.Errorf("%s: a value of any type, but the schema names none", at)
		}
	case reflect.Slice:
		if node["type"] != "array" {
			t.Errorf("%s: a list, but the schema says type %v", at, node["type"])
			return
		}
		items, _ := node["items"].(map[string]any)
		walk(t, root, at+"[]", typ.Elem(), items)
	case reflect.Map:
		// A free-form mapping (http.headers): any key, values of one type.
		values, ok := node["additionalProperties"].(map[string]any)
		if node["type"] != "object" || !ok {
			t.Errorf("%s: a mapping, but the schema says type %v, additionalProperties %v", at, node["type"], node["additionalProperties"])
			return
		}
		walk(t, root, at+".*", typ.Elem(), values)
	case reflect.Struct:
		if node["type"] != "object" || node["additionalProperties"] != false {
			t.Errorf("%s: want type object with additionalProperties false (unknown keys are errors)", at)
		}
		props, _ := node["properties"].(map[string]any)
		fields := yamlFields(typ)
		for name, f := range fields {
			p, ok := props[name].(map[string]any)
			if !ok {
				t.Errorf("%s.%s (Go %s.%s) is not in the schema", at, name, typ.Name(), f.Name)
				continue
			}
			walk(t, root, at+"."+name, f.Type, p)
		}
		for name := range props {
			if _, ok := fields[name]; !ok {
				t.Errorf("%s.%s is in the schema but not in Go type %s", at, name, typ.Name())
			}
		}
	default:
		t.Errorf("%s: Go kind %s not handled by the sync test", at, typ.Kind())
	}
}

// TestSchemaMatchesGoTypes: every YAML field of config.Config is in the
// schema with a compatible type, and the schema has no field Go lacks.
func TestSchemaMatchesGoTypes(t *testing.T) {
	root := rawSchema(t)
	walk(t, root, "config", reflect.TypeFor[config.Config](), root)
}

// nodeAt returns the schema node at a dotted path of properties
// ("secrets[].format").
func nodeAt(t *testing.T, root map[string]any, path string) map[string]any {
	t.Helper()
	node := root
	for _, part := range strings.Split(path, ".") {
		node = resolve(t, root, node)
		name, isList := strings.CutSuffix(part, "[]")
		next, ok := node["properties"].(map[string]any)[name].(map[string]any)
		if !ok {
			t.Fatalf("%s: no property %q", path, name)
		}
		node = next
		if isList {
			node = resolve(t, root, node)["items"].(map[string]any)
		}
	}
	return node
}

func stringValues(vals []any) []string {
	var out []string
	for _, v := range vals {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// TestSchemaEnumsMatchGo: the schema's enums are the values config accepts.
func TestSchemaEnumsMatchGo(t *testing.T) {
	root := rawSchema(t)
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"vault.auth.method", []string{config.AuthToken, config.AuthAppRole, config.AuthKubernetes, config.AuthJWT}},
		{"secrets[].format", render.Formats()},
		{"secrets[].files[].content", []string{config.ContentChain, config.ContentBundle, config.ContentPKCS12}},
		{"secrets[].kv_version", []string{config.KVAuto, config.KV1, config.KV2}},
		{"defaults.kv_version", []string{config.KVAuto, config.KV1, config.KV2}},
		{"secrets[].on_change[].signal.name", signalNames()},
		{"defaults.on_change[].signal.name", signalNames()},
	} {
		node, _ := unEnv(resolve(t, root, nodeAt(t, root, tc.path)))
		got := stringValues(node["enum"].([]any))
		slices.Sort(tc.want)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: schema enum %v, config accepts %v", tc.path, got, tc.want)
		}
	}
}

// signalNames are the signal names the loader accepts: each signal Go
// knows, with and without the SIG prefix.
func signalNames() []string {
	var out []string
	for sig := syscall.Signal(1); sig < 65; sig++ {
		if name := unix.SignalName(sig); name != "" {
			out = append(out, name, strings.TrimPrefix(name, "SIG"))
		}
	}
	return out
}

// TestSchemaDefaultsMatchLoader: every "default" in the schema is the value
// the loader fills in when the field is left out, and every field the
// loader defaults to a fixed value has a "default" in the schema.
func TestSchemaDefaultsMatchLoader(t *testing.T) {
	root := rawSchema(t)
	dir := t.TempDir()
	f := filepath.Join(dir, "min.yaml")
	if err := os.WriteFile(f, []byte("secrets:\n  - {name: a, path: p, destination: /s/a, key: k}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	// Actions of each kind, leaving out every field that has a default.
	acts := filepath.Join(dir, "actions.yaml")
	const list = "[{exec: {command: [x]}}, {http: {url: 'http://h'}}]"
	if err := os.WriteFile(acts, []byte("defaults: {on_change: "+list+"}\nsecrets:\n  - {name: a, path: p, destination: /s/a, key: k, on_change: "+list+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withActions, err := config.Load(acts)
	if err != nil {
		t.Fatal(err)
	}
	def, own := withActions.Defaults.OnChange, withActions.Secrets[0].OnChange
	// Fields the loader defaults when left out, and their values.
	loaded := map[string]any{
		"notify.debounce":                       cfg.Notify.Debounce,
		"notify.splay":                          cfg.Notify.Splay,
		"notify.attempts":                       cfg.Notify.Attempts,
		"defaults.on_start":                     *cfg.Defaults.OnStart,
		"defaults.on_change[].exec.timeout":     def[0].Exec.Timeout,
		"defaults.on_change[].exec.log_output":  def[0].Exec.LogOutput,
		"secrets[].on_change[].exec.log_output": own[0].Exec.LogOutput,
		"defaults.on_change[].http.method":      def[1].HTTP.Method,
		"defaults.on_change[].http.timeout":     def[1].HTTP.Timeout,
		"secrets[].on_change[].exec.timeout":    own[0].Exec.Timeout,
		"secrets[].on_change[].http.method":     own[1].HTTP.Method,
		"secrets[].on_change[].http.timeout":    own[1].HTTP.Timeout,
		"vault.auth.method":                     cfg.Vault.Auth.Method,
		"vault.auth.approle.mount":              cfg.Vault.Auth.AppRole.Mount,
		"vault.auth.kubernetes.mount":           cfg.Vault.Auth.Kubernetes.Mount,
		"vault.auth.kubernetes.token_file":      cfg.Vault.Auth.Kubernetes.TokenFile,
		"vault.auth.jwt.mount":                  cfg.Vault.Auth.JWT.Mount,
		"vault.tls.insecure_skip_verify":        cfg.Vault.TLS.InsecureSkipVerify,
		"defaults.mount":                        cfg.Defaults.Mount,
		"defaults.kv_version":                   cfg.Defaults.KVVersion,
		"defaults.refresh_interval":             cfg.Defaults.RefreshInterval,
		"defaults.mode":                         cfg.Defaults.Mode,
		"defaults.dir_mode":                     cfg.Defaults.DirMode,
		"leases.revoke_on_shutdown":             cfg.Leases.RevokeOnShutdown,
		"leases.renew_fraction":                 *cfg.Leases.RenewFraction,
		"leases.replace_fraction":               *cfg.Leases.ReplaceFraction,
		"leases.max_new_leases":                 *cfg.Leases.MaxNewLeases,
		"secrets[].lease.method":                "GET",
	}
	seen := map[string]bool{}
	var visit func(path string, node map[string]any)
	visit = func(path string, node map[string]any) {
		if def, ok := node["default"]; ok {
			seen[path] = true
			want, ok := loaded[path]
			if !ok {
				t.Errorf("%s: schema default %v, but the loader sets no default there", path, def)
			} else if !sameValue(def, want) {
				t.Errorf("%s: schema default %v, loader default %v", path, def, want)
			}
		}
		node = resolve(t, root, node)
		if items, ok := node["items"].(map[string]any); ok {
			visit(path+"[]", items)
		}
		props, _ := node["properties"].(map[string]any)
		for name, p := range props {
			child := name
			if path != "" {
				child = path + "." + name
			}
			visit(child, p.(map[string]any))
		}
	}
	visit("", root)
	for path := range loaded {
		if !seen[path] {
			t.Errorf("%s: the loader defaults it to %v; the schema has no default", path, loaded[path])
		}
	}
}

// sameValue compares a schema default (JSON) with a loaded Go value.
func sameValue(def, v any) bool {
	switch v := v.(type) {
	case string:
		return def == v
	case bool:
		return def == v
	case int:
		f, ok := def.(float64)
		return ok && f == float64(v)
	case float64:
		f, ok := def.(float64)
		return ok && f == v
	case config.Duration:
		s, ok := def.(string)
		d, err := time.ParseDuration(s)
		return ok && err == nil && d == v.Duration
	case config.FileMode:
		s, ok := def.(string)
		m, err := strconv.ParseUint(s, 8, 32)
		return ok && err == nil && uint32(m) == uint32(v.FileMode)
	}
	return false
}

// yamlToJSON decodes YAML the way an editor's schema validator sees it.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// configFiles lists the config files (YAML with a top-level secrets: key)
// under examples/ and deployments/, and the loader's good test configs.
func configFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, dir := range []string{"../../examples", "../../deployments", "testdata/good"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if bytes.HasPrefix(data, []byte("secrets:")) || bytes.Contains(data, []byte("\nsecrets:")) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(files) < 10 {
		t.Fatalf("found only %d config files: %v", len(files), files)
	}
	return files
}

// TestExamplesMatchSchema: every example and deployment config is valid
// for the schema and for the loader.
func TestExamplesMatchSchema(t *testing.T) {
	schema := compiled(t)
	for _, f := range configFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(yamlToJSON(t, data)); err != nil {
			t.Errorf("%s: not valid for the schema:\n%v", f, err)
		}
		loader := config.Loader{LookupEnv: func(string) (string, bool) { return "", false }, Templates: render.NewSet()}
		if _, err := loader.Load(f); err != nil {
			t.Errorf("%s: not valid for the loader: %v", f, err)
		}
	}
}

// TestSchemaAcceptsEnv: a ${NAME} reference is valid for the schema in
// every field whose type the loader decides after expanding it.
func TestSchemaAcceptsEnv(t *testing.T) {
	const doc = `vault:
  address: ${VAULT_URL}
  timeout: ${TIMEOUT:-10s}
  tls:
    insecure_skip_verify: ${SKIP}
  auth:
    method: ${METHOD}
notify:
  attempts: ${ATTEMPTS}
  debounce: ${DEBOUNCE}
defaults:
  kv_version: ${KV}
  mode: ${MODE}
  owner: ${UID}
  on_start: ${ON_START}
secrets:
  - name: app-${ENV}
    path: ${ENV}/db
    destination: ${DIR}/db.env
    version: ${VERSION}
    format: ${FORMAT}
    on_change:
      - signal:
          name: ${SIGNAL}
          pid_file: ${DIR}/app.pid
      - http:
          url: ${HOOK}
          method: ${HTTP_METHOD}
          headers_file: ${DIR}/h
`
	if err := compiled(t).Validate(yamlToJSON(t, []byte(doc))); err != nil {
		t.Errorf("the schema rejects ${NAME} references: %v", err)
	}
	env := map[string]string{"VAULT_URL": "http://v:8200", "SKIP": "false", "METHOD": "token", "ATTEMPTS": "4",
		"DEBOUNCE": "1s", "KV": "2", "MODE": "0440", "UID": "1000", "ON_START": "true", "ENV": "prod", "DIR": "/run/s",
		"VERSION": "3", "FORMAT": "env", "SIGNAL": "HUP", "HOOK": "http://app/reload", "HTTP_METHOD": "PUT"}
	loader := config.Loader{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	if _, err := loader.Parse("env.yaml", []byte(doc)); err != nil {
		t.Errorf("the loader rejects it: %v", err)
	}
}

// act is a minimal config whose one secret has the given action.
func act(action string) string {
	return "secrets:\n  - {name: a, path: p, destination: /s/a, key: k, on_change: [" + action + "]}\n"
}

// TestSchemaRejects: configs the loader rejects for reasons a schema can
// express are rejected by the schema too, so an editor flags them.
func TestSchemaRejects(t *testing.T) {
	schema := compiled(t)
	const ok = "secrets:\n  - {name: a, path: p, destination: /s/a, key: k}\n"
	if err := schema.Validate(yamlToJSON(t, []byte(ok))); err != nil {
		t.Fatalf("the minimal config is rejected: %v", err)
	}
	for _, tc := range []struct{ name, yaml string }{
		{"no secrets", "vault: {address: http://v:8200}\n"},
		{"empty secrets", "secrets: []\n"},
		{"unknown top-level key", "secret:\n  - {name: a, path: p, destination: /s/a, key: k}\n" + ok},
		{"unknown secret key", "secrets:\n  - {name: a, path: p, destination: /s/a, key: k, dest: /x}\n"},
		{"unknown vault key", "vault: {url: http://v}\n" + ok},
		{"missing destination", "secrets:\n  - {name: a, path: p, key: k}\n"},
		{"relative destination", "secrets:\n  - {name: a, path: p, destination: s/a, key: k}\n"},
		{"directory destination", "secrets:\n  - {name: a, path: p, destination: /s/, key: k}\n"},
		{"two outputs", "secrets:\n  - {name: a, path: p, destination: /s/a, key: k, format: json}\n"},
		{"no output", "secrets:\n  - {name: a, path: p, destination: /s/a}\n"},
		{"bad format", "secrets:\n  - {name: a, path: p, destination: /s/a, format: toml}\n"},
		{"bad name", "secrets:\n  - {name: 'a b', path: p, destination: /s/a, key: k}\n"},
		{"bad mode", "secrets:\n  - {name: a, path: p, destination: /s/a, key: k, mode: '0999'}\n"},
		{"bad duration", "secrets:\n  - {name: a, path: p, destination: /s/a, key: k, refresh_interval: 5 minutes}\n"},
		{"bad kv_version", "defaults: {kv_version: 3}\n" + ok},
		{"negative owner", "defaults: {owner: -1}\n" + ok},
		{"negative version", "secrets:\n  - {name: a, path: p, destination: /s/a, key: k, version: -1}\n"},
		{"bad method", "vault: {auth: {method: ldap}}\n" + ok},
		{"kubernetes without role", "vault: {auth: {method: kubernetes}}\n" + ok},
		{"jwt without token_file", "vault: {auth: {method: jwt, jwt: {role: r}}}\n" + ok},
		{"client_cert without key", "vault: {tls: {client_cert: /c.pem}}\n" + ok},
		{"delimiter without template", "secrets:\n  - {name: a, path: p, destination: /s/a, key: k, left_delimiter: '[['}\n"},
		{"address not a URL", "vault: {address: vault:8200}\n" + ok},
		{"unclean destination", "secrets:\n  - {name: a, path: p, destination: /v/s/../../e/x, key: k}\n"},
		{"double slash destination", "secrets:\n  - {name: a, path: p, destination: /v//x, key: k}\n"},
		{"dot destination", "secrets:\n  - {name: a, path: p, destination: /v/./x, key: k}\n"},
		{"unknown notify key", "notify: {delay: 2s}\n" + ok},
		{"attempts 0", "notify: {attempts: 0}\n" + ok},
		{"attempts 11", "notify: {attempts: 11}\n" + ok},
		{"negative splay", "notify: {splay: -1s}\n" + ok},
		{"debounce not a duration", "notify: {debounce: soon}\n" + ok},
		{"on_start not a bool", "defaults: {on_start: maybe}\n" + ok},
		{"on_change not a list", "defaults: {on_change: {signal: {name: HUP, process: app}}}\n" + ok},
		{"action with no kind", act("{}")},
		{"action with two kinds", act("{signal: {name: HUP, process: a}, exec: {command: [x]}}")},
		{"unknown action kind", act("{kill: {process: a}}")},
		{"unknown signal", act("{signal: {name: SIGFOO, process: a}}")},
		{"lower-case signal", act("{signal: {name: hup, process: a}}")},
		{"signal without name", act("{signal: {process: a}}")},
		{"signal without target", act("{signal: {name: HUP}}")},
		{"signal with two targets", act("{signal: {name: HUP, process: a, pid_file: /run/a.pid}}")},
		{"relative pid_file", act("{signal: {name: HUP, pid_file: run/a.pid}}")},
		{"process is a path", act("{signal: {name: HUP, process: /usr/bin/a}}")},
		{"empty process", act("{signal: {name: HUP, process: ''}}")},
		{"exec without command", act("{exec: {timeout: 1s}}")},
		{"exec empty command", act("{exec: {command: []}}")},
		{"exec empty program", act("{exec: {command: ['', x]}}")},
		{"exec command a string", act("{exec: {command: /bin/reload}}")},
		{"exec argument a list", act("{exec: {command: [x, [y]]}}")},
		{"exec bad timeout", act("{exec: {command: [x], timeout: 30}}")},
		{"http without url", act("{http: {method: POST}}")},
		{"http ftp url", act("{http: {url: 'ftp://h/x'}}")},
		{"http url without host", act("{http: {url: 'http:///x'}}")},
		{"http bad method", act("{http: {url: 'http://h', method: 'GET /'}}")},
		{"http bad header name", act("{http: {url: 'http://h', headers: {'a b': x}}}")},
		{"http header value with newline", act(`{http: {url: 'http://h', headers: {X-A: "x\r\nY: z"}}}`)},
		{"http relative headers_file", act("{http: {url: 'http://h', headers_file: h.txt}}")},
		{"http unknown key", act("{http: {url: 'http://h', body: x}}")},
		{"pkcs12 without password_file", "secrets:\n  - {name: a, path: p, files: [{destination: /s/a.p12, content: pkcs12}]}\n"},
		{"password_file with bundle", "secrets:\n  - {name: a, path: p, files: [{destination: /s/b.pem, content: bundle, password_file: /run/pw}]}\n"},
		{"password_file with key", "secrets:\n  - {name: a, path: p, files: [{destination: /s/k, key: k, password_file: /run/pw}]}\n"},
		{"relative password_file", "secrets:\n  - {name: a, path: p, files: [{destination: /s/a.p12, content: pkcs12, password_file: run/pw}]}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := schema.Validate(yamlToJSON(t, []byte(tc.yaml))); err == nil {
				t.Errorf("the schema accepts:\n%s", tc.yaml)
			}
			// The loader agrees: these are invalid configs.
			f := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(f, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			loader := config.Loader{LookupEnv: func(string) (string, bool) { return "", false }, Templates: render.NewSet()}
			if _, err := loader.Load(f); err == nil {
				t.Errorf("the loader accepts it, but the schema rejects it")
			}
		})
	}
}
