# shellcheck shell=bash
# engine.sh: the package installs and the Docker daemon that
# scripts/test-containers.sh and scripts/release-check.sh share. Source it
# after defining note MESSAGE and fail MESSAGE (they prefix the script's
# name); it defines:
#
#   engine_install PKG...  installs the packages with apt-get (update
#                          first) without starting any service: the
#                          packages' scripts would start Docker's daemon with
#                          its default bridge and NAT, or a registry on every
#                          interface; policy-rc.d (101: action forbidden)
#                          keeps them from starting anything while it is in
#                          place. Fails without apt-get, or as non-root
#                          without sudo.
#   engine_start STATE     when no daemon answers, starts one without a
#                          bridge or NAT,
#                            dockerd --bridge=none --iptables=false --ip-masq=false
#                          (every container uses the host's network or none),
#                          logging to STATE/dockerd.log, its pid in
#                          STATE/dockerd.pid; a daemon that an earlier run
#                          with the same STATE started and did not stop
#                          (killed) is this run's to stop. With
#                          CONTAINERS_DOCKERD_ROOT set, the daemon is one of
#                          the run's own, its socket, data and state under
#                          that directory (DOCKER_HOST points at it).
#   engine_stop            stops the daemon engine_start started, if any.
#
#   engine_sudo            the command prefix for root's work: () or (sudo)

engine_sudo=()
if [[ $(id -u) != 0 ]]; then
	engine_sudo=(sudo)
fi
engine_dockerd_pid=""
engine_pidfile=""

engine_install() {
	if ! command -v apt-get >/dev/null; then
		fail "cannot install $* here: no apt-get"
	fi
	if [[ ${#engine_sudo[@]} -gt 0 ]] && ! command -v sudo >/dev/null; then
		fail "not root and no sudo: cannot install $*"
	fi
	note "installing $* (apt)"
	local t0 policy=/usr/sbin/policy-rc.d placed=""
	t0=$(date +%s)
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | "${engine_sudo[@]}" tee "$policy" >/dev/null
		"${engine_sudo[@]}" chmod 0755 "$policy"
		placed=yes
	fi
	"${engine_sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${engine_sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
	[[ -z $placed ]] || "${engine_sudo[@]}" rm -f "$policy"
	note "installed in $(($(date +%s) - t0))s"
}

engine_start() {
	local state=$1
	local log=$state/dockerd.log
	engine_pidfile=$state/dockerd.pid
	mkdir -p "$state"
	if [[ -n ${CONTAINERS_DOCKERD_ROOT:-} ]]; then
		export DOCKER_HOST=unix://$CONTAINERS_DOCKERD_ROOT/docker.sock
	fi
	if [[ -s $engine_pidfile ]] && [[ $(cat "/proc/$(cat "$engine_pidfile")/comm" 2>/dev/null) == dockerd ]]; then
		engine_dockerd_pid=$(cat "$engine_pidfile")
	fi
	if docker info >/dev/null 2>&1; then
		note "using the running engine $(docker version --format '{{.Server.Version}}')${engine_dockerd_pid:+ (pid $engine_dockerd_pid, started by an earlier run)}"
		return 0
	fi
	local args=(--bridge=none --iptables=false --ip-masq=false) t0
	if [[ -n ${CONTAINERS_DOCKERD_ROOT:-} ]]; then
		mkdir -p "$CONTAINERS_DOCKERD_ROOT"
		args+=(--host "$DOCKER_HOST" --data-root "$CONTAINERS_DOCKERD_ROOT/data"
			--exec-root "$CONTAINERS_DOCKERD_ROOT/exec" --pidfile "$CONTAINERS_DOCKERD_ROOT/docker.pid")
	fi
	note "starting dockerd ${args[*]} (log: $log)"
	t0=$(date +%s)
	"${engine_sudo[@]}" setsid dockerd "${args[@]}" >"$log" 2>&1 </dev/null &
	engine_dockerd_pid=$!
	echo "$engine_dockerd_pid" >"$engine_pidfile"
	for _ in $(seq 1 120); do
		docker info >/dev/null 2>&1 && break
		kill -0 "$engine_dockerd_pid" 2>/dev/null || break
		sleep 0.5
	done
	if ! docker info >/dev/null 2>&1; then
		tail -n 30 "$log" >&2 || true
		fail "dockerd did not answer within 60s (log: $log)"
	fi
	note "dockerd (pid $engine_dockerd_pid) answers after $(($(date +%s) - t0))s"
}

engine_stop() {
	[[ -n $engine_dockerd_pid ]] || return 0
	note "stopping dockerd (pid $engine_dockerd_pid)"
	"${engine_sudo[@]}" kill -TERM "$engine_dockerd_pid" 2>/dev/null || true
	for _ in $(seq 1 60); do
		kill -0 "$engine_dockerd_pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$engine_dockerd_pid" 2>/dev/null; then
		note "dockerd did not stop within 30s of SIGTERM: SIGKILL"
		"${engine_sudo[@]}" kill -KILL "$engine_dockerd_pid" 2>/dev/null || true
	fi
	rm -f "$engine_pidfile"
	engine_dockerd_pid=""
	# dockerd leaves its network namespace bind-mounted in its exec root;
	# a daemon of this run's own leaves nothing mounted behind.
	if [[ -n ${CONTAINERS_DOCKERD_ROOT:-} ]]; then
		awk -v root="$CONTAINERS_DOCKERD_ROOT/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r |
			while read -r m; do "${engine_sudo[@]}" umount "$m" || true; done
	fi
}
