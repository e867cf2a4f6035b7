#!/bin/sh
# Seeds a Vault or OpenBao dev server for secrets-sidecar: KV v2 at secret/
# (the dev server's own), KV v1 at kv/, demo secrets in both, a read-only
# policy and an AppRole whose role_id and secret_id it writes as files for
# the sidecar. Idempotent: running it again updates the same objects.
#
# Runs in the hashicorp/vault or openbao/openbao image (busybox sh) or on a
# workstation with the CLI installed:
#
#   VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=root deployments/seed/seed.sh
#
#   VAULT_CLI       vault (default) or bao
#   APPROLE_OUT     directory for role-id and secret-id (default /approle);
#                   empty: print nothing, write nothing
#   APPROLE_UID     owner of those files (default 65534, the sidecar's user)
set -eu

cli=${VAULT_CLI:-vault}
out=${APPROLE_OUT-/approle}
uid=${APPROLE_UID:-65534}

log() { echo "seed: $*" >&2; }

# Wait for the server: a dev server is unsealed as soon as it answers.
i=0
until "$cli" status >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -ge 60 ]; then
		log "server at ${VAULT_ADDR:-${BAO_ADDR:-?}} did not answer in 60s"
		exit 1
	fi
	sleep 1
done

mounts=$("$cli" secrets list -format=json)
case $mounts in
*'"secret/"'*) ;;
*) "$cli" secrets enable -path=secret -version=2 kv ;;
esac
case $mounts in
*'"kv/"'*) ;;
*) "$cli" secrets enable -path=kv -version=1 kv ;;
esac
log "KV v2 at secret/, KV v1 at kv/"

# KV v2: fields as the sidecar sees them (the path has no data/ in it). The
# password has characters that need quoting in every output format.
# shellcheck disable=SC2016 # a literal $ in a demo password
"$cli" kv put -mount=secret demo/db \
	username=app password='s3cr3t pa$$word "quoted"' \
	host=db.internal port=5432 database=app >/dev/null
# A nested object (feature_flags) and a field with a dot in its name. JSON
# from stdin keeps the nesting; key=value pairs would store strings.
"$cli" kv put -mount=secret demo/config - >/dev/null <<'JSON'
{
  "log_level": "info",
  "feature_flags": {"new_ui": true, "beta": false},
  "tls.crt": "-----BEGIN CERTIFICATE-----\nZGVtbyBjZXJ0aWZpY2F0ZSwgbm90IGEgcmVhbCBvbmU=\n-----END CERTIFICATE-----\n"
}
JSON
# A PEM bundle (demo blocks, not a real certificate or key) for filterPEM.
"$cli" kv put -mount=secret demo/tls - >/dev/null <<'JSON'
{
  "bundle": "-----BEGIN CERTIFICATE-----\nZGVtbyBjZXJ0aWZpY2F0ZSwgbm90IGEgcmVhbCBvbmU=\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nZGVtbyBrZXksIG5vdCBhIHJlYWwgb25l\n-----END PRIVATE KEY-----\n"
}
JSON
"$cli" kv put -mount=secret demo/api api_key=demo-api-key-v1 >/dev/null
# Two versions, so that `version:` pins have something to pin.
"$cli" kv put -mount=secret demo/api api_key=demo-api-key-v2 >/dev/null
# KV v1: the path is used as is.
"$cli" kv put -mount=kv demo/legacy username=legacy password=legacy-password >/dev/null
log "demo secrets: secret/demo/{db,config,tls,api} (v2), kv/demo/legacy (v1)"

"$cli" policy write secrets-sidecar - >/dev/null <<'HCL'
# Read the demo secrets, nothing else.
path "secret/data/demo/*" {
  capabilities = ["read"]
}
path "secret/metadata/demo/*" {
  capabilities = ["read"]
}
path "kv/demo/*" {
  capabilities = ["read"]
}
# kv_version: auto asks which KV version a mount has, as the Vault CLI does.
path "sys/internal/ui/mounts/*" {
  capabilities = ["read"]
}
HCL
log "policy secrets-sidecar"

if ! "$cli" auth list -format=json | grep -q '"approle/"'; then
	"$cli" auth enable approle >/dev/null
fi
"$cli" write auth/approle/role/secrets-sidecar \
	token_policies=secrets-sidecar token_ttl=1h token_max_ttl=4h \
	secret_id_ttl=0 secret_id_num_uses=0 >/dev/null
log "AppRole secrets-sidecar (token_ttl 1h, token_max_ttl 4h)"

if [ -n "$out" ]; then
	mkdir -p "$out"
	umask 077
	"$cli" read -field=role_id auth/approle/role/secrets-sidecar/role-id >"$out/role-id"
	"$cli" write -f -field=secret_id auth/approle/role/secrets-sidecar/secret-id >"$out/secret-id"
	if [ "$(id -u)" = 0 ]; then
		chown "$uid:$uid" "$out" "$out/role-id" "$out/secret-id"
	fi
	log "wrote $out/role-id and $out/secret-id"
fi
log "done"
