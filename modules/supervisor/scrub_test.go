package supervisor

import (
	"slices"
	"testing"
)

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
