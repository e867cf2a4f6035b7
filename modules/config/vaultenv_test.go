package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/secrets-sidecar/secrets-sidecar/modules/config"
)

func TestCheckVaultEnvAcceptsWhatTheLibraryAccepts(t *testing.T) {
	good := []string{
		"VAULT_ADDR=https://vault.example.com:8200", "VAULT_AGENT_ADDR=unix:///run/agent.sock",
		"VAULT_SKIP_VERIFY=1", "VAULT_SRV_LOOKUP=false", "VAULT_DISABLE_REDIRECTS=TRUE",
		"VAULT_CLIENT_TIMEOUT=30", "VAULT_MAX_RETRIES=3", "VAULT_RATE_LIMIT=10:20",
		`VAULT_HEADERS={"X-Team":"a"}`, "VAULT_PROXY_ADDR=socks5://127.0.0.1:1080",
		"VAULT_TOKEN=anything", "VAULT_NAMESPACE=team/a", "VAULT_SKIP_VERIFY=", // empty: ignored, as the library does
		"OTHER=not-a-url",
	}
	if err := config.CheckVaultEnv(good); err != nil {
		t.Fatalf("rejected a good environment: %v", err)
	}
	for _, v := range []string{"VAULT_CLIENT_TIMEOUT=1m30s", "VAULT_CLIENT_TIMEOUT=2d", "VAULT_RATE_LIMIT=2.5"} {
		if err := config.CheckVaultEnv([]string{v}); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
}

func TestCheckVaultEnvListsEveryProblem(t *testing.T) {
	err := config.CheckVaultEnv([]string{
		"VAULT_ADDR=https://admin:s3cret@vault:bad", "VAULT_SKIP_VERIFY=banana", "VAULT_CLIENT_TIMEOUT=-5s",
	})
	var envErr config.EnvError
	if err == nil || !errors.As(err, &envErr) || len(envErr) != 3 {
		t.Fatalf("err = %v, want three problems", err)
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "admin") {
		t.Fatalf("userinfo printed: %v", err)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://admin:pw@host:8200":                   "http://***@host:8200",
		"https://user@vault/v1/secret?x=a@b":          "https://***@vault/v1/secret?x=a@b",
		"admin:pw@host:8200":                          "***@host:8200",
		`Get "http://a:***@h/v1/sys/health": refused`: `Get "http://***@h/v1/sys/health": refused`,
		"https://vault.example.com:8200/v1/x":         "https://vault.example.com:8200/v1/x",
		"not a url":                                   "not a url",
		"http://p%40ss:w@rd@host/":                    "http://***@host/",
	} {
		if got := config.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
