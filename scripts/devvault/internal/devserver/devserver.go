// Package devserver is the dev server both devvault commands share: a
// real HashiCorp Vault core (v1.14.0, MPL-2.0) on a loopback address with
// an in-memory (or file) storage backend, the KV and PKI secrets engines
// and the AppRole, JWT and Kubernetes auth methods. It initialises and
// unseals itself, mounts KV v2 at secret/, KV v1 at kv/ and PKI at pki/
// (with an EC P-256 root CA, "devvault root CA", and no roles: tests make
// their own), prints one JSON line with the address and root token on
// stdout, and serves until SIGTERM or SIGINT. A flavour adds engines
// through Extras.
//
// With -data-dir the storage, unseal key and root token persist across
// restarts, so tests can stop Vault and bring the same data back.
package devserver

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	jwtauth "github.com/hashicorp/vault-plugin-auth-jwt"
	kubeauth "github.com/hashicorp/vault-plugin-auth-kubernetes"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/builtin/logical/pki"
	"github.com/hashicorp/vault/helper/namespace"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/physical"
	"github.com/hashicorp/vault/sdk/physical/file"
	"github.com/hashicorp/vault/sdk/physical/inmem"
	"github.com/hashicorp/vault/vault"
)

// noPlugins is a builtin registry that offers nothing: every backend this
// server supports is linked in through CoreConfig instead.
type noPlugins struct{}

func (noPlugins) Contains(string, consts.PluginType) bool { return false }
func (noPlugins) Get(string, consts.PluginType) (func() (interface{}, error), bool) {
	return nil, false
}
func (noPlugins) Keys(consts.PluginType) []string { return nil }
func (noPlugins) DeprecationStatus(string, consts.PluginType) (consts.DeprecationStatus, bool) {
	return consts.Unknown, false
}

// banner is the one line printed on stdout once the server accepts requests.
type banner struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
	PID   int    `json:"pid"`
}

// persisted is what -data-dir keeps so a restart can unseal the same data.
type persisted struct {
	UnsealKey []byte `json:"unseal_key"`
	RootToken string `json:"root_token"`
}

// Extras is what a dev-server flavour adds to the common core.
type Extras struct {
	// LogicalBackends are secrets engines beside kv and pki.
	LogicalBackends map[string]logical.Factory
	// Registry is the builtin plugin registry (default: none).
	Registry vault.BuiltinRegistry
	// Init runs once on a fresh core, after the common mounts, with the
	// root token (to mount and configure the extra engines).
	Init func(ctx context.Context, r Requester) error
}

// Requester writes to the core as the root token.
type Requester func(ctx context.Context, path string, data map[string]interface{}) error

