package config_test

import (
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// TestPathFieldsRefuseControlCharacters: a NUL, another control character
// or a bidi control in any path field fails the load at its line and
// field, defaults and actions included.
func TestPathFieldsRefuseControlCharacters(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	cases := []struct{ name, yaml, want string }{
		{"NUL in destination", "secrets:\n  - {name: a, path: p, key: v, destination: \"/s/a\\0b\"}\n",
			"c.yaml:2: secrets[0].destination: holds the character U+0000 at byte 4"},
		{"newline in path", "secrets:\n  - name: a\n    path: \"app\\ndb\"\n    key: v\n    destination: /s/a\n",
			"c.yaml:3: secrets[0].path: holds the character U+000A at byte 3"},
		{"DEL in template_file", "secrets:\n  - {name: a, path: p, destination: /s/a, template_file: \"t\\x7f.tpl\"}\n",
			"secrets[0].template_file: holds the character U+007F"},
		{"C1 in a token file", "vault: {auth: {token_file: \"/run/t\\u0085\"}}\nsecrets: [{name: a, path: p, key: v, destination: /s/a}]\n",
			"c.yaml:1: vault.auth.token_file: holds the character U+0085"},
		{"bidi override in destination", "secrets:\n  - {name: a, path: p, key: v, destination: \"/s/\u202egpj.exe\"}\n",
			"secrets[0].destination: holds the character U+202E"},
		{"isolate in pid_file", "secrets:\n  - name: a\n    path: p\n    key: v\n    destination: /s/a\n    on_change:\n      - signal: {name: HUP, pid_file: \"/run/\u2066app.pid\"}\n",
			"c.yaml:7: secrets[0].on_change[0].signal.pid_file: holds the character U+2066"},
		{"tab in a defaults headers_file", "defaults:\n  on_change:\n    - http: {url: \"http://127.0.0.1:1/r\", headers_file: \"/etc/h\\t\"}\nsecrets: [{name: a, path: p, key: v, destination: /s/a}]\n",
			"c.yaml:3: defaults.on_change[0].http.headers_file: holds the character U+0009"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := config.Loader{LookupEnv: noEnv}.Parse("c.yaml", []byte(c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant %s", err, c.want)
			}
		})
	}
	// A path with ordinary non-ASCII letters is fine.
	if _, err := (config.Loader{LookupEnv: noEnv}).Parse("c.yaml", []byte("secrets: [{name: a, path: café/db, key: v, destination: /s/données}]\n")); err != nil {
		t.Fatalf("non-ASCII path refused: %v", err)
	}
}

// TestPathVariablesRefuseControlCharacters: the same rule for the SIDECAR_*
// variables that name files; the error names the variable.
func TestPathVariablesRefuseControlCharacters(t *testing.T) {
	for key, value := range map[string]string{"SIDECAR_CONFIG": "/etc/c\x00.yaml", "SIDECAR_STATUS_FILE": "/run/s\u202e.json"} {
		_, err := config.ParseEnv([]string{key + "=" + value})
		if err == nil || !strings.Contains(err.Error(), key+": holds the character") {
			t.Errorf("%s: err = %v", key, err)
		}
	}
}
