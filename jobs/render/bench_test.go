package render

import (
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

const envTemplate = `DB_HOST={{ .host }}
DB_PORT={{ .port }}
DB_NAME={{ .name }}
DB_USER={{ .user }}
DB_PASSWORD={{ .password }}
REDIS_URL={{ .redis_url }}
API_KEY={{ .api_key }}
JWT_SECRET={{ .jwt_secret }}
SMTP_PASSWORD={{ .smtp_password }}
FEATURE_FLAGS={{ .flags }}
`

func benchData() map[string]any {
	return map[string]any{
		"host": "db.internal", "port": "5432", "name": "app", "user": "app_rw",
		"password": "c2VjcmV0LXBhc3N3b3JkLTEyMzQ1Ng", "redis_url": "redis://:pw@redis.internal:6379/0",
		"api_key": "AKIA0123456789ABCDEF", "jwt_secret": "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
		"smtp_password": "smtp-pass", "flags": "a,b,c",
	}
}

// BenchmarkRender renders a typical 10-field env template.
func BenchmarkRender(b *testing.B) {
	r, err := Compile(templateSecret("bench", envTemplate))
	if err != nil {
		b.Fatal(err)
	}
	data := benchData()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderFunctions is the same with a sprig function per field, to
// show the cost of the size-checking function wrappers.
func BenchmarkRenderFunctions(b *testing.B) {
	r, err := Compile(templateSecret("bench", `{{ range $k, $v := . }}{{ $k | upper }}={{ $v | quote }}
{{ end }}`))
	if err != nil {
		b.Fatal(err)
	}
	data := benchData()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRenderFormatEnv renders the same secret with format: env.
func BenchmarkRenderFormatEnv(b *testing.B) {
	r, err := Compile(&config.Secret{Name: "bench", Format: FormatEnv})
	if err != nil {
		b.Fatal(err)
	}
	data := benchData()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileAndFirstRender is what `once` pays per secret: compile
// the template (config load), hand it to the job, render it once.
func BenchmarkCompileAndFirstRender(b *testing.B) {
	s := &config.Secret{Name: "db", Template: "USER={{ .user }}\nPASS={{ .pass | quote }}\nHOST={{ .host | upper }}\n"}
	data := map[string]any{"user": "u", "pass": "p", "host": "h"}
	b.ReportAllocs()
	for b.Loop() {
		set := NewSet()
		if err := set.Check(s); err != nil {
			b.Fatal(err)
		}
		r, err := set.Renderer(s)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}