// Main runs a dev server with extras and exits the process when it stops.
func Main(name string, extras Extras) {
	if err := run(extras); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

func run(extras Extras) error {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback only)")
	token := flag.String("root-token", "", "root token ID to create (default: random)")
	dataDir := flag.String("data-dir", "", "persist storage, unseal key and root token here (default: in memory)")
	logLevel := flag.String("log-level", "error", "Vault's own log level (trace, debug, info, warn, error)")
	flag.Parse()

	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", *addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-addr %q: refusing to listen on a non-loopback address", *addr)
	}

	logger := hclog.New(&hclog.LoggerOptions{
		Name: "devvault", Level: hclog.LevelFromString(*logLevel), Output: os.Stderr,
	})

	backends := map[string]logical.Factory{"kv": kv.Factory, "pki": pki.Factory}
	for name, f := range extras.LogicalBackends {
		backends[name] = f
	}
	var registry vault.BuiltinRegistry = noPlugins{}
	if extras.Registry != nil {
		registry = extras.Registry
	}

	backend, err := storage(*dataDir, logger)
	if err != nil {
		return err
	}
	core, err := vault.NewCore(&vault.CoreConfig{
		Physical:        backend,
		Logger:          logger,
		DisableMlock:    true,
		BuiltinRegistry: registry,
		LogicalBackends: backends,
		CredentialBackends: map[string]logical.Factory{
			"approle":    approle.Factory,
			"jwt":        jwtauth.Factory,
			"kubernetes": kubeauth.Factory,
		},
	})
	if err != nil {
		return fmt.Errorf("new core: %w", err)
	}
	defer func() { _ = core.Shutdown() }()

	ctx := namespace.ContextWithNamespace(context.Background(), namespace.RootNamespace)
	rootToken, err := initAndUnseal(ctx, core, *dataDir, *token, extras.Init)
	if err != nil {
		return err
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           vaulthttp.Handler.Handler(&vault.HandlerProperties{Core: core}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	out, err := json.Marshal(banner{Addr: "http://" + ln.Addr().String(), Token: rootToken, PID: os.Getpid()})
	if err != nil {
		return err
	}
	fmt.Println(string(out))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

func storage(dataDir string, logger hclog.Logger) (physical.Backend, error) {
	if dataDir == "" {
		return inmem.NewInmem(nil, logger)
	}
	if err := os.MkdirAll(filepath.Join(dataDir, "storage"), 0o700); err != nil {
		return nil, err
	}
	return file.NewFileBackend(map[string]string{"path": filepath.Join(dataDir, "storage")}, logger)
}

// initAndUnseal initialises a fresh core (one key share, dev style) or, with
// a data dir that already holds an initialised Vault, unseals it with the
// stored key. It returns the root token.
func initAndUnseal(ctx context.Context, core *vault.Core, dataDir, wantToken string, extra func(context.Context, Requester) error) (string, error) {
	stateFile := filepath.Join(dataDir, "devvault.json")
	if dataDir != "" {
		if raw, err := os.ReadFile(stateFile); err == nil {
			var st persisted
			if err := json.Unmarshal(raw, &st); err != nil {
				return "", fmt.Errorf("%s: %w", stateFile, err)
			}
			if err := unseal(core, st.UnsealKey); err != nil {
				return "", err
			}
			return st.RootToken, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}

	res, err := core.Initialize(ctx, &vault.InitParams{
		BarrierConfig: &vault.SealConfig{SecretShares: 1, SecretThreshold: 1},
	})
	if err != nil {
		return "", fmt.Errorf("initialize: %w", err)
	}
	if err := unseal(core, res.SecretShares[0]); err != nil {
		return "", err
	}
	rootToken := res.RootToken
	if wantToken != "" {
		if rootToken, err = replaceRootToken(ctx, core, res.RootToken, wantToken); err != nil {
			return "", err
		}
	}
	mounts := []struct{ path, version string }{{"secret", "2"}, {"kv", "1"}}
	for _, m := range mounts {
		if err := request(ctx, core, rootToken, "sys/mounts/"+m.path, map[string]interface{}{
			"type":    "kv",
			"options": map[string]string{"version": m.version},
		}); err != nil {
			return "", fmt.Errorf("mount %s/: %w", m.path, err)
		}
	}
	if err := request(ctx, core, rootToken, "sys/mounts/pki", map[string]interface{}{
		"type": "pki", "config": map[string]interface{}{"max_lease_ttl": "87600h"},
	}); err != nil {
		return "", fmt.Errorf("mount pki/: %w", err)
	}
	if err := request(ctx, core, rootToken, "pki/root/generate/internal", map[string]interface{}{
		"common_name": "devvault root CA", "key_type": "ec", "key_bits": 256, "ttl": "87600h",
	}); err != nil {
		return "", fmt.Errorf("pki/ root CA: %w", err)
	}
	if extra != nil {
		if err := extra(ctx, func(ctx context.Context, path string, data map[string]interface{}) error {
			return request(ctx, core, rootToken, path, data)
		}); err != nil {
			return "", err
		}
	}
	if dataDir != "" {
		raw, err := json.Marshal(persisted{UnsealKey: res.SecretShares[0], RootToken: rootToken})
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(stateFile, raw, 0o600); err != nil {
			return "", err
		}
	}
	return rootToken, nil
}

func unseal(core *vault.Core, key []byte) error {
	k := make([]byte, len(key))
	copy(k, key)
	ok, err := core.Unseal(k)
	if err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	if !ok {
		return errors.New("unseal: still sealed after the only key share")
	}
	return nil
}

func replaceRootToken(ctx context.Context, core *vault.Core, initial, want string) (string, error) {
	resp, err := core.HandleRequest(ctx, &logical.Request{
		Operation:   logical.UpdateOperation,
		ClientToken: initial,
		Path:        "auth/token/create",
		Data: map[string]interface{}{
			"id": want, "policies": []string{"root"}, "no_parent": true, "no_default_policy": true,
		},
	})
	if err != nil {
		return "", fmt.Errorf("create root token: %w", err)
	}
	if resp == nil || resp.Auth == nil {
		return "", errors.New("create root token: empty response")
	}
	if err := request(ctx, core, initial, "auth/token/revoke-self", nil); err != nil {
		return "", fmt.Errorf("revoke initial root token: %w", err)
	}
	return resp.Auth.ClientToken, nil
}

func request(ctx context.Context, core *vault.Core, token, path string, data map[string]interface{}) error {
	resp, err := core.HandleRequest(ctx, &logical.Request{
		Operation: logical.UpdateOperation, ClientToken: token, Path: path, Data: data,
	})
	if err != nil {
		return err
	}
	if resp != nil && resp.IsError() {
		return resp.Error()
	}
	return nil
}
