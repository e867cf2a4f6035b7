package render

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

func TestMissingFieldIsAnErrorNamingSecretAndField(t *testing.T) {
	data := map[string]any{"username": "app", "password": "Zq9-missing-field-secret"}
	for _, tc := range []struct{ name, tpl, field, line string }{
		{"dot field", "DB_USER={{ .username }}\nDB_PASS={{ .pasword }}\n", "pasword", "db:2:"},
		{"root variable", "{{ $.pasword }}", "pasword", "db:1:"},
		{"inside range and with", "{{ range until 2 }}{{ with $.username }}{{ $.nope }}{{ end }}{{ end }}", "nope", "db:1:"},
		{"field of fromJson", `{{ (.cfg | fromJson).absent }}`, "absent", "db:1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := map[string]any{"cfg": `{"present": 1}`}
			for k, v := range data {
				d[k] = v
			}
			r, err := Compile(templateSecret("db", tc.tpl))
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.Render(d)
			if err == nil {
				t.Fatalf("no error; output %q", out)
			}
			msg := err.Error()
			for _, want := range []string{`secret "db"`, `map has no entry for key "` + tc.field + `"`, tc.line} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
			if strings.Contains(msg, "<no value>") || strings.Contains(msg, "Zq9-missing-field-secret") {
				t.Errorf("error %q shows <no value> or a value", msg)
			}
			if !errors.Is(err, ErrMissingField) {
				t.Error("errors.Is(err, ErrMissingField) = false")
			}
			var re *Error
			if !errors.As(err, &re) || re.Field != tc.field || re.Secret != "db" {
				t.Errorf("Error = %+v, want field %q of secret db", re, tc.field)
			}
			if out != nil {
				t.Errorf("partial output %q returned with the error", out)
			}
		})
	}
	t.Run("top-level miss lists the fields", func(t *testing.T) {
		_, err := renderTemplate(t, "{{ .pasword }}", data)
		if !errContains(err, "(the secret's fields: password, username)") {
			t.Fatalf("error = %v", err)
		}
	})
}

// TestMissingKeyNeedsTheOption proves that the error above comes from
// missingkey=error: with a map[string]string dot, text/template's default
// prints "<no value>" (the Vault Agent trap this package avoids).
func TestMissingKeyNeedsTheOption(t *testing.T) {
	dotMap := map[string]string{"a": "1"}
	var b bytes.Buffer
	if err := template.Must(template.New("x").Parse("{{ .b }}")).Execute(&b, dotMap); err != nil || b.String() != "<no value>" {
		t.Fatalf("default option: %q, %v (expected <no value>, nil)", b.String(), err)
	}
	b.Reset()
	err := template.Must(template.New("x").Option("missingkey=error").Parse("{{ .b }}")).Execute(&b, dotMap)
	if err == nil || !strings.Contains(err.Error(), `map has no entry for key "b"`) {
		t.Fatalf("missingkey=error: %v", err)
	}
}

func TestDotValues(t *testing.T) {
	data := map[string]any{
		"str": "plain", "big": json.Number("12345678901234567890"), "exp": json.Number("1e21"),
		"three": json.Number("3.0"), "f3": 3.0, "f21": 1e21, "yes": true, "no": false, "null": nil,
		"obj": map[string]any{"z": "<&>", "a": []any{json.Number("1.50"), "x", nil}},
		"arr": []any{"a", map[string]any{"k": true}},
	}
	for field, want := range map[string]string{
		"str": "plain", "big": "12345678901234567890", "exp": "1e21", "three": "3.0", "f3": "3", "f21": "1e+21",
		"yes": "true", "no": "false", "null": "null",
		"obj": `{"a":[1.50,"x",null],"z":"\u003c\u0026\u003e"}`, "arr": `["a",{"k":true}]`,
	} {
		got, err := renderTemplate(t, "{{ ."+field+" }}", data)
		if err != nil || got != want {
			t.Errorf("{{ .%s }} = %q, %v; want %q", field, got, err, want)
		}
	}
	got, err := renderTemplate(t, `{{ (.obj | fromJson).z }}`, data)
	if err != nil || got != "<&>" {
		t.Errorf("nested value through fromJson = %q, %v", got, err)
	}
}

