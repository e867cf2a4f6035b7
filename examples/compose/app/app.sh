#!/bin/sh
# The example application: it loads /secrets/db.env (format: env is safe to
# source in a POSIX shell) and /secrets/api-key, and reloads them when the
# sidecar rewrites a file. It prints facts about the secrets, never the
# values. One script for every Compose example:
#
#   - It waits for the files, so it can start before the sidecar wrote them
#     (docker-compose.signal.yml, where it must start first).
#   - SIGHUP reloads at once (the sidecar's `signal` action, or exec mode's
#     --on-change signal). It also looks at the files every RELOAD_POLL
#     seconds (default 5), for the plain sidecar pattern, which sends no
#     signal; RELOAD_POLL=0 leaves reloading to SIGHUP alone.
#   - SIGTERM and SIGINT end it with exit code 0 at once. As PID 1 (in its
#     container, or in a PID namespace it shares with the sidecar) the kernel
#     delivers only the signals it has a handler for: without these traps
#     `docker stop` would wait 10 s and SIGKILL it.
#   - Run with the database settings in its environment (`secrets-sidecar
#     exec --env db`, docker-compose.exec.yml), it uses those and reads only
#     the api key from disk; exec mode restarts it when they change.
#   - With RELOAD_PORT set it also serves POST /cgi-bin/reload on that port
#     (busybox httpd serving RELOAD_WWW, default /www: www/cgi-bin/reload),
#     which sends it a SIGHUP: the target of the `http` action in
#     docker-compose.webhook.yml.
#
# It sleeps in the background and waits (`sleep 5 & wait $!`): a shell runs
# a trap only between commands, and `wait` returns as soon as a trapped
# signal arrives, where a foreground `sleep 5` would not. It forks little
# else (builtins read the files): a `signal` action by process name also
# reaches the script's own short-lived subshells, which die of a SIGHUP, so
# the one subshell left, the poll's, may fail without ending the script.
set -eu

dir=${SECRETS_DIR:-/secrets}
poll=${RELOAD_POLL:-5}
nap=$poll
if [ "$poll" = 0 ]; then
	nap=3600
fi
hups=0    # SIGHUPs received
handled=0 # SIGHUPs reloaded for
trap 'hups=$((hups + 1))' HUP
trap 'echo "app: SIGTERM or SIGINT, exiting"; exit 0' TERM INT

# pause N: sleep N seconds, cut short by a trapped signal.
pause() {
	sleep "$1" &
	wait $! || kill $! 2>/dev/null || true
}

# The database settings come from the environment (exec mode) when it has
# them, else from db.env.
from_env=""
if [ -n "${password+set}" ]; then
	from_env=yes
fi

load() {
	if [ -z "$from_env" ]; then
		set -a
		# shellcheck disable=SC1091 # written at run time by the sidecar
		. "$dir/db.env"
		set +a
	fi
	IFS= read -r api_key <"$dir/api-key" || true # one line, maybe no newline
	# shellcheck disable=SC2154 # host, port, ... come from db.env or the environment
	echo "app: connected to ${host}:${port}/${database} as ${username}" \
		"(password: ${#password} characters, api key: ${#api_key} characters)"
}

fingerprint() { cat "$dir/db.env" "$dir/api-key" | md5sum; }
# remember what the files hold, for the poll (which may fail: see above).
remember() {
	if [ "$poll" != 0 ]; then
		seen=$(fingerprint) || seen=""
	fi
}

if [ -n "${RELOAD_PORT:-}" ]; then
	export APP_PID=$$ # for the CGI script: whom to send the SIGHUP
	httpd -f -p "$RELOAD_PORT" -h "${RELOAD_WWW:-/www}" &
	echo "app: reload webhook on port $RELOAD_PORT: POST /cgi-bin/reload"
fi

if [ ! -r "$dir/db.env" ] || [ ! -r "$dir/api-key" ]; then
	echo "app: waiting for $dir/db.env and $dir/api-key"
	until [ -r "$dir/db.env" ] && [ -r "$dir/api-key" ]; do
		pause 1
	done
fi
if [ -n "$from_env" ]; then
	echo "app: database settings from the environment"
fi
load
remember
while :; do
	if [ "$hups" = "$handled" ]; then
		pause "$nap"
	fi
	if [ "$hups" != "$handled" ]; then
		handled=$hups
		echo "app: SIGHUP (${hups} so far), reloading"
	elif [ "$poll" = 0 ]; then
		continue
	else
		now=$(fingerprint) || continue
		[ "$now" != "$seen" ] || continue
		echo "app: secrets changed on disk, reloading"
	fi
	load
	remember
done
