#!/usr/bin/env bash
# Builds the Vault dev server (scripts/devvault, its own Go module) once per
# source hash into a cache outside git and prints the binary's path. Later
# runs reuse the cached binary. A cold build downloads Vault v1.14.0's module
# graph and compiles its core: several minutes on 2 cores.
#
#   SIDECAR_DEVVAULT_CACHE  cache directory (default ~/.cache/secrets-sidecar)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=$root/scripts/devvault
key=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -c1-16)
cache=${SIDECAR_DEVVAULT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secrets-sidecar}
bin=$cache/devvault-$key

if [[ ! -x $bin ]]; then
	mkdir -p "$cache"
	exec 9>"$cache/devvault.lock"
	flock 9 # parallel test packages wait for one build
	if [[ ! -x $bin ]]; then
		echo "devvault: building the Vault dev server once (cached as $bin)..." >&2
		start=$(date +%s)
		(cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp.$$" .)
		mv "$bin.tmp.$$" "$bin"
		echo "devvault: built in $(($(date +%s) - start))s" >&2
	fi
fi
echo "$bin"
