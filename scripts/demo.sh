#!/usr/bin/env bash
# The README's demo: builds the sidecar, starts a local Vault dev server,
# seeds demo secrets, runs the sidecar as a daemon with
# examples/demo/config.yaml, shows the files, changes a secret in Vault and
# shows the file follow and its change action run, then stops everything. Needs Go and curl.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=/tmp/secrets-sidecar-demo
bin=$root/bin/secrets-sidecar

command -v curl >/dev/null || { echo "demo: curl is required" >&2; exit 1; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

say "building bin/secrets-sidecar"
make --no-print-directory build >/dev/null
"$bin" version

say "starting the Vault dev server (first run builds it: several minutes)"
devvault=$(scripts/devvault.sh)
rm -rf "$out" && mkdir -p "$out"
"$devvault" -addr 127.0.0.1:0 -root-token demo-root >"$out/vault.json" 2>"$out/vault.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s $out/vault.json ]] && break; sleep 0.1; done
VAULT_ADDR=$(sed -E 's/.*"addr":"([^"]+)".*/\1/' "$out/vault.json")
export VAULT_ADDR VAULT_TOKEN=demo-root
echo "Vault at $VAULT_ADDR (KV v2 at secret/, KV v1 at kv/, PKI at pki/)"

put() { # put <api path> <json>
	curl -fsS -H "X-Vault-Token: $VAULT_TOKEN" -X POST -d "$2" "$VAULT_ADDR/v1/$1" >/dev/null
}
say "seeding demo secrets"
put secret/data/demo/db '{"data":{"host":"db.internal","username":"app","password":"pa$$ \"word\""}}'
put secret/data/demo/api '{"data":{"api_key":"k-12345"}}'
put secret/data/demo/config '{"data":{"feature_x":true,"limits":{"rps":100},"name":"demo"}}'
put kv/demo/legacy '{"jdbc.url":"jdbc:postgresql://db:5432/app","user":"legacy"}'
put pki/roles/demo '{"allowed_domains":"internal","allow_subdomains":true,"max_ttl":"1h","key_type":"ec","key_bits":256}'

say "validating examples/demo/config.yaml"
"$bin" validate --config examples/demo/config.yaml

say "running the sidecar (refresh every 2s)"
export SIDECAR_STATUS_FILE=$out/status.json SIDECAR_HTTP_ADDR=127.0.0.1:0 SIDECAR_LOG_FORMAT=console
"$bin" run --config examples/demo/config.yaml 2>"$out/sidecar.log" &
sidecar=$!
pids+=("$sidecar")
for _ in $(seq 150); do "$bin" isready >/dev/null 2>&1 && break; sleep 0.2; done
"$bin" isready && echo "isready: ready"

for f in "$out"/secrets/*; do
	printf -- '--- %s (mode %s)\n' "$f" "$(stat -c %a "$f")"
	case $f in
	*.crt | *.key) echo "(PEM, $(wc -c <"$f") bytes)" ;;
	*) cat "$f"; echo ;;
	esac
done
serial() { "$bin" status | awk '$1 == "tls-cert" { for (i = 1; i <= NF; i++) if ($i == "until") { print $(i - 1); exit } }'; }
first=$(serial)
"$bin" status

say "changing demo/db's password in Vault"
put secret/data/demo/db '{"data":{"host":"db.internal","username":"app","password":"rotated-42"}}'
for _ in $(seq 50); do grep -q rotated-42 "$out/secrets/db.env" && break; sleep 0.2; done
grep -q rotated-42 "$out/secrets/db.env" || { echo "demo: the file did not follow the change" >&2; cat "$out/sidecar.log" >&2; exit 1; }
echo "--- $out/secrets/db.env now:"
cat "$out/secrets/db.env"
for _ in $(seq 50); do [[ -s $out/reloads.log ]] && break; sleep 0.2; done
[[ -s $out/reloads.log ]] || { echo "demo: the change action did not run" >&2; cat "$out/sidecar.log" >&2; exit 1; }
echo "--- the db secret's change action ran once (on_change: exec):"
cat "$out/reloads.log"

say "waiting for the 15s certificate to be issued again before it expires"
for _ in $(seq 150); do [[ $(serial) != "$first" ]] && break; sleep 0.2; done
[[ $(serial) != "$first" ]] || { echo "demo: the certificate was not issued again" >&2; cat "$out/sidecar.log" >&2; exit 1; }
echo "certificate serial $first -> $(serial)"
"$bin" status

say "stopping the sidecar (SIGTERM) and Vault"
kill -TERM "$sidecar"
wait "$sidecar" && echo "sidecar exited 0"
echo "sidecar log: $out/sidecar.log"
