#!/usr/bin/env bash
# test-containers.sh runs scripts/containers (go test -tags containers) against
# a real container engine: the image built from the prebuilt binary, and the
# Compose test variant in examples/compose/test. `make test-containers`
# calls it after `make build`.
#
# It installs what is missing with apt-get (Debian's docker.io, engine
# 20.10; docker-compose 1.29; busybox-static for the test images), and
# starts the daemon when none answers, without a bridge or NAT:
#
#   dockerd --bridge=none --iptables=false --ip-masq=false
#
# (every test container uses the host's network or none), logging to
# $CONTAINERS_STATE/dockerd.log, and stops it again at the end. Before and
# after the tests it removes every container, volume, network and image
# labelled org.secrets-sidecar.test=containers, so a run after a failed run
# starts clean. Nothing is pulled: every image is built FROM scratch.
#
# Where no engine is installed and apt-get is missing, it says so and exits
# 0 (skipped); everywhere else it runs.
#
#   SIDECAR_BIN       the static binary to put in the image (required)
#   SIDECAR_BUSYBOX   a static busybox for the test images (default
#                     /bin/busybox of busybox-static)
#   SIDECAR_VERSION   its version and commit stamps (required)
#   SIDECAR_COMMIT
#   GO                the go command (default go)
#   CONTAINERS_STATE  the daemon's log and pid file (default /tmp/secrets-sidecar-containers)
#   CONTAINERS_DOCKERD_ROOT  set: when no daemon answers, start one of this
#                     run's own with its socket, data and state under this
#                     directory (DOCKER_HOST points at it), instead of the
#                     system's default socket
#   CONTAINERS_TEST_FLAGS  extra go test flags (e.g. -run TestImage)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
label=org.secrets-sidecar.test=containers
go=${GO:-go}
state=${CONTAINERS_STATE:-/tmp/secrets-sidecar-containers}
log=$state/dockerd.log
pidfile=$state/dockerd.pid
busybox=${SIDECAR_BUSYBOX:-/bin/busybox}
: "${SIDECAR_BIN:?set SIDECAR_BIN (make test-containers)}" "${SIDECAR_VERSION:?}" "${SIDECAR_COMMIT:?}"

note() { echo "test-containers: $*"; }
fail() {
	echo "test-containers: FAIL: $*" >&2
	exit 1
}
start_time=$(date +%s)

# --- packages ---------------------------------------------------------------

sudo_cmd=()
if [[ $(id -u) != 0 ]]; then
	sudo_cmd=(sudo)
fi
missing=()
if ! command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1; then
	missing+=(docker.io)
fi
command -v docker-compose >/dev/null || missing+=(docker-compose)
if [[ -z ${SIDECAR_BUSYBOX:-} ]] && [[ $(dpkg-query -W -f '${Status}' busybox-static 2>/dev/null) != "install ok installed" ]]; then
	missing+=(busybox-static)
