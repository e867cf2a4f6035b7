#!/bin/sh
# The Compose test variant's application: it reports what it read from
# /secrets as SHA-256 digests (never the values), so that the test can
# compare them with what was seeded, and then runs the example application
# (examples/compose/app/app.sh, mounted at /app/app.sh) unchanged.
set -eu

dir=${SECRETS_DIR:-/secrets}
digest() { sha256sum | cut -d' ' -f1; }

(
	set -a
	# shellcheck disable=SC1091 # written at run time by the sidecar
	. "$dir/db.env"
	# shellcheck disable=SC2154 # password comes from db.env
	echo "app-test: db.env sourced: password sha256 $(printf '%s' "$password" | digest)"
)
echo "app-test: api-key sha256 $(digest <"$dir/api-key")"
exec /bin/sh /app/app.sh
