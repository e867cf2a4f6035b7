package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plainLines are the stderr lines that are not JSON log lines.
func plainLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if l != "" && !strings.HasPrefix(l, "{") {
			out = append(out, l)
		}
	}
	return out
}

// TestBadEnvironmentExitsTwo: every VAULT_* variable the Vault library
// reads, and the SIDECAR_* ones that only failed later, stop run and once
// with exit 2 and exactly one plain line naming the variable.
func TestBadEnvironmentExitsTwo(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, fmt.Sprintf("secrets: [{name: s, path: x, destination: %s/out/s, key: k}]\n", dir))
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		key, value, want string
	}{
		{"VAULT_ADDR", "not-a-url", `VAULT_ADDR: "not-a-url" is not an http://, https:// or unix:// URL (e.g. https://vault.example.com:8200)`},
		{"VAULT_ADDR", "ftp://admin:hunter2@vault:21", `VAULT_ADDR: "ftp://***@vault:21" is not an http://, https:// or unix:// URL (e.g. https://vault.example.com:8200)`},
		{"VAULT_ADDR", "http://vault:99999", `VAULT_ADDR: "http://vault:99999" is not an http://, https:// or unix:// URL (e.g. https://vault.example.com:8200)`},
		{"VAULT_AGENT_ADDR", "localhost:8100", `VAULT_AGENT_ADDR: "localhost:8100" is not an http://, https:// or unix:// URL (e.g. https://vault.example.com:8200)`},
		{"VAULT_SKIP_VERIFY", "banana", `VAULT_SKIP_VERIFY: "banana" is not a boolean (true or false)`},
		{"VAULT_SRV_LOOKUP", "maybe", `VAULT_SRV_LOOKUP: "maybe" is not a boolean (true or false)`},
		{"VAULT_DISABLE_REDIRECTS", "nah", `VAULT_DISABLE_REDIRECTS: "nah" is not a boolean (true or false)`},
		{"VAULT_CLIENT_TIMEOUT", "abc", `VAULT_CLIENT_TIMEOUT: "abc" is not a duration (e.g. 30s, or 30 for seconds)`},
		{"VAULT_MAX_RETRIES", "-1", `VAULT_MAX_RETRIES: "-1" is not a whole number`},
		{"VAULT_RATE_LIMIT", "fast", `VAULT_RATE_LIMIT: "fast" is not a rate (requests per second, optionally :burst, e.g. 10 or 10:20)`},
		{"VAULT_HEADERS", `{"X-Vault-Token":"x"}`, `VAULT_HEADERS: X-Vault-Token: headers starting with X-Vault- are the library's own`},
		{"VAULT_HEADERS", `not json`, `VAULT_HEADERS: is not a JSON object of header names and string values`},
		{"VAULT_HTTP_PROXY", "proxy:3128", `VAULT_HTTP_PROXY: "proxy:3128" is not a proxy URL (e.g. http://proxy.example.com:3128)`},
		{"VAULT_PROXY_ADDR", "nope", `VAULT_PROXY_ADDR: "nope" is not a proxy URL (e.g. http://proxy.example.com:3128)`},
		{"VAULT_CACERT", filepath.Join(dir, "absent.pem"), "VAULT_CACERT: open " + filepath.Join(dir, "absent.pem") + ": no such file or directory"},
		{"VAULT_CACERT", notPEM, "VAULT_CACERT: " + notPEM + " holds no PEM certificate"},
		{"VAULT_CACERT_BYTES", "not a cert", "VAULT_CACERT_BYTES: holds no PEM certificate"},
		{"VAULT_CAPATH", filepath.Join(dir, "absent"), "VAULT_CAPATH: stat " + filepath.Join(dir, "absent") + ": no such file or directory"},
		{"VAULT_CLIENT_CERT", notPEM, "VAULT_CLIENT_KEY: not set, but VAULT_CLIENT_CERT is: set both or neither"},
		{"SIDECAR_HTTP_ADDR", ":99999", `SIDECAR_HTTP_ADDR: ":99999": port 99999 is not a port number (0 to 65535)`},
	}
	for _, cmd := range []string{"run", "once"} {
		for _, tc := range cases {
			t.Run(cmd+"/"+tc.key+"="+tc.value, func(t *testing.T) {
				t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
				t.Setenv("VAULT_TOKEN", "unused")
				t.Setenv("SIDECAR_HTTP_ADDR", "")
				t.Setenv("SIDECAR_STATUS_FILE", filepath.Join(dir, "status.json"))
				t.Setenv(tc.key, tc.value)
				args := []string{cmd, "--config", cfg}
				if cmd == "once" {
					args = append(args, "--timeout", "1s")
				}
				code, _, stderr := runCLI(t, args...)
				if code != exitUsage || stderr != tc.want+"\n" {
					t.Fatalf("exit %d, stderr:\n%s\nwant exit 2 and exactly:\n%s", code, stderr, tc.want)
				}
				if strings.Contains(stderr, "hunter2") || strings.Contains(stderr, "admin") {
					t.Fatal("the URL's userinfo was printed")
				}
			})
		}
		// Found once the config is read (the auth method is in it).
		t.Run(cmd+"/token method without a token", func(t *testing.T) {
			t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
			t.Setenv("SIDECAR_HTTP_ADDR", "")
			t.Setenv("SIDECAR_STATUS_FILE", filepath.Join(dir, "status.json"))
			t.Setenv("VAULT_TOKEN", "")
			os.Unsetenv("VAULT_TOKEN")
			args := []string{cmd, "--config", cfg}
			if cmd == "once" {
				args = append(args, "--timeout", "1s")
			}
			code, _, stderr := runCLI(t, args...)
			want := "VAULT_TOKEN: not set, and vault.auth.token_file is not set either: the token auth method needs one of them"
			if got := plainLines(stderr); code != exitUsage || len(got) != 1 || got[0] != want {
				t.Fatalf("exit %d, plain lines %q\nwant exit 2 and %q", code, got, want)
			}
		})
	}
}

// TestValidateIgnoresVaultEnv: validate is offline; the VAULT_* variables
// of the daemon's environment and missing credentials are not its concern.
func TestValidateIgnoresVaultEnv(t *testing.T) {
	t.Setenv("VAULT_SKIP_VERIFY", "banana")
	t.Setenv("VAULT_ADDR", "not-a-url")
	t.Setenv("VAULT_TOKEN", "")
	os.Unsetenv("VAULT_TOKEN")
	t.Setenv("SIDECAR_CONFIG", "../../examples/basic/config.yaml")
	if code, out, errOut := runCLI(t, "validate"); code != exitOK {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
}
