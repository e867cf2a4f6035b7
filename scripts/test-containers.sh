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
busybox=${SIDECAR_BUSYBOX:-/bin/busybox}
: "${SIDECAR_BIN:?set SIDECAR_BIN (make test-containers)}" "${SIDECAR_VERSION:?}" "${SIDECAR_COMMIT:?}"

note() { echo "test-containers: $*"; }
fail() {
	echo "test-containers: FAIL: $*" >&2
	exit 1
}
start_time=$(date +%s)

# --- packages ---------------------------------------------------------------

# shellcheck source=scripts/engine.sh
source "$repo/scripts/engine.sh"
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
	engine_install "${missing[@]}"
fi
command -v docker >/dev/null || fail "no docker client after installing docker.io"

# --- the daemon ---------------------------------------------------------------

engine_start "$state"

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
	engine_stop
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
