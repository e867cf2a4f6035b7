#!/bin/sh
# The application of deployment-signal.yaml (mounted from a ConfigMap and
# run as /app/app.sh, so its process name is app.sh): it reads plain files
# and reloads them on SIGHUP, which the sidecar sends it when a secret
# changes. It prints facts about the secrets, never their values.
#
# It sleeps in the background and waits (`sleep 30 & wait $!`): a shell
# runs a trap only between commands, and `wait` returns as soon as a
# trapped signal arrives. It reads with builtins and forks nothing else,
# because a signal by process name also reaches the script's subshells.
set -eu

reloads=0
hup=""
trap 'hup=yes' HUP
trap 'echo "app: SIGTERM, exiting"; exit 0' TERM INT

load() {
	set -a
	# shellcheck disable=SC1091 # written at run time by the sidecar
	. /secrets/db.env
	set +a
	IFS= read -r api_key </secrets/api-key || true
	# shellcheck disable=SC2154 # username, host, port come from db.env
	echo "app: user ${username}@${host}:${port}, password ${#password} characters, api key ${#api_key} characters"
}

load
while :; do
	if [ -z "$hup" ]; then
		sleep 30 &
		wait $! || kill $! 2>/dev/null || true
	fi
	if [ -n "$hup" ]; then
		hup=""
		reloads=$((reloads + 1))
		echo "app: SIGHUP, reloading (reload $reloads)"
		load
	fi
done
