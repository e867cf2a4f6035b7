#!/bin/sh
# Seeds PKI for docker-compose.tls.yml, after deployments/seed/seed.sh (which
# makes the AppRole secrets-sidecar): the PKI engine at pki/ with a root CA
# (a dev server has neither), a role tlsapp for the example's names, a
# policy that may issue from it, and that policy added to the AppRole. The
# sidecar's config is sidecar/tls.yaml. Idempotent: running it again keeps
# the CA and updates the rest.
#
#   VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root deployments/seed/seed.sh
#   VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root examples/compose/seed-pki.sh
#
#   VAULT_CLI   vault (default) or bao
set -eu

cli=${VAULT_CLI:-vault}

log() { echo "seed-pki: $*" >&2; }

if ! "$cli" secrets list -format=json | grep -q '"pki/"'; then
	"$cli" secrets enable pki >/dev/null
fi
"$cli" secrets tune -max-lease-ttl=87600h pki >/dev/null
if ! "$cli" list -format=json pki/issuers >/dev/null 2>&1; then
	"$cli" write -field=issuer_id pki/root/generate/internal \
		common_name="secrets-sidecar example CA" key_type=ec key_bits=256 ttl=87600h >/dev/null
fi
log "PKI at pki/ with a root CA (pki/ca/pem)"

# Certificates for tlsapp.internal, localhost and 127.0.0.1, for at most an
# hour: the example asks for 2 minutes, to show a new one every 80 s or so.
"$cli" write pki/roles/tlsapp \
	allowed_domains=tlsapp.internal allow_bare_domains=true allow_subdomains=false \
	allow_localhost=true allow_ip_sans=true key_type=ec key_bits=256 max_ttl=1h >/dev/null
log "role pki/roles/tlsapp (tlsapp.internal, localhost, 127.0.0.1; max_ttl 1h)"

"$cli" policy write secrets-sidecar-pki - >/dev/null <<'HCL'
# Issue certificates from the tlsapp role, nothing else.
path "pki/issue/tlsapp" {
  capabilities = ["update"]
}
HCL
# Only token_policies changes: the role's other settings and its secret-id
# stay as seed.sh made them.
"$cli" write auth/approle/role/secrets-sidecar token_policies=secrets-sidecar,secrets-sidecar-pki >/dev/null
log "policy secrets-sidecar-pki, added to the AppRole secrets-sidecar"
log "done"
