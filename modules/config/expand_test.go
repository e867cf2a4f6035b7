package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

// envOf is a LookupEnv over a fixed map.
func envOf(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
}

// envSecret is a config with one secret whose extra fields are given.
func envSecret(extra string) string {
	return "secrets:\n  - name: a\n    path: p\n    destination: /s/a\n" + extra
}

func TestEnvExpansion(t *testing.T) {
	vars := map[string]string{
		"PREFIX": "team/app", "KV": "2", "FLAG": "true", "EMPTY": "", "MODE": "0440",
		"INJECT": "x\nfoo: bar", "FLOW": "{a: b}", "UID": "1000", "DIR": "/run/s",
		"EVERY": "10s", "ATTEMPTS": "4", "NULL": "null", "VAULT_ROLE_FILE": "/run/role",
	}
	for _, tc := range []struct {
		name, yaml string
		check      func(t *testing.T, c *config.Config)
	}{
		{"whole value", envSecret("    key: k\n    mount: ${PREFIX}\n"), func(t *testing.T, c *config.Config) {
			want(t, c.Secrets[0].Mount, "team/app")
		}},
		{"inside a value", "secrets:\n  - {name: a, path: '${PREFIX}/db', destination: '${DIR}/a.env', key: k}\n", func(t *testing.T, c *config.Config) {
			want(t, c.Secrets[0].Path, "team/app/db")
			want(t, c.Secrets[0].Destination, "/run/s/a.env")
		}},
		{"default when unset", envSecret("    key: k\n    mount: ${NOPE:-kv}\n"), func(t *testing.T, c *config.Config) {
			want(t, c.Secrets[0].Mount, "kv")
		}},
		{"default when empty", envSecret("    key: k\n    mount: ${EMPTY:-kv}\n"), func(t *testing.T, c *config.Config) {
			want(t, c.Secrets[0].Mount, "kv")
		}},
		{"set but empty without default", envSecret("    key: k\n    mount: x${EMPTY}y\n"), func(t *testing.T, c *config.Config) {
			want(t, c.Secrets[0].Mount, "xy")
		}},
		{"int field", envSecret("    key: k\n    version: ${KV}\n    kv_version: ${KV}\n"), func(t *testing.T, c *config.Config) {
			want(t, c.Secrets[0].Version, 2)
			want(t, c.Secrets[0].KVVersion, "2")
		}},
		{"bool, id, mode, duration", envSecret("    key: k\n    on_start: ${FLAG}\n    owner: ${UID}\n    mode: ${MODE}\n    refresh_interval: ${EVERY}\n"), func(t *testing.T, c *config.Config) {
			want(t, *c.Secrets[0].OnStart, true)
			want(t, *c.Secrets[0].Owner, 1000)
			want(t, c.Secrets[0].Mode.String(), "0440")
			want(t, c.Secrets[0].RefreshInterval.String(), "10s")
		}},
		{"notify attempts", "notify:\n  attempts: ${ATTEMPTS}\n" + envSecret("    key: k\n"), func(t *testing.T, c *config.Config) {
			want(t, c.Notify.Attempts, 4)
		}},
		{"expanded to empty is unset", envSecret("    key: k\n    mount: ${EMPTY}\n    refresh_interval: ${NULL}\n"), func(t *testing.T, c *config.Config) {
			want(t, c.Secrets[0].Mount, "secret")
			want(t, c.Secrets[0].RefreshInterval.String(), "5m0s")
		}},
		{"no injection: newline", envSecret("    key: ${INJECT}\n"), func(t *testing.T, c *config.Config) {
			want(t, c.Secrets[0].Key, "x\nfoo: bar")
		}},
		{"no injection: flow mapping", envSecret("    key: ${FLOW}\n"), func(t *testing.T, c *config.Config) {
			want(t, c.Secrets[0].Key, "{a: b}")
		}},
		{"escape", "secrets:\n  - {name: a, path: $PREFIX, destination: /s/a, key: '$${PREFIX}', mount: a$$b}\n", func(t *testing.T, c *config.Config) {
			want(t, c.Secrets[0].Key, "${PREFIX}")
			want(t, c.Secrets[0].Mount, "a$$b")
			want(t, c.Secrets[0].Path, "$PREFIX")
		}},
		{"template kept", envSecret("    template: 'echo ${NOPE} ${PREFIX}'\n"), func(t *testing.T, c *config.Config) {
			want(t, c.Secrets[0].TemplateText, "echo ${NOPE} ${PREFIX}")
		}},
		{"delimiters kept", envSecret("    template: '${ .x }'\n    left_delimiter: '${'\n    right_delimiter: '}'\n"), func(t *testing.T, c *config.Config) {
			want(t, c.Secrets[0].LeftDelimiter, "${")
		}},
		{"exec command kept, header expanded", envSecret("    key: k\n    on_change:\n      - exec: {command: ['${DIR}/reload', '${VAULT_TOKEN:-none}', '$${HOME}']}\n      - http: {url: 'http://h', headers: {X-Team: '${PREFIX}'}}\n"), func(t *testing.T, c *config.Config) {
			want(t, strings.Join(c.Secrets[0].OnChange[0].Exec.Command, " "), "${DIR}/reload ${VAULT_TOKEN:-none} $${HOME}")
			want(t, c.Secrets[0].OnChange[1].HTTP.Headers["X-Team"], "team/app")
		}},
		{"credential variables under vault:", "vault:\n  auth:\n    method: approle\n    approle: {role_id_file: '${VAULT_ROLE_FILE}', secret_id_file: /run/sid}\n" + envSecret("    key: k\n"), func(t *testing.T, c *config.Config) {
			want(t, c.Vault.Auth.AppRole.RoleIDFile, "/run/role")
		}},
		{"alias expanded once per use", "defaults: {mount: &m '${PREFIX}'}\nsecrets:\n  - {name: a, path: *m, destination: /s/a, key: k}\n", func(t *testing.T, c *config.Config) {
			want(t, c.Defaults.Mount, "team/app")
			want(t, c.Secrets[0].Path, "team/app")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Loader{LookupEnv: envOf(vars)}.Parse("config.yaml", []byte(tc.yaml))
			if err != nil {
				t.Fatalf("%v\n%s", err, tc.yaml)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func want[T comparable](t *testing.T, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

// TestEnvExpansionErrors: a bad or unset reference, or an expanded value of
// the wrong type, names the file, line, field and variable, and never the
// variable's value.
func TestEnvExpansionErrors(t *testing.T) {
	const marker = "secretmarker"
	vars := map[string]string{"VAULT_TOKEN": marker, "BAO_SECRET_ID": marker, "OTEL_EXPORTER_OTLP_HEADERS": "a=" + marker, "KV": marker, "FLAG": marker, "MODE": marker, "DUR": marker,
		"ADDR": "https://user:" + marker + "@" + marker + ":8200", "NAME": marker + " x", "NEG": "-7", "DEST": marker, "NUM": "2",
		"SIG": "sighup", "METHOD": "post", "SUB": marker}
	for _, tc := range []struct{ name, yaml, want string }{
		{"unset", "secrets:\n  - name: a\n    path: ${APP_PREFIX}/db\n    destination: /s/a\n    key: k\n",
			"config.yaml:3:11: secrets[0].path: environment variable APP_PREFIX is not set (use ${APP_PREFIX:-default} for a default)"},
		{"unset, quoted", "secrets:\n  - name: a\n    path: \"db/${APP_PREFIX}\"\n    destination: /s/a\n    key: k\n",
			"config.yaml:3:15: secrets[0].path: environment variable APP_PREFIX is not set"},
		{"credential in a header", envSecret("    key: k\n    on_change:\n      - http: {url: 'http://h', headers: {X-Token: 'Bearer ${VAULT_TOKEN}'}}\n"),
			"headers.X-Token: VAULT_TOKEN holds one of the sidecar's credentials: it can be used only under vault:"},
		{"credential in a path", envSecret("    key: k\n    mount: ${BAO_SECRET_ID:-x}\n"),
			"secrets[0].mount: BAO_SECRET_ID holds one of the sidecar's credentials"},
		{"OTLP headers in a URL", envSecret("    key: k\n    on_change:\n      - http: {url: 'http://h/${OTEL_EXPORTER_OTLP_HEADERS}'}\n"),
			"url: OTEL_EXPORTER_OTLP_HEADERS holds one of the sidecar's credentials"},
		{"nested", envSecret("    key: k\n    mount: ${A:-${B}}\n"),
			"config.yaml:6:12: secrets[0].mount: nested ${...} is not supported"},
		{"unterminated", envSecret("    key: k\n    mount: ${A\n"),
			"secrets[0].mount: ${ without a closing }"},
		{"bad name", envSecret("    key: k\n    mount: ${1A}\n"),
			`secrets[0].mount: "${1A}" is not an environment variable reference`},
		{"int type error", envSecret("    key: k\n    version: ${KV}\n"),
			"config.yaml:6: secrets[0].version: value from ${KV} is not an integer"},
		{"quoted stays a string", envSecret("    key: k\n    version: \"${NUM}\"\n"),
			"config.yaml:6: secrets[0].version: value from ${NUM} is not an integer"},
		{"bool type error", envSecret("    key: k\n    on_start: ${FLAG}\n"),
			"secrets[0].on_start: value from ${FLAG} is not true or false"},
		{"kv_version", envSecret("    key: k\n    kv_version: ${KV}\n"),
			"secrets[0].kv_version: value from ${KV} is not a KV version"},
		{"mode", envSecret("    key: k\n    mode: ${MODE}\n"),
			"secrets[0].mode: value from ${MODE} is not an octal file mode"},
		{"duration", envSecret("    key: k\n    refresh_interval: x${DUR}\n"),
			`secrets[0].refresh_interval: value from "x${DUR}" is not a duration`},
		{"address", "vault: {address: '${ADDR}x'}\n" + envSecret("    key: k\n"),
			`vault.address: value from "${ADDR}x" is not an http:// or https:// URL`},
		{"name", "secrets:\n  - {name: '${NAME}', path: p, destination: /s/a, key: k}\n",
			"secrets[0].name: value from ${NAME} must be 1-128"},
		{"negative owner", envSecret("    key: k\n    owner: ${NEG}\n"),
			"secrets[0].owner: value from ${NEG} must be a numeric id >= 0"},
		{"keys not expanded", envSecret("    key: k\n    on_change:\n      - http: {url: 'http://h', headers: {'X-${KV}': v}}\n"),
			`headers.X-${KV}: "X-${KV}" is not a valid header name`},
		{"relative destination", "secrets:\n  - {name: a, path: p, destination: '${DEST}', key: k}\n",
			"secrets[0].destination: value from ${DEST} must be an absolute path"},
		// Hints that spell the value corrected would show it in another form.
		{"signal hint", envSecret("    key: k\n    on_change:\n      - signal: {name: '${SIG}', process: app}\n"),
			"signal.name: value from ${SIG} is not a signal: names are upper case (the corrected value is not shown: it comes from a variable)"},
		{"method hint", envSecret("    key: k\n    on_change:\n      - http: {url: 'http://h', method: '${METHOD}'}\n"),
			"http.method: value from ${METHOD}: methods are case-sensitive (the corrected value is not shown: it comes from a variable)"},
		{"clean path hint", "secrets:\n  - {name: a, path: p, destination: '/s/${SUB}//x', key: k}\n",
			`secrets[0].destination: value from "/s/${SUB}//x" is not a clean path; the corrected value is not shown: it comes from a variable`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Loader{LookupEnv: envOf(vars)}.Parse("config.yaml", []byte(tc.yaml))
			var probs config.Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Parse = %v, want Problems", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got:\n%v\nwant it to contain:\n%s", err, tc.want)
			}
			if strings.Contains(err.Error(), marker) || strings.Contains(err.Error(), strings.ToUpper(marker)) || strings.Contains(err.Error(), "-7") ||
				strings.Contains(err.Error(), "SIGHUP") || strings.Contains(err.Error(), "POST") {
				t.Errorf("the error shows a variable's value:\n%v", err)
			}
		})
	}
}
