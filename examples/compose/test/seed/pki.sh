#!/bin/sh
# Test variant of ../../seed-pki.sh for docker-compose.tls.yml beside this
# directory, over Vault's HTTP API with busybox wget, run after seed.sh
# (which makes the AppRole secrets-sidecar): PKI at pki/ with a root CA
# (the test's dev server mounts both itself; a missing one is made), the
# role tlsapp, the policy secrets-sidecar-pki that may issue from it, and
# that policy added to the AppRole. Idempotent.
#
#   VAULT_ADDR, VAULT_TOKEN  the server and its root token
set -eu

addr=${VAULT_ADDR:?}
token=${VAULT_TOKEN:?}

log() { echo "seed-pki: $*" >&2; }

# api METHOD PATH [JSON]: as in seed.sh.
api() {
	if [ $# -ge 3 ]; then
		wget -q -O- --header "X-Vault-Token: $token" --header "Content-Type: application/json" \
			--post-data "$3" "$addr/v1/$2"
	else
		wget -q -O- --header "X-Vault-Token: $token" "$addr/v1/$2"
	fi
}

case $(api GET sys/mounts) in
*'"pki/"'*) ;;
*) api POST sys/mounts/pki '{"type": "pki", "config": {"max_lease_ttl": "87600h"}}' >/dev/null ;;
esac
# No issuer: LIST answers 404, and wget fails.
if ! api GET 'pki/issuers?list=true' >/dev/null 2>&1; then
	api POST pki/root/generate/internal '{"common_name": "secrets-sidecar test CA", "key_type": "ec",
		"key_bits": 256, "ttl": "87600h"}' >/dev/null
fi
log "PKI at pki/ with a root CA"

api POST pki/roles/tlsapp '{"allowed_domains": "tlsapp.internal", "allow_bare_domains": true,
	"allow_subdomains": false, "allow_localhost": true, "allow_ip_sans": true,
	"key_type": "ec", "key_bits": 256, "max_ttl": "1h"}' >/dev/null
log "role pki/roles/tlsapp"

api POST sys/policies/acl/secrets-sidecar-pki '{"policy": "path \"pki/issue/tlsapp\" { capabilities = [\"update\"] }\n"}' >/dev/null
api POST auth/approle/role/secrets-sidecar '{"token_policies": "secrets-sidecar,secrets-sidecar-pki"}' >/dev/null
log "policy secrets-sidecar-pki, added to the AppRole secrets-sidecar"
log "done"