func TestKey(t *testing.T) {
	data := map[string]any{
		"private_key": "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
		"plain":       "no newline",
		"a.b":         "exact wins",
		"a":           map[string]any{"b": "nested", "n": json.Number("1.0"), "t": true, "z": nil},
		"list":        []any{"zero", "one", map[string]any{"deep": "x"}},
		"n":           json.Number("42"),
		"obj":         map[string]any{"k": "v<"},
		"tricky":      "é ✓ $HOME 'q' \"d\" a=b\r\n",
	}
	for _, tc := range []struct{ key, want string }{
		{"private_key", "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"},
		{"plain", "no newline"},
		{"a.b", "exact wins"},
		{`a\.b`, "exact wins"},
		{"a.n", "1.0"},
		{"a.t", "true"},
		{"a.z", "null"},
		{"a", `{"b":"nested","n":1.0,"t":true,"z":null}`},
		{"list.1", "one"},
		{"list.2", `{"deep":"x"}`},
		{"list.2.deep", "x"},
		{"list.#", "3"},
		{"n", "42"},
		{"obj", `{"k":"v\u003c"}`},
		{"tricky", "é ✓ $HOME 'q' \"d\" a=b\r\n"},
	} {
		s := &config.Secret{Name: "k", Key: tc.key}
		r, err := Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		out, err := r.Render(data)
		if err != nil || string(out) != tc.want {
			t.Errorf("key %q = %q, %v; want %q", tc.key, out, err, tc.want)
		}
	}
	r, err := Compile(&config.Secret{Name: "k", Key: "a.missing"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Render(data)
	if err == nil || !strings.Contains(err.Error(), `secret "k": key "a.missing" not found`) || !errors.Is(err, ErrMissingField) {
		t.Fatalf("missing key error = %v", err)
	}
	if strings.Contains(err.Error(), "nested") || strings.Contains(err.Error(), "no newline") {
		t.Fatalf("missing key error shows a value: %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		s    *config.Secret
		want string
	}{
		{&config.Secret{Name: "f", Format: "toml"}, `secret "f": "toml" is not a format (json, yaml, env, properties)`},
		{&config.Secret{Name: "n"}, `secret "n": nothing to render`},
		{templateSecret("p", "ok\n{{ .a "), `secret "p": template: p:2: unclosed action`},
		{templateSecret("u", "{{ nosuchfunc }}"), `secret "u": template: u:1: function "nosuchfunc" not defined`},
		{templateSecret("t", "a\nb\n{{ template \"other\" . }}"), `secret "t": template: t:3:12: no such template "other"`},
	} {
		_, err := Compile(tc.s)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%s) = %v, want %q", tc.s.Name, err, tc.want)
		}
	}
	if _, err := Compile(templateSecret("d", `{{ define "x" }}X{{ end }}{{ template "x" }}{{ block "y" . }}Y{{ end }}`)); err != nil {
		t.Errorf("defined templates: %v", err)
	}
}

// TestCheckerWithConfigLoader runs the checker where it is used: the config
// loader turns its errors into file:line problems.
func TestCheckerWithConfigLoader(t *testing.T) {
	noEnv := func(string) (string, bool) { return "", false }
	set := NewSet()
	loader := config.Loader{Templates: set, LookupEnv: noEnv}
	src := "secrets:\n  - name: db\n    path: p\n    destination: /s/db\n    template: |\n      line one\n      {{ .a | nosuch }}\n"
	_, err := loader.Parse("c.yaml", []byte(src))
	want := `c.yaml:7: secrets[0].template: template line 2: function "nosuch" not defined`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("inline template: %v\nwant %s", err, want)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "db.tpl"), []byte("A={{ .a }}\nB={{ .b | upper }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := "secrets:\n  - name: db\n    path: p\n    destination: /s/db\n    template_file: db.tpl\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = loader.Load(cfgPath)
	if err == nil || !strings.Contains(err.Error(), "secrets[0].template_file: db.tpl:2:") {
		t.Fatalf("template_file: %v", err)
	}

	good := "secrets:\n  - name: db\n    path: p\n    destination: /s/db\n    template: \"U={{ .user | quote }}\"\n"
	c, err := loader.Parse("c.yaml", []byte(good))
	if err != nil {
		t.Fatalf("good template: %v", err)
	}
	set.mu.Lock()
	kept := set.kept[sourceOf(&c.Secrets[0])]
	set.mu.Unlock()
	r, err := set.Renderer(&c.Secrets[0])
	if err != nil {
		t.Fatal(err)
	}
	// Parsed once: the loader's compilation is the one the set hands out.
	if kept == nil || r != kept {
		t.Errorf("the set parsed the loaded template again (kept %p, handed out %p)", kept, r)
	}
	out, err := r.Render(map[string]any{"user": "bob"})
	if err != nil || string(out) != `U="bob"` {
		t.Fatalf("render of a loaded secret: %q, %v", out, err)
	}
	// A secret changed after loading is compiled anew, not served stale.
	changed := c.Secrets[0]
	changed.Template, changed.TemplateText = "V={{ .user }}", "V={{ .user }}"
	r2, err := set.Renderer(&changed)
	if err != nil || r2 == r {
		t.Fatalf("changed secret: %p %v (old %p)", r2, err, r)
	}
	if out, _ := r2.Render(map[string]any{"user": "bob"}); string(out) != "V=bob" {
		t.Errorf("changed secret rendered %q", out)
	}

	// The format rule lives here: the loader reports an unknown format at
	// its line, with the formats this package knows.
	_, err = loader.Parse("c.yaml", []byte("secrets:\n  - name: db\n    path: p\n    destination: /s/db\n    format: toml\n"))
	want = `c.yaml:5: secrets[0].format: "toml" is not a format (json, yaml, env, properties)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("format: %v\nwant %s", err, want)
	}
	for _, f := range Formats() {
		src := "secrets:\n  - name: db\n    path: p\n    destination: /s/db\n    format: " + f + "\n"
		if _, err := loader.Parse("c.yaml", []byte(src)); err != nil {
			t.Errorf("format %s: %v", f, err)
		}
	}
}

// Distinctive values: none of them, in any of these forms, may reach an error.
const (
	pw       = "Hunter2-Pa(ss-77xq"
	pemLine  = "MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAzRb9q3sQ"
	pinValue = "98765432"
	nestedPw = "nested-Zebra-4411"
)

func redactionData() map[string]any {
	return map[string]any{
		"password": pw,
		"b64":      base64.StdEncoding.EncodeToString([]byte("decoded-Walrus-9931")),
		"pem":      "-----BEGIN PRIVATE KEY-----\n" + pemLine + "\n-----END PRIVATE KEY-----\n",
		"pin":      json.Number(pinValue),
		"nested":   map[string]any{"inner": nestedPw, "list": []any{"list-Otter-5521"}},
		"quoted":   "quote\"and\nnewline-Heron-8812",
	}
}

func TestErrorsCarryNoSecretValues(t *testing.T) {
	secrets := []string{pw, pemLine, pinValue, nestedPw, "decoded-Walrus-9931", "list-Otter-5521", "newline-Heron-8812"}
	for _, tc := range []struct{ name, tpl string }{
		{"fail with the value", `{{ fail .password }}`},
		{"fail with its JSON", `{{ fail (.password | toJson) }}`},
		{"fail with its base64", `{{ fail (.password | b64enc) }}`},
		{"fail with its Go quoting", `{{ fail (printf "%q" .quoted) }}`},
		{"fail with its JSON quoting", `{{ fail (toJson .quoted) }}`},
		{"fail with a base64-decoded value", `{{ fail (.b64 | b64dec) }}`},
		{"fail with a number", `{{ fail .pin }}`},
		{"fail with a PEM", `{{ fail .pem }}`},
		{"fail with one PEM line", `{{ fail (index (splitList "\n" .pem) 1) }}`},
		{"fail with a nested value", `{{ fail (.nested | fromJson).inner }}`},
		{"fail with a nested list value", `{{ fail (index (.nested | fromJson).list 0) }}`},
		{"fail with the whole nested JSON", `{{ fail .nested }}`},
		{"fail with the dot", `{{ fail (toString .) }}`},
		{"regexp compile error quotes its pattern", `{{ regexFind .password "x" }}`},
		{"mustRegexMatch error", `{{ mustRegexMatch .password "x" }}`},
		{"urlParse panics with the URL", `{{ urlParse (print "http://" .password "%zz") }}`},
		{"mustToDate quotes its input", `{{ mustToDate "2006-01-02" .password }}`},
		{"semverCompare quotes its constraint", `{{ semverCompare .password "1.0.0" }}`},
		{"pkcs12 with a secret password", `{{ .b64 | b64dec | pkcs12keyPass .password }}`},
		{"pemToPkcs12 of a secret", `{{ pemToPkcs12 .password .pem }}`},
		{"rsaDecrypt of secrets", `{{ rsaDecrypt "RSA-OAEP" "SHA256" .password .pem }}`},
		{"filterCertChain of a secret", `{{ filterCertChain "leaf" .pem }}`},
		{"jwk of a secret", `{{ jwkPublicKeyPem .password }}`},
		{"mustFromJson of a secret", `{{ mustFromJson .password }}`},
		{"index out of range", `{{ index .password 99 }}`},
		{"call a value", `{{ call .password }}`},
		{"limit hit while holding a value", `{{ repeat 100000000 .password }}`},
		{"missing field next to values", `{{ .password }}{{ .absent }}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Compile(templateSecret("app", tc.tpl))
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.Render(redactionData())
			if err == nil {
				t.Fatalf("no error; output %q", out)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `secret "app": `) {
				t.Errorf("error does not name the secret: %s", msg)
			}
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Errorf("error contains %q: %s", s, msg)
				}
			}
			if errors.Unwrap(err) != nil {
				t.Errorf("error wraps %v, which could carry values", errors.Unwrap(err))
			}
		})
	}
	// The scrubbing is real: the value was in the raw error and is replaced.
	_, err := renderTemplate(t, `{{ fail .password }}`, redactionData())
	if !errContains(err, "error calling fail: [REDACTED]") {
		t.Fatalf("fail error = %v", err)
	}
}