fi
if [[ ${#missing[@]} -gt 0 ]]; then
	if ! command -v apt-get >/dev/null; then
		echo "test-containers: SKIPPED: no container engine here (missing: ${missing[*]}) and no apt-get to install one"
		exit 0
	fi
	if [[ ${#sudo_cmd[@]} -gt 0 ]] && ! command -v sudo >/dev/null; then
		fail "not root and no sudo: cannot install ${missing[*]}"
	fi
	note "installing ${missing[*]} (apt)"
	t0=$(date +%s)
	# The packages' scripts must not start a daemon with Docker's default
	# bridge and NAT: policy-rc.d (101: action forbidden) keeps them from
	# starting any service while this script has it in place.
	policy=/usr/sbin/policy-rc.d
	placed=""
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
		"${sudo_cmd[@]}" chmod 0755 "$policy"
		placed=yes
	fi
	"${sudo_cmd[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	[[ -z $placed ]] || "${sudo_cmd[@]}" rm -f "$policy"
	note "installed in $(($(date +%s) - t0))s"
fi
command -v docker >/dev/null || fail "no docker client after installing docker.io"

# --- the daemon ---------------------------------------------------------------

mkdir -p "$state"
dockerd_pid=""
if [[ -n ${CONTAINERS_DOCKERD_ROOT:-} ]]; then
	export DOCKER_HOST=unix://$CONTAINERS_DOCKERD_ROOT/docker.sock
fi
# A daemon that this script started in a run that did not get to stop it
# (killed) is still this script's to stop.
if [[ -s $pidfile ]] && [[ $(cat "/proc/$(cat "$pidfile")/comm" 2>/dev/null) == dockerd ]]; then
	dockerd_pid=$(cat "$pidfile")
fi
if ! docker info >/dev/null 2>&1; then
	args=(--bridge=none --iptables=false --ip-masq=false)
	if [[ -n ${CONTAINERS_DOCKERD_ROOT:-} ]]; then
		mkdir -p "$CONTAINERS_DOCKERD_ROOT"
		args+=(--host "$DOCKER_HOST" --data-root "$CONTAINERS_DOCKERD_ROOT/data"
			--exec-root "$CONTAINERS_DOCKERD_ROOT/exec" --pidfile "$CONTAINERS_DOCKERD_ROOT/docker.pid")
	fi
	note "starting dockerd ${args[*]} (log: $log)"
	t0=$(date +%s)
	"${sudo_cmd[@]}" setsid dockerd "${args[@]}" >"$log" 2>&1 </dev/null &
	dockerd_pid=$!
	echo "$dockerd_pid" >"$pidfile"
	for _ in $(seq 1 120); do
		docker info >/dev/null 2>&1 && break
		kill -0 "$dockerd_pid" 2>/dev/null || break
		sleep 0.5
	done
	if ! docker info >/dev/null 2>&1; then
		tail -n 30 "$log" >&2 || true
		fail "dockerd did not answer within 60s (log: $log)"
	fi
	note "dockerd (pid $dockerd_pid) answers after $(($(date +%s) - t0))s"
else
	note "using the running engine $(docker version --format '{{.Server.Version}}')${dockerd_pid:+ (pid $dockerd_pid, started by an earlier run)}"
fi

stop_daemon() {
	[[ -n $dockerd_pid ]] || return 0
	note "stopping dockerd (pid $dockerd_pid)"
	"${sudo_cmd[@]}" kill -TERM "$dockerd_pid" 2>/dev/null || true
	for _ in $(seq 1 60); do
		kill -0 "$dockerd_pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$dockerd_pid" 2>/dev/null; then
		note "dockerd did not stop within 30s of SIGTERM: SIGKILL"
		"${sudo_cmd[@]}" kill -KILL "$dockerd_pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
	# dockerd leaves its network namespace bind-mounted in its exec root;
	# a daemon of this run's own leaves nothing mounted behind.
	if [[ -n ${CONTAINERS_DOCKERD_ROOT:-} ]]; then
		awk -v root="$CONTAINERS_DOCKERD_ROOT/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r |
			while read -r m; do "${sudo_cmd[@]}" umount "$m" || true; done
	fi
}

# --- teardown by label ------------------------------------------------------

# sweep removes everything the tests made: containers first (they hold the
# volumes and images), then volumes, networks (there should be none) and
# images.
sweep() {
	local ids
	mapfile -t ids < <(docker ps --all --quiet --filter "label=$label")
	[[ ${#ids[@]} -eq 0 ]] || docker rm --force --volumes "${ids[@]}" >/dev/null
	mapfile -t ids < <(docker volume ls --quiet --filter "label=$label")
	[[ ${#ids[@]} -eq 0 ]] || docker volume rm --force "${ids[@]}" >/dev/null
	mapfile -t ids < <(docker network ls --quiet --filter "label=$label")
	[[ ${#ids[@]} -eq 0 ]] || docker network rm "${ids[@]}" >/dev/null
	# An image built FROM another (the exec-mode app image, FROM the busybox
	# one) must go first: the engine refuses to remove a parent while a
	# child exists. Each pass removes what has no children left.
	local _
	for _ in 1 2 3; do
		mapfile -t ids < <(docker images --quiet --filter "label=$label" | sort -u)
		[[ ${#ids[@]} -gt 0 ]] || return 0
		docker rmi --force "${ids[@]}" >/dev/null 2>&1 || true
	done
	mapfile -t ids < <(docker images --quiet --filter "label=$label" | sort -u)
	[[ ${#ids[@]} -eq 0 ]] || docker rmi --force "${ids[@]}" >/dev/null # fails, saying why
}

finish() {
	local code=$?
	trap - EXIT
	sweep || code=1
	local left
	left=$(docker ps -aq --filter "label=$label")$(docker volume ls -q --filter "label=$label")$(docker images -q --filter "label=$label")
	if [[ -n $left ]]; then
		echo "test-containers: FAIL: teardown left containers, volumes or images labelled $label" >&2
		code=1
	fi
	stop_daemon
	note "took $(($(date +%s) - start_time))s"
	exit "$code"
}
trap finish EXIT
sweep

# --- the tests --------------------------------------------------------------

devvault=$(scripts/devvault.sh)
note "engine $(docker version --format '{{.Server.Version}}'), $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /')"
# shellcheck disable=SC2086 # CONTAINERS_TEST_FLAGS is a list of flags
SIDECAR_DEVVAULT_BIN=$devvault SIDECAR_BIN=$SIDECAR_BIN SIDECAR_BUSYBOX=$busybox \
	SIDECAR_VERSION=$SIDECAR_VERSION SIDECAR_COMMIT=$SIDECAR_COMMIT \
	"$go" test -tags containers -count=1 -timeout 15m -v ${CONTAINERS_TEST_FLAGS:-} ./scripts/containers
