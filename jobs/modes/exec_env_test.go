package modes

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestChildEnviron(t *testing.T) {
	base := []string{
		"PATH=/usr/bin", "HOME=/root", "VAULT_TOKEN=hvs.x", "SHARED=base", "HOME=/home/app", "NOEQUALS",
	}
	got, err := childEnviron(base, map[string]map[string]any{
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
		t.Errorf("childEnviron =\n%q\nwant\n%q", got, want)
	}
	again, _ := childEnviron(base, map[string]map[string]any{
		"kv/a": {"_under": "u", "A1": "multi\nline"},
		"kv/b": {"STR": "plain", "NUM": json.Number("1e21"), "BIG": json.Number("12345678901234567890"),
			"TRUE": true, "NULL": nil, "FLOAT": 3.0, "SHARED": "secret",
			"OBJ": map[string]any{"z": "<&>", "a": []any{json.Number("1.50"), "x", nil}}},
	})
	if !slices.Equal(got, again) {
		t.Error("childEnviron is not deterministic")
	}
}

func TestChildEnvironErrors(t *testing.T) {
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
			name: "dynamic-loader variables",
			secrets: map[string]map[string]any{"kv/app": {
				"LD_PRELOAD": "/shared/evil.so", "LD_LIBRARY_PATH": "/shared/lib", "LD_AUDIT": "/shared/a.so",
				"GCONV_PATH": "/shared/gconv", "GLIBC_TUNABLES": "glibc.x=1",
			}},
			want: []string{`"kv/app"`, `"LD_PRELOAD"`, `"LD_LIBRARY_PATH"`, `"LD_AUDIT"`, `"GCONV_PATH"`, `"GLIBC_TUNABLES"`, "dynamic loader"},
		},
		{
			name:    "NUL in a value",
			secrets: map[string]map[string]any{"kv/app": {"KEY": "value\x00more"}},
			want:    []string{`"kv/app"`, `"KEY"`, "NUL"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := childEnviron(nil, tc.secrets)
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
