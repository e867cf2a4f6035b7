#!/bin/sh
# Sets up Vault's (or OpenBao's) Kubernetes auth method for secrets-sidecar:
# enables the method, points it at the cluster, and creates the role that
# lets the service account demo/myapp log in with the policy that
# deployments/seed/seed.sh writes (read-only on the demo secrets).
# Idempotent. Runs as the Job in job.yaml (Vault inside the cluster) or on a
# workstation with the vault CLI (Vault anywhere):
#
#   VAULT_ADDR=https://vault.example:8200 VAULT_TOKEN=... \
#   K8S_HOST=https://api.cluster.example:6443 K8S_CA_CERT=ca.crt \
#   REVIEWER_JWT_FILE=reviewer.jwt ./setup-vault-auth.sh
#
#   VAULT_CLI          vault (default) or bao
#   AUTH_MOUNT         where the method is enabled (default kubernetes)
#   K8S_HOST           the API server as Vault reaches it
#                      (default https://kubernetes.default.svc)
#   K8S_CA_CERT        the API server's CA file; REVIEWER_JWT_FILE a token
#                      allowed to create TokenReviews. Both may be left out
#                      when Vault runs in the cluster: it then uses its own
#                      service account (bound to system:auth-delegator, see
#                      rbac.yaml).
#   ROLE, NAMESPACE, SERVICE_ACCOUNT, POLICY, AUDIENCE
#                      defaults myapp, demo, myapp, secrets-sidecar, vault
set -eu

cli=${VAULT_CLI:-vault}
mount=${AUTH_MOUNT:-kubernetes}
host=${K8S_HOST:-https://kubernetes.default.svc}
role=${ROLE:-myapp}
namespace=${NAMESPACE:-demo}
sa=${SERVICE_ACCOUNT:-myapp}
policy=${POLICY:-secrets-sidecar}
audience=${AUDIENCE:-vault}

log() { echo "vault-auth: $*" >&2; }

if ! "$cli" auth list -format=json | grep -q "\"$mount/\""; then
	"$cli" auth enable -path="$mount" kubernetes >/dev/null
	log "enabled the kubernetes auth method at $mount/"
fi

set -- kubernetes_host="$host"
if [ -n "${K8S_CA_CERT:-}" ]; then
	set -- "$@" kubernetes_ca_cert=@"$K8S_CA_CERT"
fi
if [ -n "${REVIEWER_JWT_FILE:-}" ]; then
	set -- "$@" token_reviewer_jwt=@"$REVIEWER_JWT_FILE"
fi
"$cli" write "auth/$mount/config" "$@" >/dev/null
log "auth/$mount/config: kubernetes_host=$host"

# The sidecar's projected token has audience "vault" (deployment-*.yaml),
# so a token minted for anything else is refused.
"$cli" write "auth/$mount/role/$role" \
	bound_service_account_names="$sa" \
	bound_service_account_namespaces="$namespace" \
	audience="$audience" \
	token_policies="$policy" \
	token_ttl=1h token_max_ttl=4h >/dev/null
log "role $role: service account $namespace/$sa, policy $policy, audience $audience"
