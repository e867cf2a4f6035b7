#!/bin/sh
# Seeds the Vault dev server of the Compose test variant over Vault's HTTP
# API, with busybox wget: the same demo secrets, policy and AppRole as
# deployments/seed/seed.sh (the subset that the sidecar's configs read),
# without the `vault` CLI image, which cannot be pulled where the test runs.
# Writes role-id and secret-id for the sidecar into APPROLE_OUT. Idempotent.
#
#   VAULT_ADDR, VAULT_TOKEN  the server and its root token
#   APPROLE_OUT              directory for role-id and secret-id (default /approle)
#   APPROLE_UID              owner of those files (default 65534, the sidecar's user)
set -eu

addr=${VAULT_ADDR:?}
token=${VAULT_TOKEN:?}
out=${APPROLE_OUT:-/approle}
uid=${APPROLE_UID:-65534}

log() { echo "seed: $*" >&2; }

# api METHOD PATH [JSON]: one API call; prints the response body and fails
# on any status but 2xx (busybox wget exits 1 and names the status).
api() {
	if [ $# -ge 3 ]; then
		wget -q -O- --header "X-Vault-Token: $token" --header "Content-Type: application/json" \
			--post-data "$3" "$addr/v1/$2"
	else
		wget -q -O- --header "X-Vault-Token: $token" "$addr/v1/$2"
	fi
}

# field NAME: the string field NAME of the JSON on stdin (no nesting, no escapes).
field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

i=0
until wget -q -O /dev/null "$addr/v1/sys/health"; do
	i=$((i + 1))
	if [ "$i" -ge 60 ]; then
		log "server at $addr did not answer in 60s"
		exit 1
	fi
	sleep 1
done

# The dev server mounts KV v2 at secret/. The password has characters that
# need quoting in every output format (the same as deployments/seed/seed.sh).
# shellcheck disable=SC2016 # a literal $ in a demo password
api POST secret/data/demo/db '{"data": {"username": "app", "password": "s3cr3t pa$$word \"quoted\"",
	"host": "db.internal", "port": "5432", "database": "app"}}' >/dev/null
api POST secret/data/demo/api '{"data": {"api_key": "demo-api-key-v1"}}' >/dev/null
api POST secret/data/demo/api '{"data": {"api_key": "demo-api-key-v2"}}' >/dev/null
api POST secret/data/demo/config '{"data": {"log_level": "info"}}' >/dev/null
log "demo secrets: secret/demo/db, secret/demo/api (two versions), secret/demo/config"

api POST sys/policies/acl/secrets-sidecar '{"policy": "path \"secret/data/demo/*\" { capabilities = [\"read\"] }\npath \"secret/metadata/demo/*\" { capabilities = [\"read\"] }\npath \"sys/internal/ui/mounts/*\" { capabilities = [\"read\"] }\n"}' >/dev/null
log "policy secrets-sidecar"

case $(api GET sys/auth) in
*'"approle/"'*) ;;
*) api POST sys/auth/approle '{"type": "approle"}' >/dev/null ;;
esac
api POST auth/approle/role/secrets-sidecar '{"token_policies": "secrets-sidecar", "token_ttl": "1h",
	"token_max_ttl": "4h", "secret_id_ttl": "0", "secret_id_num_uses": 0}' >/dev/null
log "AppRole secrets-sidecar (token_ttl 1h, token_max_ttl 4h)"

mkdir -p "$out"
umask 077
role_id=$(api GET auth/approle/role/secrets-sidecar/role-id | field role_id)
secret_id=$(api POST auth/approle/role/secrets-sidecar/secret-id '{}' | field secret_id)
if [ -z "$role_id" ] || [ -z "$secret_id" ]; then
	log "no role_id or secret_id in the server's answers"
	exit 1
fi
printf '%s' "$role_id" >"$out/role-id"
printf '%s' "$secret_id" >"$out/secret-id"
if [ "$(id -u)" = 0 ]; then
	chown "$uid:$uid" "$out" "$out/role-id" "$out/secret-id"
fi
log "wrote $out/role-id and $out/secret-id"
log "done"
