package supervisor

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestChildEnv(t *testing.T) {
	base := []string{
		"PATH=/usr/bin", "HOME=/root", "VAULT_TOKEN=hvs.x", "SHARED=base", "HOME=/home/app", "NOEQUALS",
	}
	got, err := ChildEnv(base, map[string]map[string]any{
		"kv/b": {
			"STR": "plain", "NUM": json.Number("1e21"), "BIG": json.Number("12345678901234567890"),
			"TRUE": true, "NULL": nil, "FLOAT": 3.0,
			"OBJ":    map[string]any{"z": "<&>", "a": []any{json.Number("1.50"), "x", nil}},
			"SHARED": "secret",
		},
		"kv/a": {"_under": "u", "A1": "multi\nline"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PATH=/usr/bin", "HOME=/home/app",
		"A1=multi\nline", "BIG=12345678901234567890", "FLOAT=3", "NULL=null", "NUM=1e21",
		`OBJ={"a":[1.50,"x",null],"z":"\u003c\u0026\u003e"}`, "SHARED=secret", "STR=plain", "TRUE=true", "_under=u",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ChildEnv =\n%q\nwant\n%q", got, want)
	}
	again, _ := ChildEnv(base, map[string]map[string]any{
		"kv/a": {"_under": "u", "A1": "multi\nline"},
		"kv/b": {"STR": "plain", "NUM": json.Number("1e21"), "BIG": json.Number("12345678901234567890"),
			"TRUE": true, "NULL": nil, "FLOAT": 3.0, "SHARED": "secret",
			"OBJ": map[string]any{"z": "<&>", "a": []any{json.Number("1.50"), "x", nil}}},
	})
	if !slices.Equal(got, again) {
		t.Error("ChildEnv is not deterministic")
	}
}

func TestChildEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secrets map[string]map[string]any
		want    []string
	}{
		{
			name:    "same field in two secrets",
			secrets: map[string]map[string]any{"kv/one": {"TOKEN": "value-one"}, "kv/two": {"TOKEN": "value-two"}},
			want:    []string{`"kv/one"`, `"kv/two"`, "TOKEN"},
		},
		{
			name:    "bad names",
			secrets: map[string]map[string]any{"kv/app": {"db-password": "v1", "1ABC": "v2", "": "v3"}},
			want:    []string{`"kv/app"`, `"db-password"`, `"1ABC"`, `""`, "[A-Za-z_][A-Za-z0-9_]*"},
		},
		{
			name:    "NUL in a value",
			secrets: map[string]map[string]any{"kv/app": {"KEY": "value\x00more"}},
			want:    []string{`"kv/app"`, `"KEY"`, "NUL"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ChildEnv(nil, tc.secrets)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %s", err, w)
				}
			}
			for _, fields := range tc.secrets {
				for _, v := range fields {
					if s, _ := v.(string); s != "" && strings.Contains(err.Error(), s) {
						t.Errorf("error %q holds the value %q", err, s)
					}
				}
			}
		})
	}
}

func TestScrubCredentials(t *testing.T) {
	in := []string{
		"PATH=/bin",
		"VAULT_TOKEN=hvs.secret", "VAULT_ROLE_ID=role", "VAULT_SECRET_ID=sid", "VAULT_CLIENT_KEY=/k.pem",
		"VAULT_ADDR=https://user:pass@vault:8200/", "VAULT_NAMESPACE=ns", "VAULT_CACERT=/ca.pem",
		"VAULT_CAPATH=/ca", "VAULT_TLS_SERVER_NAME=vault", "VAULT_SKIP_VERIFY=false", "VAULT_CLIENT_TIMEOUT=5s",
		"OTEL_EXPORTER_OTLP_HEADERS=a=b", "OTEL_EXPORTER_OTLP_TRACES_HEADERS=c=d", "OTEL_SERVICE_NAME=app",
		"SIDECAR_LOG_LEVEL=debug", "JUNK", "=x",
	}
	want := []string{
		"PATH=/bin", "VAULT_ADDR=https://vault:8200/", "VAULT_NAMESPACE=ns", "VAULT_CACERT=/ca.pem",
		"VAULT_CAPATH=/ca", "VAULT_TLS_SERVER_NAME=vault", "VAULT_SKIP_VERIFY=false", "VAULT_CLIENT_TIMEOUT=5s",
		"OTEL_SERVICE_NAME=app", "SIDECAR_LOG_LEVEL=debug",
	}
	orig := slices.Clone(in)
	if got := ScrubCredentials(in); !slices.Equal(got, want) {
		t.Errorf("ScrubCredentials =\n%q\nwant\n%q", got, want)
	}
	if !slices.Equal(in, orig) {
		t.Error("ScrubCredentials modified its input")
	}
	for addr, want := range map[string]string{
		"http://127.0.0.1:8200":          "VAULT_ADDR=http://127.0.0.1:8200",
		"https://tok@vault":              "VAULT_ADDR=https://vault",
		"https://vault/a@b":              "VAULT_ADDR=https://vault/a@b",
		"user:pass@vault:8200":           "", // opaque: cannot be told from a password
		"https://us%er:p@ss@vault:8200/": "", // does not parse
		"":                               "VAULT_ADDR=",
	} {
		got := ScrubCredentials([]string{"VAULT_ADDR=" + addr})
		if (want == "" && len(got) != 0) || (want != "" && !slices.Equal(got, []string{want})) {
			t.Errorf("VAULT_ADDR=%s: %q, want %q", addr, got, want)
		}
	}
}
