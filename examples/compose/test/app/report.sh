#!/bin/sh
# The Compose test variant's application: it reports what it read from
# /secrets, and from its environment in exec mode, as SHA-256 digests
# (never the values), so that the test can compare them with what was
# seeded, and then runs the example application (examples/compose/app/app.sh,
# mounted at /app/app.sh) unchanged, in its place: exec keeps the PID (1, or
# exec mode's child) and the process becomes app.sh, the name a signal
# action looks for.
set -eu

dir=${SECRETS_DIR:-/secrets}
digest() { sha256sum | cut -d' ' -f1; }

# Where the app starts before the sidecar (docker-compose.signal.yml), wait
# for the files as app.sh does; as PID 1, end on SIGTERM meanwhile.
trap 'exit 0' TERM INT
until [ -r "$dir/db.env" ] && [ -r "$dir/api-key" ]; do
	sleep 1 &
	wait $! || true
done

if [ -n "${password+set}" ]; then
	echo "app-test: environment: password sha256 $(printf '%s' "$password" | digest)"
fi
(
	set -a
	# shellcheck disable=SC1091 # written at run time by the sidecar
	. "$dir/db.env"
	# shellcheck disable=SC2154 # password comes from db.env
	echo "app-test: db.env sourced: password sha256 $(printf '%s' "$password" | digest)"
)
echo "app-test: api-key sha256 $(digest <"$dir/api-key")"
exec /app/app.sh
