#!/usr/bin/env bash
# Builds the Vault dev server (scripts/devvault, its own Go module) once per
# source hash into a cache outside git and prints the binary's path. Later
# runs reuse the cached binary. A cold build downloads Vault v1.14.0's module
# graph and compiles its core: several minutes on 2 cores.
#
#   devvault.sh            the demo's server: KV, PKI, AppRole, JWT, Kubernetes
#   devvault.sh --db       the same plus the database engine and its built-in
#                          PostgreSQL plugin (cmd/devvault-db), for `make test`;
#                          built after the first it recompiles only the
#                          database packages
#   devvault.sh --prepare  only the sdk copy below (for go vet and the linters)
#
#   SIDECAR_DEVVAULT_CACHE  cache directory (default ~/.cache/secrets-sidecar)
#
# Vault 1.14.0's PKI engine calls certutil.ParseBasicConstraintExtension,
# which the sdk version its go.mod pins lacks (and the module proxy does not
# serve the sdk at the tag's commit). So the module replaces the sdk with
# scripts/devvault/.sdk (not in git): the pinned sdk from the module cache
# plus that one MPL-2.0 function taken, with its licence header, from sdk
# v0.9.2 at build time. `devvault.sh --prepare` makes only that directory
# (for go vet and the linters).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
src=$root/scripts/devvault
pinned=v0.9.2-0.20230530190758-08ee474850e0
donor=v0.9.2

prepare() {
	local sdk=$src/.sdk stamp=$src/.sdk/.prepared-$pinned
	[[ -f $stamp ]] && return 0
	local from donorfile
	from=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/hashicorp/vault/sdk@$pinned" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	donorfile=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "github.com/hashicorp/vault/sdk@$donor" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')/helper/certutil/helpers.go
	[[ -d $from && -f $donorfile ]] || { echo "devvault: cannot download github.com/hashicorp/vault/sdk $pinned and $donor" >&2; return 1; }
	rm -rf "$sdk.tmp" && cp -r "$from" "$sdk.tmp" && chmod -R u+w "$sdk.tmp"
	{
		sed -n '1,2p' "$donorfile" # the copyright and SPDX licence lines
		printf '\n// Taken at build time from github.com/hashicorp/vault/sdk %s by scripts/devvault.sh.\n\n' "$donor"
		printf 'package certutil\n\nimport (\n\t"bytes"\n\t"crypto/x509/pkix"\n\t"encoding/asn1"\n\t"fmt"\n)\n\n'
		awk '/^\/\/ ParseBasicConstraintExtension /{on=1} on{print} on&&/^}/{exit}' "$donorfile"
	} >"$sdk.tmp/helper/certutil/basic_constraint_parse.go"
	grep -q '^func ParseBasicConstraintExtension' "$sdk.tmp/helper/certutil/basic_constraint_parse.go" || { echo "devvault: ParseBasicConstraintExtension not found in sdk $donor" >&2; return 1; }
	rm -rf "$sdk" && mv "$sdk.tmp" "$sdk" && touch "$stamp"
}

flavour=devvault pkg=.
case ${1:-} in
--prepare)
	prepare
	exit 0
	;;
--db) flavour=devvault-db pkg=./cmd/devvault-db ;;
"") ;;
*)
	echo "usage: devvault.sh [--db | --prepare]" >&2
	exit 2
	;;
esac
key=$( (cat "$src/go.mod" "$src/go.sum" "$0"; find "$src" -name '*.go' -not -path "$src/.sdk/*" | LC_ALL=C sort | xargs cat) | sha256sum | cut -c1-16)
cache=${SIDECAR_DEVVAULT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/secrets-sidecar}
bin=$cache/$flavour-$key

if [[ ! -x $bin ]]; then
	mkdir -p "$cache"
	exec 9>"$cache/devvault.lock"
	flock 9 # parallel test packages wait for one build
	if [[ ! -x $bin ]]; then
		echo "devvault: building the Vault dev server ($flavour) once (cached as $bin)..." >&2
		start=$(date +%s)
		prepare
		(cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin.tmp.$$" "$pkg")
		mv "$bin.tmp.$$" "$bin"
		echo "devvault: built in $(($(date +%s) - start))s" >&2
	fi
fi
echo "$bin"
