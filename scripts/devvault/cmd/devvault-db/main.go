// Command devvault-db is the dev server (see internal/devserver) with
// Vault's database secrets engine mounted at database/ and the PostgreSQL
// database plugin built in, for the leased-secret tests against a real
// PostgreSQL. It is a separate binary so that the demo's server does not
// carry the database plugins: the Makefile builds it before `go test`.
package main

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/builtin/logical/database"
	"github.com/hashicorp/vault/plugins/database/postgresql"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/secrets-sidecar/secrets-sidecar/scripts/devvault/internal/devserver"
)

// pluginName is the name Vault's catalog gives the builtin PostgreSQL plugin
// (database/config/NAME takes it as plugin_name).
const pluginName = "postgresql-database-plugin"

// registry offers the one builtin plugin this server links: Vault's own
// PostgreSQL database plugin, served in-process by the database engine.
type registry struct{}

func (registry) Contains(name string, t consts.PluginType) bool {
	return name == pluginName && t == consts.PluginTypeDatabase
}

func (r registry) Get(name string, t consts.PluginType) (func() (interface{}, error), bool) {
	if !r.Contains(name, t) {
		return nil, false
	}
	return postgresql.New, true
}

func (registry) Keys(t consts.PluginType) []string {
	if t == consts.PluginTypeDatabase {
		return []string{pluginName}
	}
	return nil
}

func (r registry) DeprecationStatus(name string, t consts.PluginType) (consts.DeprecationStatus, bool) {
	if !r.Contains(name, t) {
		return consts.Unknown, false
	}
	return consts.Supported, true
}

func main() {
	devserver.Main("devvault-db", devserver.Extras{
		LogicalBackends: map[string]logical.Factory{"database": database.Factory},
		Registry:        registry{},
		Init: func(ctx context.Context, req devserver.Requester) error {
			if err := req(ctx, "sys/mounts/database", map[string]interface{}{"type": "database"}); err != nil {
				return fmt.Errorf("mount database/: %w", err)
			}
			return nil
		},
	})
}
