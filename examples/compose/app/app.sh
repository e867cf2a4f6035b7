#!/bin/sh
# The example application: it loads /secrets/db.env (format: env is safe to
# source in a POSIX shell) and /secrets/api-key, and reloads them whenever
# the sidecar rewrites a file. It prints facts about the secrets, never the
# values.
set -eu

dir=${SECRETS_DIR:-/secrets}

load() {
	set -a
	# shellcheck disable=SC1091 # written at run time by the sidecar
	. "$dir/db.env"
	set +a
	api_key=$(cat "$dir/api-key")
	# shellcheck disable=SC2154 # host, port, ... come from db.env
	echo "app: connected to ${host}:${port}/${database} as ${username}" \
		"(password: ${#password} characters, api key: ${#api_key} characters)"
}

fingerprint() { cat "$dir/db.env" "$dir/api-key" | md5sum; }

load
seen=$(fingerprint)
while sleep 5; do
	now=$(fingerprint)
	if [ "$now" != "$seen" ]; then
		echo "app: secrets changed on disk, reloading"
		load
		seen=$now
	fi
done