func TestFormatErrorsCarryNoSecretValues(t *testing.T) {
	data := map[string]any{"bad-key": "Value-Gecko-1234", "NUL": "nul\x00Value-Ibis-5678"}
	r, err := Compile(&config.Secret{Name: "envs", Format: FormatEnv})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Render(data)
	if err == nil || !strings.Contains(err.Error(), `key "bad-key"`) || strings.Contains(err.Error(), "Gecko") {
		t.Fatalf("env error = %v", err)
	}
	delete(data, "bad-key")
	_, err = r.Render(data)
	if err == nil || !strings.Contains(err.Error(), `"NUL"`) || strings.Contains(err.Error(), "Ibis") {
		t.Fatalf("env NUL error = %v", err)
	}
}

func TestRenderIsConcurrencySafe(t *testing.T) {
	r, err := Compile(templateSecret("c", `{{ range $i := until 50 }}{{ $.v | upper | sha256sum | trunc 4 }}{{ end }}|{{ .v }}`))
	if err != nil {
		t.Fatal(err)
	}
	want := func(v string) string {
		out, err := renderTemplate(t, `{{ range $i := until 50 }}{{ $.v | upper | sha256sum | trunc 4 }}{{ end }}|{{ .v }}`, map[string]any{"v": v})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	expect := map[string]string{}
	for i := range 8 {
		v := fmt.Sprintf("value-%d", i)
		expect[v] = want(v)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := fmt.Sprintf("value-%d", i)
			for range 100 {
				out, err := r.Render(map[string]any{"v": v})
				if err != nil || string(out) != expect[v] {
					errs <- fmt.Sprintf("goroutine %d: %q, %v", i, out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
