package render

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
	"github.com/secrets-sidecar/secrets-sidecar/modules/logging"
)

// FuzzRender feeds arbitrary template text, a field name and a value to
// Compile and Render (and to every format and to key:). It fails on a panic,
// on a render that does not finish (the limits must bound every template),
// and on an error that contains the value.
//
//	go test -run '^$' -fuzz FuzzRender -fuzztime 5m ./jobs/render/
func FuzzRender(f *testing.F) {
	for _, seed := range []struct{ tpl, key, value string }{
		{"DB_USER={{ .username }}\nDB_PASS={{ .password }}\n", "password", "s3cr3t-value"},
		{"{{ .missing }}", "k", "v4lue"},
		{"{{ fail .password }}", "password", "leak-me-not"},
		{`{{ range $k, $v := . }}{{ $k }}={{ $v | quote }}{{ end }}`, "x", "it's \"q\""},
		{`{{ range until 5 }}{{ . }}{{ end }}{{ seq 3 }}{{ repeat 3 "ab" }}`, "n", "1"},
		{`{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}`, "a", "b"},
		{`{{ $s := "x" }}{{ range until 40 }}{{ $s = print $s $s }}{{ end }}`, "a", "b"},
		{`{{ $d := dict }}{{ $_ := set $d "a" $d }}{{ $d }}`, "a", "b"},
		{`{{ .nested | fromJson | toYaml }}{{ .password | b64enc | b64dec }}`, "password", "pw-Δ-✓"},
		{`{{ .pem | filterPEM "CERTIFICATE" }}{{ .password | sha256sum }}`, "pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
		{`{{ regexFind .password "x" }}{{ mustToDate "2006" .password }}`, "password", "((unbalanced"},
		{`{{ range 10 }}{{ if eq . 3 }}{{ break }}{{ end }}{{ . }}{{ end }}`, "a", "b"},
		{`{{ index . "password" | upper | lower }}{{ len . }}`, "password", "MiXeD"},
		{`{{ jwkPublicKeyPem .password }}{{ pkcs12key .password }}`, "password", `{"kty":"RSA"}`},
		{`{{ with $x := .password }}{{ $x | trunc 3 }}{{ else }}none{{ end }}`, "password", ""},
		{`{{ $d := dict }}{{ range 2000 }}{{ $d = dict "a" $d }}{{ end }}{{ $d }}`, "a", "b"},
		{`{{ $l := list "x" }}{{ range 40 }}{{ $l = list $l $l }}{{ end }}{{ toJson $l }}`, "a", "b"},
	} {
		f.Add(seed.tpl, seed.key, seed.value)
	}
	f.Fuzz(func(t *testing.T, tpl, key, value string) {
		data := map[string]any{
			"password": value,
			"username": "app",
			"n":        json.Number("42"),
			"nested":   map[string]any{"inner": value, "list": []any{value, true, nil}},
			key:        value,
		}
		type result struct {
			out []byte
			err error
		}
		done := make(chan result, 1)
		go func() {
			var res result
			defer func() { done <- res }()
			s := &config.Secret{Name: "fuzz", Template: tpl, TemplateText: tpl}
			if err := NewSet().Check(s); err != nil {
				return
			}
			r, err := Compile(s)
			if err != nil {
				return // e.g. a call to an undefined template
			}
			res.out, res.err = r.Render(data)
		}()
		var res result
		select {
		case res = <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("render did not finish in 30 s: template %q", tpl)
		}
		checkErr(t, res.err, value, "template "+tpl)

		for _, format := range []string{FormatJSON, FormatYAML, FormatEnv, FormatProperties} {
			r, err := Compile(&config.Secret{Name: "fuzz", Format: format})
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Render(data)
			checkErr(t, err, value, "format "+format)
		}
		if key != "" {
			r, err := Compile(&config.Secret{Name: "fuzz", Key: key})
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.Render(data)
			checkErr(t, err, value, "key "+key)
			if err == nil && string(out) != value && data[key] == value {
				t.Fatalf("key %q = %q, want %q", key, out, value)
			}
		}
	})
}

func checkErr(t *testing.T, err error, value, what string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, "template panicked") {
		t.Fatalf("%s: %s", what, msg)
	}
	// A value that overlaps the marker can reappear around it; any other
	// value of scrubbable length must be gone.
	marker := logging.RedactedText
	if len(value) >= logging.MinScrubbed && !strings.ContainsAny(value, "[]") && !strings.Contains(marker, value) &&
		strings.Contains(msg, value) {
		t.Fatalf("%s: error contains the value %q: %s", what, value, msg)
	}
}
