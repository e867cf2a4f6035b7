// Command devvault serves a real HashiCorp Vault core (v1.14.0, MPL-2.0) on a
// loopback address for secrets-sidecar's integration tests and demo: KV v2
// at secret/, KV v1 at kv/, PKI at pki/, and the AppRole, JWT and
// Kubernetes auth methods (see internal/devserver). cmd/devvault-db is the
// same server with the database secrets engine added.
package main

import "github.com/secrets-sidecar/secrets-sidecar/scripts/devvault/internal/devserver"

func main() { devserver.Main("devvault", devserver.Extras{}) }
