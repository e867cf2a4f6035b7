#!/usr/bin/env bash
# notices.sh writes or checks THIRD_PARTY_NOTICES, the licence notices of
# every module the shipped binary links, from the binary's dependency graph:
#
#   - cyclonedx-gomod (app mode, -licenses -std) makes a CycloneDX SBOM of
#     ./cmd/secrets-sidecar for each released platform (linux/amd64,
#     linux/arm64) with the release build's constraints (CGO_ENABLED=0), and
#     detects each module's licence;
#   - scripts/notices (a small Go program, its own module) fails for a module
#     without a detected licence or with one not on its allowed list, and
#     writes each module with its version, licence, where its source is, and
#     its own licence files from the module cache.
#
#   notices.sh write   regenerate THIRD_PARTY_NOTICES (`make notices`)
#   notices.sh check   fail if it is not what the graph gives (`make check-notices`, CI)
#
#   CYCLONEDX_GOMOD  the cyclonedx-gomod binary (the make targets install it)
#   SBOM_DIR         also keep the SBOMs there (sbom-linux-ARCH.cdx.json)
#
# cyclonedx-gomod reads the main module's version with its own git code,
# which does not understand git worktrees; the module's files (tracked and
# untracked, as they are now) are copied into a temporary repository first.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
cdx=${CYCLONEDX_GOMOD:?set CYCLONEDX_GOMOD to the cyclonedx-gomod binary (make notices)}
case ${1:-} in
write) flag=-out ;;
check) flag=-check ;;
*)
	echo "usage: $0 write|check" >&2
	exit 2
	;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/notices.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src" "$tmp/sbom"
git ls-files -z --cached --others --exclude-standard -- go.mod go.sum cmd modules jobs |
	tar --null -T - -cf - | tar -xf - -C "$tmp/src"
git -C "$tmp/src" init -q
git -C "$tmp/src" add -A
git -C "$tmp/src" -c user.name=notices -c user.email=notices@localhost commit -qm notices

for arch in amd64 arm64; do
	(cd "$tmp/src" && GOOS=linux GOARCH=$arch CGO_ENABLED=0 GOFLAGS="" \
		"$cdx" app -licenses -assert-licenses -std -json -noserial -notimestamp \
		-main cmd/secrets-sidecar -output "$tmp/sbom/sbom-linux-$arch.cdx.json" .) 2>"$tmp/cdx.log" || {
		cat "$tmp/cdx.log" >&2
		echo "notices: cyclonedx-gomod failed for linux/$arch" >&2
		exit 1
	}
done
if [[ -n ${SBOM_DIR:-} ]]; then
	mkdir -p "$SBOM_DIR"
	cp "$tmp"/sbom/*.json "$SBOM_DIR/"
fi

(cd scripts/notices && go run . "$flag" "$repo/THIRD_PARTY_NOTICES" "$tmp"/sbom/sbom-linux-*.cdx.json)
